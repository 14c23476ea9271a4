/**
 * The `sources` benchmark: the cron path (`HECATE_API_KEY=... hecate query pg "select 1"`) with the
 * password behind a `file:` reference, and behind an `env:` reference that fails over to that file,
 * against the same profile with the password stored in the vault, interleaved, as ratios. What it
 * shows is the framework's own cost per use: one source call and one `secret.resolve` audit record
 * per reference tried. (The `vault:` and `vault-db:` scenarios of issue 14 belong to the Vault
 * source's section.)
 *
 * @module
 */

import { startPostgres } from "../../tests/support/postgres.ts";
import { measure, medianInterleaved, report } from "./measure.ts";
import { serverProfile, vaultWith } from "./setup.ts";

/**
 * Runs the section.
 *
 * @param root A scratch directory.
 * @param password The master password.
 * @param hecateCmd The command line of `hecate --home HOME ARGS`.
 */
export async function benchSources(
  root: string,
  password: string,
  hecateCmd: (home: string, ...args: string[]) => string[],
): Promise<void> {
  await using pg = await startPostgres();
  const home = `${root}/home-sources`;
  const pwFile = `${root}/sources-pw`;
  await Deno.writeTextFile(pwFile, pg.password, { mode: 0o600 });
  const stored = serverProfile("stored", "postgres", pg);
  const vault = await vaultWith(home, password, [
    stored,
    { ...stored, name: "file", secrets: { password: { ref: `file:${pwFile}` } } },
    {
      ...stored,
      name: "failover",
      secrets: { password: { refs: ["env:HECATE_BENCH_UNSET", `file:${pwFile}`] } },
    },
  ]);
  const apiKey = await vault.apiKeys.create({
    name: "bench",
    profiles: ["stored", "file", "failover"],
    expires: null,
  });
  await vault.close();
  const env = { HECATE_API_KEY: apiKey };
  const q = (name: string) => () => measure(hecateCmd(home, "query", name, "select 1"), { env });
  for (const n of ["stored", "file", "failover"]) await q(n)(); // warm the caches
  const m = await medianInterleaved(11, {
    stored: q("stored"),
    file: q("file"),
    failover: q("failover"),
  });
  report("cron path, file: reference (median of 11)", m.file, m.stored, "stored secret");
  report(
    "cron path, env: failing over to file: (median of 11)",
    m.failover,
    m.stored,
    "stored secret",
  );
}
