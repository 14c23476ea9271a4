/**
 * The library as an outside user sees it: only `../mod.ts` is imported from Hecate (plus the
 * test's own PostgreSQL fixture). Pool limits, acquire timeout, retry across a server restart,
 * the circuit breaker and the refusal to re-send a statement that may have committed, all against
 * a real PostgreSQL server.
 */

import nodeAssert from "node:assert/strict";
import { ExitCode, HecateError, initVault, openVault, type Vault } from "../mod.ts";
import { pgProfile, type PgServer, startPostgres } from "./support/postgres.ts";

const PASSWORD = "library-test-password";
function assert(v: unknown, msg?: string): asserts v {
  nodeAssert.ok(v, msg ?? "assertion failed");
}
const assertEquals = (a: unknown, b: unknown) => nodeAssert.deepEqual(a, b);

/** Awaits `fn`, expecting it to fail with an error of class `cls`; returns the error. */
async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  cls: new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return e;
  }
  throw new Error(`expected ${cls.name}, but it succeeded`);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup(pg: PgServer): Promise<{ home: string; vault: Vault }> {
  const home = await Deno.makeTempDir({ prefix: "hecate-lib-" });
  await Deno.chmod(home, 0o700);
  await initVault({ home, password: PASSWORD, kdfIterations: 600_000 });
  const vault = await openVault({ home, password: PASSWORD });
  await vault.profiles.add(pgProfile(pg, "pg", { connectTimeoutMs: 2000 }));
  return { home, vault };
}

/** Sessions of the test role, as the server counts them. */
async function sessions(pg: PgServer): Promise<number> {
  const out = await pg.psql(
    `select count(*) from pg_stat_activity where usename = '${pg.user}'`,
  );
  return Number(out.trim());
}

/** Terminates the first backend running a statement that contains `marker`. */
async function terminateWhenRunning(pg: PgServer, marker: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const out = await pg.psql(
      `select pg_terminate_backend(pid) from pg_stat_activity ` +
        `where query like '%${marker}%' and pid <> pg_backend_pid() and state = 'active'`,
    );
    if (out.trim() === "t") return;
    await sleep(20);
  }
  throw new Error(`no running statement with ${marker}`);
}

Deno.test("library", async (t) => {
  await using pg = await startPostgres();
  const { home, vault } = await setup(pg);
  try {
    await t.step("connect, stream rows with columns, typed errors", async () => {
      assertEquals(vault.profiles.list().map((p) => p.name), ["pg"]);
      {
        await using db = await vault.connect("pg");
        const result = db.query("select n, n * 2 as twice from generate_series(1, $1::int) n", [
          3,
        ]);
        const cols = await result.columns;
        assertEquals(cols.map((c) => c.name), ["n", "twice"]);
        assertEquals(cols[0]!.type, "int4");
        const rows = [];
        for await (const r of result) rows.push(r);
        assertEquals(rows, [{ n: 1, twice: 2 }, { n: 2, twice: 4 }, { n: 3, twice: 6 }]);
        const e = await assertRejects(() => db.query("selec 1").toArray(), HecateError);
        assertEquals(e.code, "query_failed");
        assertEquals(e.driverCode, "42601");
        assertEquals(e.exitCode, 7);
      }
      assertEquals(await vault.query("pg", "select 'x' as v"), [{ v: "x" }]);
      {
        // toArray() reads the result whole; the columns are still there, and only once.
        await using db = await vault.connect("pg");
        const result = db.query("select n from generate_series(1, $1::int) n", [2500]);
        const rows = await result.toArray();
        assertEquals(rows.length, 2500);
        assertEquals(rows[2499], { n: 2500 });
        assertEquals((await result.columns).map((c) => [c.name, c.type]), [["n", "int4"]]);
        await assertRejects(() => result.toArray(), TypeError);
        assertEquals(
          await db.query("create temp table lib_tmp (n int)").toArray(),
          [],
        );
        assertEquals(await db.query("insert into lib_tmp values (1), (2)").toArray(), []);
      }
      const missing = await assertRejects(() => vault.connect("nope"), HecateError);
      assertEquals(missing.code, "profile_not_found");
      const wrong = await assertRejects(
        () => openVault({ home, password: "not-the-password" }),
        HecateError,
      );
      assertEquals(wrong.code, "auth_failed");
    });

    await t.step("the pool respects max and reuses connections", async () => {
      await using pool = await vault.pool("pg", { max: 3, min: 1 });
      assertEquals(pool.stats().total, 1);
      let peak = 0;
      const watcher = (async () => {
        for (let i = 0; i < 8; i++) {
          peak = Math.max(peak, await sessions(pg));
          await sleep(50);
        }
      })();
      const pids = new Set<number>();
      await Promise.all(Array.from({ length: 10 }, async () => {
        for await (const r of pool.query("select pg_backend_pid() as pid, pg_sleep(0.1)")) {
          pids.add(r.pid as number);
        }
        assert(pool.stats().total <= 3);
      }));
      await watcher;
      assert(peak >= 2 && peak <= 3, `peak sessions ${peak}`);
      assertEquals(pids.size, 3);
      const again = new Set<number>();
      for (let i = 0; i < 5; i++) {
        const [row] = await pool.query("select pg_backend_pid() as pid").toArray();
        again.add(row!.pid as number);
      }
      assert([...again].every((p) => pids.has(p)), "a new connection was opened");
      assertEquals(pool.stats(), { total: 3, idle: 3, inUse: 0, waiting: 0 });
    });

    await t.step(
      "a pool with deferred statement records: all on the trail after close",
      async () => {
        const trail = `${home}/audit.jsonl`;
        const count = async () =>
          (await Deno.readTextFile(trail)).split("\n").filter((l) =>
            l.includes('"event":"query"') && l.includes('"profile":"pg"')
          ).length;
        const before = await count();
        const pool = await vault.pool("pg", { max: 4, auditStatements: "deferred" });
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => pool.query("select $1::int as n", [i]).toArray()),
        );
        assertEquals(results.map((r) => r[0]!.n), Array.from({ length: 200 }, (_, i) => i));
        await pool.close();
        assertEquals(await count(), before + 200);
        const last = JSON.parse((await Deno.readTextFile(trail)).trim().split("\n").at(-1)!);
        assertEquals([last.event, last.outcome, last.rows], ["query", "ok", 1]);
      },
    );

    await t.step("acquire times out when every connection is borrowed", async () => {
      await using pool = await vault.pool("pg", { max: 1, acquireTimeoutMs: 200 });
      const holder = pool.use(async (db) => {
        await db.query("select pg_sleep(0.6)").toArray();
      });
      await sleep(50);
      const t0 = performance.now();
      const e = await assertRejects(() => pool.query("select 1").toArray(), HecateError);
      const waited = performance.now() - t0;
      assertEquals(e.code, "pool_timeout");
      assertEquals(e.exitCode, ExitCode.POOL_TIMEOUT);
      assert(waited >= 150 && waited < 550, `waited ${waited} ms`);
      await holder;
      assertEquals((await pool.query("select 1 as one").toArray())[0]!.one, 1);
    });

    await t.step(
      "idle connections above min are closed; close() drains borrowed ones",
      async () => {
        const pool = await vault.pool("pg", { min: 1, max: 3, idleTimeoutMs: 300 });
        await Promise.all([1, 2, 3].map(() => pool.query("select pg_sleep(0.1)").toArray()));
        assertEquals(pool.stats().total, 3);
        await sleep(1600); // the sweeper runs at least once a second
        assertEquals(pool.stats().total, 1);
        assertEquals(await sessions(pg), 1);
        let finished = false;
        const borrowed = pool.use(async (db) => {
          await db.query("select pg_sleep(0.4)").toArray();
          finished = true;
        });
        await sleep(50);
        await pool.close();
        assert(finished, "close() returned before the borrowed connection came back");
        await borrowed;
        assertEquals(
          (await assertRejects(() => pool.query("select 1").toArray(), HecateError)).code,
          "usage",
        );
        await sleep(100);
        assertEquals(await sessions(pg), 0);
      },
    );

    await t.step(
      "a dead idle connection is caught by the ping, before a write is sent",
      async () => {
        await pg.psql(`create table visits (n int); grant all on visits to ${pg.user}`);
        await using pool = await vault.pool("pg", {
          max: 1,
          healthCheckAfterMs: 100,
          retry: { attempts: 1 }, // no retries at all: only the health check can save the write
        });
        const [{ pid }] = await pool.query("select pg_backend_pid() as pid").toArray() as [
          { pid: number },
        ];
        await pg.psql(`select pg_terminate_backend(${pid})`);
        await sleep(150);
        await pool.query("insert into visits values (1)").toArray();
        assertEquals((await pg.psql("select count(*) from visits")).trim(), "1");
      },
    );

    await t.step("retry carries idempotent reads across a server restart", async () => {
      await using pool = await vault.pool("pg", {
        max: 2,
        retry: { attempts: 30, baseDelayMs: 50, maxDelayMs: 400 },
        breaker: { failureThreshold: 1000 },
      });
      const pids = new Set<number>();
      let restarted = false;
      let ok = 0;
      const restart = (async () => {
        while (ok < 3) await sleep(10); // the pool is in use when the server goes away
        await pg.halt();
        await sleep(300);
        await pg.resume();
        restarted = true;
      })();
      let afterRestart = 0;
      while (afterRestart < 5) {
        const [row] = await pool.query("select pg_backend_pid() as pid", [], { idempotent: true })
          .toArray();
        pids.add(row!.pid as number);
        ok++;
        if (restarted) afterRestart++;
        await sleep(10);
      }
      await restart;
      assert(pids.size >= 2, "the connection was not replaced after the restart");
      assertEquals(pool.breakerState, "closed");
    });

    await t.step("the breaker opens, refuses, half-opens and closes", async () => {
      const v2 = await openVault({ home, password: PASSWORD });
      // The breaker's clock is injected so the cool-down does not depend on machine load.
      let clock = 1_000_000;
      await using pool = await v2.pool("pg", {
        retry: { attempts: 1 },
        breaker: { failureThreshold: 2, coolDownMs: 400, now: () => clock },
      });
      await pg.halt();
      try {
        for (let i = 0; i < 2; i++) {
          const e = await assertRejects(() => pool.query("select 1").toArray(), HecateError);
          assertEquals(e.code, "connection_failed");
          assertEquals(e.driverCode, "ECONNREFUSED");
        }
        assertEquals(pool.breakerState, "open");
        assertEquals(v2.breaker("pg").snapshot().state, "open");
        const e = await assertRejects(() => pool.query("select 1").toArray(), HecateError);
        assertEquals(e.code, "circuit_open");
      } finally {
        await pg.resume();
      }
      // Still open until the cool-down ends, even though the server is back.
      assertEquals(
        (await assertRejects(() => pool.query("select 1").toArray(), HecateError)).code,
        "circuit_open",
      );
      clock += 399;
      assertEquals(pool.breakerState, "open");
      clock += 1;
      assertEquals(pool.breakerState, "half-open");
      assertEquals((await pool.query("select 1 as one").toArray())[0]!.one, 1);
      assertEquals(pool.breakerState, "closed");
    });

    await t.step("callers waiting for a slot learn of a failed connect at once", async () => {
      const v3 = await openVault({ home, password: PASSWORD });
      await using pool = await v3.pool("pg", {
        max: 1,
        acquireTimeoutMs: 5000,
        retry: { attempts: 1 },
        breaker: { failureThreshold: 100 },
      });
      await pg.halt();
      try {
        const t0 = performance.now();
        const results = await Promise.allSettled(
          [1, 2, 3].map(() => pool.query("select 1").toArray()),
        );
        const codes = results.map((r) =>
          r.status === "rejected" && r.reason instanceof HecateError ? r.reason.code : r.status
        );
        assertEquals(codes, ["connection_failed", "connection_failed", "connection_failed"]);
        assert(performance.now() - t0 < 3000, "a waiter sat out the acquire timeout");
      } finally {
        await pg.resume();
      }
    });

    await t.step("a statement that may have committed is never sent again", async () => {
      await pg.psql(`create table ledger (n int); grant all on ledger to ${pg.user}`);
      await using pool = await vault.pool("pg", {
        retry: { attempts: 5, baseDelayMs: 10 },
        breaker: { failureThreshold: 1000 },
      });
      const insert = pool.query(
        "with ins as (insert into ledger values (1) returning n) " +
          "select n, pg_sleep(1) as marker_insert from ins",
      ).toArray();
      insert.catch(() => {}); // awaited below; must not count as unhandled meanwhile
      await terminateWhenRunning(pg, "marker_insert");
      const e = await assertRejects(() => insert, HecateError);
      assertEquals(e.driverCode, "57P01");
      // Killed before commit, and not re-sent: a retry would have inserted a row.
      assertEquals((await pg.psql("select count(*) from ledger")).trim(), "0");

      // The same failure on a statement declared idempotent is retried on a new connection.
      const read = pool.query("select pg_backend_pid() as pid, pg_sleep(0.5) as marker_read", [], {
        idempotent: true,
      }).toArray();
      await terminateWhenRunning(pg, "marker_read");
      const rows = await read;
      assertEquals(rows.length, 1);
    });
  } finally {
    await vault.close();
    await Deno.remove(home, { recursive: true });
  }
});
