/**
 * MySQL benchmark sections of `deno task bench`:
 *
 * - `mysql`: 1,000,000-row TSV and CSV exports through `hecate query --output` against
 *   `mariadb --batch --quick` on the same server, interleaved, medians of 5, with peak RSS; then
 *   10,000,000 rows, median of 3, to show memory flat in the row count. Goal: at most 1.2x, under
 *   80 MiB at both sizes.
 * - `mysqlcron`: the cron path (`HECATE_API_KEY=... hecate query NAME "select 1"` from the bundle)
 *   against MariaDB next to the same against PostgreSQL, interleaved, median of 11. Goal: at most
 *   1.1x the PostgreSQL path.
 *
 * @module
 */

import { startPostgres } from "../../tests/support/postgres.ts";
import { startMariadb } from "../../tests/support/mariadb.ts";
import { measure, medianInterleaved, report, type RunResult } from "./measure.ts";
import { serverProfile, vaultWith } from "./setup.ts";
import { buildBundle } from "../bundle.ts";

/** What the sections need from scripts/bench.ts. */
export interface MysqlBenchContext {
  /** Scratch directory. */
  root: string;
  /** Master password of the benchmark vaults. */
  password: string;
  /** File holding that password. */
  pwFile: string;
  /** `deno run ... main.ts --home HOME ARGS`. */
  hecateCmd: (home: string, ...args: string[]) => string[];
}

function mariadbCmd(
  db: { host: string; port: number; user: string; database: string },
  sql: string,
): string[] {
  return [
    "mariadb",
    "--no-defaults",
    "--protocol=tcp",
    "-h",
    db.host,
    "-P",
    String(db.port),
    "-u",
    db.user,
    db.database,
    "--batch",
    "--quick",
    "-e",
    sql,
  ];
}

const ratio = (a: RunResult, b: RunResult) => (a.wallS / b.wallS).toFixed(2);

/** The `mysql` section: exports against `mariadb --batch --quick`. */
export async function benchMysqlExport(ctx: MysqlBenchContext): Promise<void> {
  await using db = await startMariadb();
  const home = `${ctx.root}/home-mysql`;
  await vaultWith(home, ctx.password, [serverProfile("maria", "mysql", db)]);
  const env = { HECATE_PASSWORD_FILE: ctx.pwFile, MYSQL_PWD: db.password };
  for (const rows of [1_000_000, 10_000_000]) {
    const sql = `select seq, md5(seq), seq * 1.5 as d, now() as ts from seq_1_to_${rows}`;
    const out = (f: string) => `${ctx.root}/m-${rows}.${f}`;
    const hecate = (format: string) => () =>
      measure(
        ctx.hecateCmd(home, "query", "maria", sql, "--format", format, "--output", out(format)),
        {
          env,
        },
      );
    const runs = rows > 1_000_000 ? 3 : 5;
    await hecate("tsv")(); // warm the module cache
    const m = await medianInterleaved(runs, {
      tsv: hecate("tsv"),
      csv: hecate("csv"),
      mariadb: () => measure(mariadbCmd(db, sql), { env, stdoutFile: out("ref") }),
    });
    const n = rows.toLocaleString("en-US");
    report(
      `MariaDB ${n}-row TSV export (median of ${runs})`,
      m.tsv,
      m.mariadb,
      "mariadb --batch --quick",
    );
    report(
      `MariaDB ${n}-row CSV export (median of ${runs})`,
      m.csv,
      m.mariadb,
      "mariadb --batch --quick",
    );
    console.log(
      `  goal at ${n} rows: at most 1.20x and under 80 MiB; measured ${ratio(m.tsv, m.mariadb)}x ` +
        `TSV, ${ratio(m.csv, m.mariadb)}x CSV, ${m.tsv.peakMiB.toFixed(0)} / ` +
        `${m.csv.peakMiB.toFixed(0)} MiB`,
    );
    for (const f of ["tsv", "csv", "ref"]) await Deno.remove(out(f)).catch(() => {});
  }
}

/** The `mysqlcron` section: the MySQL cron path next to the PostgreSQL one. */
export async function benchMysqlCron(ctx: MysqlBenchContext): Promise<void> {
  await using pg = await startPostgres();
  await using db = await startMariadb();
  const home = `${ctx.root}/home-mysqlcron`;
  const vault = await vaultWith(home, ctx.password, [
    serverProfile("pg", "postgres", pg),
    serverProfile("maria", "mysql", db),
  ]);
  const apiKey = await vault.apiKeys.create({
    name: "bench",
    profiles: ["pg", "maria"],
    expires: null,
  });
  const launcher = await buildBundle(`${ctx.root}/bundle-mysqlcron`);
  const bundled = (...a: string[]) => [launcher, "--home", home, ...a];
  const env = { HECATE_API_KEY: apiKey, DENO: Deno.execPath() };
  await measure(bundled("query", "pg", "select 1"), { env });
  await measure(bundled("query", "maria", "select 1"), { env });
  const m = await medianInterleaved(11, {
    mysql: () => measure(bundled("query", "maria", "select 1"), { env }),
    pg: () => measure(bundled("query", "pg", "select 1"), { env }),
    mariadb: () => measure(mariadbCmd(db, "select 1"), { env: { MYSQL_PWD: db.password } }),
  });
  report(
    "cron path, API key, select 1, bundle: MariaDB vs PostgreSQL (median of 11)",
    m.mysql,
    m.pg,
    "hecate on PostgreSQL",
  );
  report(
    "cron path, API key, select 1, bundle: MariaDB vs the mariadb client",
    m.mysql,
    m.mariadb,
    "mariadb -e",
  );
  console.log(
    `mysql cron path goal: at most 1.10x the PostgreSQL path; measured ${ratio(m.mysql, m.pg)}x`,
  );
}
