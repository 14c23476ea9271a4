/**
 * `deno task bench`: measures Hecate against the reference clients on the same server in one
 * run, and prints ratios. Sections: `unlock`, `pg` (select 1 and a 1,000,000-row CSV export
 * against psql), `pool` (queries per second through the library pool against a raw `pg` Pool).
 * Pass section names to run only those.
 *
 * Needs PostgreSQL's binaries (scripts/install_test_deps.sh) and GNU time (/usr/bin/time).
 *
 * @module
 */

import { startPostgres } from "../tests/support/postgres.ts";
import { initVault, openVault } from "../src/hecate.ts";
import { calibrateIterations, MIN_KDF_ITERATIONS } from "../src/kdf.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { measure, medianMs, medianOf, report } from "./bench/measure.ts";
import { benchPool } from "./bench/pool.ts";

const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys=hostname,uid",
];
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PASSWORD = "bench-password correct horse";
const sections = Deno.args.length ? Deno.args : ["unlock", "pg", "pool"];

console.log(`# Hecate benchmark, ${new Date().toISOString()}`);
console.log(
  `# Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, ${Deno.build.target}`,
);

const root = await Deno.makeTempDir({ prefix: "hecate-bench-" });
const pwFile = `${root}/password`;
await Deno.writeTextFile(pwFile, PASSWORD, { mode: 0o600 });

function hecateCmd(home: string, ...args: string[]): string[] {
  return [Deno.execPath(), "run", "--quiet", ...PERMISSIONS, MAIN, "--home", home, ...args];
}

try {
  if (sections.includes("unlock")) {
    const calibrated = await calibrateIterations();
    for (const iterations of [MIN_KDF_ITERATIONS, calibrated]) {
      const v = await UnlockedVault.create(PASSWORD, { iterations });
      const { bytes } = await v.serialize();
      const ms = await medianMs(5, () => UnlockedVault.unlock(bytes, PASSWORD));
      console.log(`unlock at ${iterations} PBKDF2 iterations: ${ms.toFixed(1)} ms (median of 5)`);
    }
  }

  if (sections.includes("pg")) {
    await using pg = await startPostgres();
    const home = `${root}/home`;
    await initVault({ home, password: PASSWORD });
    const vault = await openVault({ home, password: PASSWORD });
    await vault.addProfile({
      name: "pg",
      engine: "postgres",
      host: pg.host,
      port: pg.port,
      database: pg.database,
      user: pg.user,
      tls: { mode: "disable" },
      secrets: { password: { value: pg.password } },
    });
    console.log(`vault KDF: ${vault.kdfIterations} iterations (calibrated default)`);
    const env = { HECATE_PASSWORD_FILE: pwFile, PGPASSWORD: pg.password };
    const psql = (...a: string[]) => [
      "psql",
      "-X",
      "-h",
      pg.host,
      "-p",
      String(pg.port),
      "-U",
      pg.user,
      "-d",
      pg.database,
      ...a,
    ];

    const q1 = await medianOf(
      9,
      () => measure(hecateCmd(home, "query", "pg", "select 1"), { env }),
    );
    const p1 = await medianOf(9, () => measure(psql("-c", "select 1"), { env }));
    report("select 1 (median of 9)", q1, p1, "psql -c");

    const big = "select g, md5(g::text) from generate_series(1,1000000) g";
    const outA = `${root}/a.csv`, outB = `${root}/b.csv`;
    const e1 = await medianOf(
      3,
      () =>
        measure(hecateCmd(home, "query", "pg", big, "--format", "csv", "--output", outA), { env }),
    );
    const e2 = await medianOf(
      3,
      () => measure(psql("--csv", "-c", big), { env, stdoutFile: outB }),
    );
    report("1,000,000-row CSV export (median of 3)", e1, e2, "psql --csv");
    const e3 = await medianOf(
      3,
      () => measure(psql("-c", `\\copy (${big}) to stdout with (format csv, header)`), { env }),
    );
    report("1,000,000-row CSV export (median of 3)", e1, e3, "psql \\copy");
  }
  if (sections.includes("pool")) await benchPool(root, PASSWORD);
} finally {
  await Deno.remove(root, { recursive: true });
}
