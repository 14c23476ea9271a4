/**
 * `deno task bench vault`: what a HashiCorp Vault reference costs on the cron path
 * (`HECATE_API_KEY=... hecate query NAME "select 1"`), against the same profile with its password
 * stored in the vault, all on one PostgreSQL server and the Vault double
 * (tests/support/vault_double.ts, HTTPS on loopback). Three profiles, runs interleaved:
 *
 * - `stored`: the password sealed in the vault (the reference);
 * - `kv`: the password from `vault:secret/bench#password` (one KV v2 read; goal at most 1.3x),
 *   Vault's CA among the trusted roots (`DENO_CERT`, as an organisation's CA installed on the
 *   host): Deno's own TLS;
 * - `kv-pinned`: the same with `--vault-ca-file` (the CA pinned: node:https, whose start-up costs
 *   more; reported, no goal);
 * - `agent`: the same through plain HTTP on loopback, as through a Vault Agent listener
 *   (`--vault-tls disable`): no TLS start-up in the short-lived process;
 * - `dyn`: a dynamic login from `vault-db:database/creds/bench` (creds, the database creating the
 *   role, and the revoke at exit; reported, no goal).
 *
 * @module
 */

import { startPostgres } from "../../tests/support/postgres.ts";
import { PG_STATEMENTS, startVaultDouble } from "../../tests/support/vault_double.ts";
import { measure, medianInterleaved, report } from "./measure.ts";
import { serverProfile, vaultWith } from "./setup.ts";
import { HECATE_PERMISSIONS } from "../permissions.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * Runs the section.
 *
 * @param root The benchmark's temporary directory.
 * @param password The master password for the bench vault.
 */
export async function benchVault(root: string, password: string): Promise<void> {
  await using pg = await startPostgres();
  await using v = await startVaultDouble();
  await using agent = await startVaultDouble({ plain: true });
  agent.mountKv("secret", 2);
  agent.putKv("secret", "bench", { password: pg.password });
  agent.policy("bench", { "secret/data/bench": ["read"] });
  v.mountKv("secret", 2);
  v.putKv("secret", "bench", { password: pg.password });
  v.policy("bench", {
    "secret/data/bench": ["read"],
    "database/creds/bench": ["read"],
    "sys/leases/revoke": ["update"],
  });
  v.dbRole("database", "bench", {
    engine: "postgres",
    admin: (sql) => pg.psql(sql),
    creation: PG_STATEMENTS.creation +
      ` GRANT CONNECT ON DATABASE "${pg.database}" TO "{{name}}";`,
    revocation: PG_STATEMENTS.revocation,
    ttl: 300,
    maxTtl: 3600,
  });
  const params = { "vault.addr": v.addr, "vault.caFile": v.caFile };
  const roots = { "vault.addr": v.addr };
  const home = `${root}/home-vault`;
  const stored = serverProfile("stored", "postgres", pg);
  const vault = await vaultWith(home, password, [
    stored,
    {
      ...stored,
      name: "kv",
      params: roots,
      secrets: { password: { ref: "vault:secret/bench#password" } },
    },
    {
      ...stored,
      name: "kv-pinned",
      params,
      secrets: { password: { ref: "vault:secret/bench#password" } },
    },
    {
      ...stored,
      name: "agent",
      params: { "vault.addr": agent.addr, "vault.tls": "disable" },
      secrets: { password: { ref: "vault:secret/bench#password" } },
    },
    {
      ...stored,
      name: "dyn",
      params,
      secrets: { password: { ref: "vault-db:database/creds/bench" } },
    },
  ]);
  const apiKey = await vault.apiKeys.create({
    name: "bench",
    profiles: ["stored", "kv", "kv-pinned", "agent", "dyn"],
    expires: null,
  });
  const env = {
    HECATE_API_KEY: apiKey,
    VAULT_TOKEN: v.token({ policies: ["bench"] }),
    DENO_CERT: v.caFile,
  };
  const cmd = (name: string) => [
    Deno.execPath(),
    "run",
    "--quiet",
    ...HECATE_PERMISSIONS,
    MAIN,
    "--home",
    home,
    "query",
    name,
    "select 1",
  ];
  const names = ["stored", "kv", "kv-pinned", "agent", "dyn"];
  // The agent's token is its own (Vault Agent would add it; here the same variable carries it).
  const agentEnv = { ...env, VAULT_TOKEN: agent.token({ policies: ["bench"] }) };
  for (const name of names) await measure(cmd(name), { env: name === "agent" ? agentEnv : env });
  const credsBefore = v.counts.creds;
  const m = await medianInterleaved(11, {
    stored: () => measure(cmd("stored"), { env }),
    kv: () => measure(cmd("kv"), { env }),
    kvPinned: () => measure(cmd("kv-pinned"), { env }),
    agent: () => measure(cmd("agent"), { env: agentEnv }),
    dyn: () => measure(cmd("dyn"), { env }),
  });
  report("cron path, vault: KV v2 password (median of 11)", m.kv, m.stored, "stored secret");
  report(
    "cron path, vault: KV v2 password, CA pinned (median of 11)",
    m.kvPinned,
    m.stored,
    "stored secret",
  );
  report(
    "cron path, vault: KV v2 password via a loopback agent, plain HTTP (median of 11)",
    m.agent,
    m.stored,
    "stored secret",
  );
  report("cron path, vault-db: dynamic login (median of 11)", m.dyn, m.stored, "stored secret");
  const ratio = (r: typeof m.kv) => (r.wallS / m.stored.wallS).toFixed(2);
  console.log(
    `sources goal: a vault: reference at most 1.30x the stored secret; measured ${
      ratio(m.kv)
    }x over HTTPS (Deno TLS), ${ratio(m.kvPinned)}x with a pinned CA, ${
      ratio(m.agent)
    }x through a loopback agent. ` +
      `vault-db: ${v.counts.creds - credsBefore} logins made, ${v.liveLeases().length} left ` +
      `unrevoked after the runs`,
  );
}
