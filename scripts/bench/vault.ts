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
 * `stored`, `kv` and `agent` run again through the bundle (scripts/bundle.ts, what a cron job
 * installed from the README runs), and two floors in the same rounds: Deno starting an empty
 * script, and ./fetch_floor.ts making the same KV read with one bare `fetch` in a fresh process
 * (over HTTPS, then plain HTTP). "stored + the bare fetch's cost over the empty script" is what
 * any Deno program pays for that read; the bundled `kv` is also reported against it.
 *
 * @module
 */

import { startPostgres } from "../../tests/support/postgres.ts";
import { PG_STATEMENTS, startVaultDouble } from "../../tests/support/vault_double.ts";
import { measure, medianInterleaved, report } from "./measure.ts";
import { serverProfile, vaultWith } from "./setup.ts";
import { bundledHecate, bundleEnv, floorCommands, type HecateCmd } from "./source_runs.ts";

/**
 * Runs the section.
 *
 * @param root The benchmark's temporary directory.
 * @param password The master password for the bench vault.
 * @param hecateCmd Builds a from-source `hecate` command line.
 */
export async function benchVault(
  root: string,
  password: string,
  hecateCmd: HecateCmd,
): Promise<void> {
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
  const base = await bundleEnv();
  const env = {
    ...base,
    HECATE_API_KEY: apiKey,
    VAULT_TOKEN: v.token({ policies: ["bench"] }),
    DENO_CERT: v.caFile,
  };
  const bundled = await bundledHecate(root);
  const src = (name: string) => hecateCmd(home, "query", name, "select 1");
  const bun = (name: string) => bundled(home, "query", name, "select 1");
  // The agent's token is its own (Vault Agent would add it; here the same variable carries it).
  const agentEnv = { ...env, VAULT_TOKEN: agent.token({ policies: ["bench"] }) };
  // The floors: an empty script, and one bare fetch of the same KV read in a fresh process.
  const floor = await floorCommands(root);
  const httpsFloorEnv = {
    ...env,
    FLOOR_URL: `${v.addr}/v1/secret/data/bench`,
    FLOOR_TOKEN: env.VAULT_TOKEN,
  };
  const httpFloorEnv = {
    ...agentEnv,
    FLOOR_URL: `${agent.addr}/v1/secret/data/bench`,
    FLOOR_TOKEN: agentEnv.VAULT_TOKEN,
  };
  const names = ["stored", "kv", "kv-pinned", "agent", "dyn"];
  for (const name of names) await measure(src(name), { env: name === "agent" ? agentEnv : env });
  for (const name of ["stored", "kv", "agent"]) {
    await measure(bun(name), { env: name === "agent" ? agentEnv : env });
  }
  await measure(floor.empty, { env });
  await measure(floor.fetch, { env: httpsFloorEnv });
  const credsBefore = v.counts.creds;
  const m = await medianInterleaved(11, {
    stored: () => measure(src("stored"), { env }),
    kv: () => measure(src("kv"), { env }),
    kvPinned: () => measure(src("kv-pinned"), { env }),
    agent: () => measure(src("agent"), { env: agentEnv }),
    dyn: () => measure(src("dyn"), { env }),
    bStored: () => measure(bun("stored"), { env }),
    bKv: () => measure(bun("kv"), { env }),
    bAgent: () => measure(bun("agent"), { env: agentEnv }),
    empty: () => measure(floor.empty, { env }),
    fetchHttps: () => measure(floor.fetch, { env: httpsFloorEnv }),
    fetchHttp: () => measure(floor.fetch, { env: httpFloorEnv }),
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
  report("bundled cron path, vault: over HTTPS (median of 11)", m.bKv, m.bStored, "stored secret");
  report(
    "bundled cron path, vault: via a loopback agent, plain HTTP (median of 11)",
    m.bAgent,
    m.bStored,
    "stored secret",
  );
  report(
    "floor: bare fetch over HTTPS, fresh process",
    m.fetchHttps,
    m.empty,
    "empty script",
    "fetch",
  );
  report(
    "floor: bare fetch over HTTP, fresh process",
    m.fetchHttp,
    m.empty,
    "empty script",
    "fetch",
  );
  // What no Deno program avoids: the stored-secret run plus a bare fetch's own cost.
  const added = (r: typeof m.kv) => r.wallS - m.empty.wallS;
  const withFloor = (stored: typeof m.kv, fetch: typeof m.kv) => ({
    wallS: stored.wallS + added(fetch),
    peakMiB: stored.peakMiB,
  });
  report(
    "bundled cron path, vault: over HTTPS against stored + a bare HTTPS fetch's cost",
    m.bKv,
    withFloor(m.bStored, m.fetchHttps),
    "floor",
  );
  report(
    "bundled cron path, vault: via the agent against stored + a bare HTTP fetch's cost",
    m.bAgent,
    withFloor(m.bStored, m.fetchHttp),
    "floor",
  );
  const ratio = (r: typeof m.kv) => (r.wallS / m.stored.wallS).toFixed(2);
  console.log(
    `sources goal: a vault: reference at most 1.30x the stored secret; measured ${
      ratio(m.kv)
    }x over HTTPS (Deno TLS), ${ratio(m.kvPinned)}x with a pinned CA, ${
      ratio(m.agent)
    }x through a loopback agent; bundled ${(m.bKv.wallS / m.bStored.wallS).toFixed(2)}x over ` +
      `HTTPS, ${(m.bAgent.wallS / m.bStored.wallS).toFixed(2)}x through the agent. ` +
      `vault-db: ${v.counts.creds - credsBefore} logins made, ${v.liveLeases().length} left ` +
      `unrevoked after the runs`,
  );
}
