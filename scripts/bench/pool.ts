/**
 * The `pool` benchmark: queries per second through the library's pool (`vault.pool(...).query`)
 * against a raw `pg` Pool of the same size on the same server, as a ratio. Both run the same
 * parameterised statement with the same number of concurrent workers. The library is measured in
 * its three statement-audit modes: durable records (each on disk before the result is final),
 * deferred records (group writes behind the statements), and no statement records.
 *
 * @module
 */

import pg from "pg";
import { startPostgres } from "../../tests/support/postgres.ts";
import { serverProfile, vaultWith } from "./setup.ts";

const WORKERS = 8;
const SECONDS = 3;
const SQL = "select $1::int as n";

async function qps(run: () => Promise<void>): Promise<number> {
  const until = performance.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: WORKERS }, async () => {
    while (performance.now() < until) {
      await run();
      n++;
    }
  }));
  return n / SECONDS;
}

/**
 * Runs the section and prints its lines.
 *
 * @param root A scratch directory.
 * @param password The master password to create the vault with.
 * @returns The ratio library (statements not audited) / raw.
 */
export async function benchPool(root: string, password: string): Promise<number> {
  await using server = await startPostgres();
  const home = `${root}/pool-home`;
  const vault = await vaultWith(home, password, [serverProfile("pg", "postgres", server)], 600_000);
  const raw = new pg.Pool({
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    database: server.database,
    max: WORKERS,
  });
  // An idle client's error (the server stopping at the end) must not crash the benchmark.
  raw.on("error", () => {});
  await using audited = await vault.pool("pg", { max: WORKERS, min: WORKERS });
  await using deferred = await vault.pool("pg", {
    max: WORKERS,
    min: WORKERS,
    auditStatements: "deferred",
  });
  await using quiet = await vault.pool("pg", {
    max: WORKERS,
    min: WORKERS,
    auditStatements: false,
  });
  let i = 0;
  const runs: [string, () => Promise<void>][] = [
    [
      "library pool, every statement audited",
      () => audited.query(SQL, [++i % 1000]).toArray().then(() => {}),
    ],
    [
      'library pool, auditStatements: "deferred"',
      () => deferred.query(SQL, [++i % 1000]).toArray().then(() => {}),
    ],
    [
      "library pool, auditStatements: false",
      () => quiet.query(SQL, [++i % 1000]).toArray().then(() => {}),
    ],
    ["raw pg.Pool", () => raw.query(SQL, [++i % 1000]).then(() => {})],
  ];
  // Warm each, then alternate so drift hits all alike; report medians of 3.
  for (const [, run] of runs) await qps(run);
  const samples: number[][] = runs.map(() => []);
  for (let r = 0; r < 3; r++) {
    for (const [k, [, run]] of runs.entries()) samples[k]!.push(await qps(run));
  }
  await raw.end();
  const med = (x: number[]) => x.sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
  const medians = samples.map(med);
  const direct = medians.at(-1)!;
  const libQuiet = medians.at(-2)!;
  console.log(`pool: ${WORKERS} workers, ${SECONDS} s runs, "${SQL}" (queries per second):`);
  for (const [k, [label]] of runs.entries()) {
    const v = medians[k]!;
    console.log(
      `  ${label.padEnd(40)} ${v.toFixed(0).padStart(6)}  ratio ${(v / direct).toFixed(2)}`,
    );
  }
  console.log("  goal: library / raw >= 0.95; durable statement records / raw >= 0.5");
  const ratio = libQuiet / direct;
  return ratio;
}
