/**
 * `deno task bench sources`: what a HashiCorp Vault reference costs on the cron path
 * (`HECATE_API_KEY=... hecate query NAME "select 1"`), against the same profile with its password
 * stored in the vault, all on one PostgreSQL server and the Vault double
 * (tests/support/vault_double.ts, HTTPS on loopback). Three profiles, runs interleaved:
 *
 * - `stored`: the password sealed in the vault (the reference);
 * - `kv`: the password from `vault:secret/bench#password` (one KV v2 read; goal at most 1.3x);
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
export async function benchSources(root: string, password: string): Promise<void> {
  await using pg = await startPostgres();
  await using v = await startVaultDouble();
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
  const home = `${root}/home-sources`;
  const stored = serverProfile("stored", "postgres", pg);
  const vault = await vaultWith(home, password, [
    stored,
    {
      ...stored,
      name: "kv",
      params,
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
    profiles: ["stored", "kv", "dyn"],
    expires: null,
  });
  const env = { HECATE_API_KEY: apiKey, VAULT_TOKEN: v.token({ policies: ["bench"] }) };
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
  for (const name of ["stored", "kv", "dyn"]) await measure(cmd(name), { env });
  const credsBefore = v.counts.creds;
  const m = await medianInterleaved(11, {
    stored: () => measure(cmd("stored"), { env }),
    kv: () => measure(cmd("kv"), { env }),
    dyn: () => measure(cmd("dyn"), { env }),
  });
  report("cron path, vault: KV v2 password (median of 11)", m.kv, m.stored, "stored secret");
  report("cron path, vault-db: dynamic login (median of 11)", m.dyn, m.stored, "stored secret");
  const ratio = (m.kv.wallS / m.stored.wallS).toFixed(2);
  console.log(
    `sources goal: a vault: reference at most 1.30x the stored secret; measured ${ratio}x. ` +
      `vault-db: ${v.counts.creds - credsBefore} logins made, ${v.liveLeases().length} left ` +
      `unrevoked after the runs`,
  );
}
