/**
 * Hecate as a library, end to end (docs/LIBRARY.md walks through it; tests/examples_test.ts runs
 * it against a real PostgreSQL server). From a published package, import from "@hecate/hecate".
 *
 * Usage: HECATE_HOME=DIR HECATE_PASSWORD_FILE=FILE deno run -A examples/library.ts PROFILE
 *
 * @module
 */

import { HecateError, openVault } from "../mod.ts";

const profile = Deno.args[0] ?? "billing";
const password = (await Deno.readTextFile(Deno.env.get("HECATE_PASSWORD_FILE")!)).trim();

// 1. Open the vault (audited) and list profiles: names and hosts, never secrets.
await using vault = await openVault({ password });
console.log("profiles:", vault.profiles.list().map((p) => p.name).join(", "));

// 2. One connection: rows stream as objects; the columns are known before the first row.
{
  await using db = await vault.connect(profile);
  const result = db.query("select n, n * n as square from generate_series(1, $1::int) n", [3]);
  console.log("columns:", (await result.columns).map((c) => `${c.name}:${c.type}`).join(", "));
  for await (const row of result) console.log("row:", row.n, row.square);
}

// 3. One-shot helper: a fresh connection, all rows collected, connection closed.
const [{ now }] = await vault.query(profile, "select 'ok' as now") as [{ now: string }];
console.log("one-shot:", now);

// 4. A pool: at most 4 connections, reads retried across transient failures, and a circuit
//    breaker that stops hammering a server that is down.
await using pool = await vault.pool(profile, {
  max: 4,
  acquireTimeoutMs: 2000,
  retry: { attempts: 5, baseDelayMs: 100, maxDelayMs: 2000 },
  breaker: { failureThreshold: 5, coolDownMs: 10_000 },
});
const counts = await Promise.all(
  [1, 2, 3, 4, 5, 6].map((k) =>
    pool.query("select count(*)::int as c from generate_series(1, $1::int)", [k], {
      idempotent: true, // a read: safe to run again after a dropped connection
    }).toArray()
  ),
);
console.log("pool:", counts.map((r) => r[0]!.c).join(" "), "| breaker:", pool.breakerState);
console.log("pool stats:", JSON.stringify(pool.stats()));

// 5. Errors carry stable codes (and exit codes), plus the driver's own code where there is one.
try {
  await vault.query(profile, "select * from no_such_table");
} catch (e) {
  if (!(e instanceof HecateError)) throw e;
  console.log("error:", e.code, e.driverCode, e.exitCode);
}
