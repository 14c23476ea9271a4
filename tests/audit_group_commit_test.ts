/**
 * Durable statement records at pool speed (src/audit/log.ts): concurrent appends of one process
 * share flushes and holds of the lock, yet each record is flushed before its append resolves;
 * many concurrent records all reach a trail that verifies; a writer killed in the middle of a
 * hold (its state file behind its flushed lines) loses no record it had reported final, and the
 * next writer's recovery adopts them so that the chain verifies, while a state file put back
 * from an old copy is not adopted over; and a statement's result is never returned before its
 * record is durable.
 */

import assert from "node:assert/strict";
import { type AuditEvent, FileAuditLog, startChain } from "../src/audit/log.ts";
import { readState } from "../src/audit/state.ts";
import { verifyTrail } from "../src/audit/verify.ts";
import { Connection } from "../src/api/connection.ts";
import type { CollectedSet, DbConnection } from "../src/db/driver.ts";
import { auditLines, withHome } from "./support/access.ts";
import { burstUntilKilled } from "./support/burst_until_killed.ts";

const query = (rows: number): AuditEvent => ({
  event: "query",
  actor: { kind: "apikey", id: "k", name: "pool" },
  profile: "billing",
  outcome: "ok",
  rows,
  durationMs: 0,
});

/**
 * Replaces FsFile.syncData for the length of `fn`: each flush of the trail is slowed down by
 * `delayMs` and, once done, records how many bytes of the file it covered (the size when it
 * started). Flushes of the state file (`audit.state` in `home`, same inode) pass through uncounted.
 */
async function withFlushHook(
  home: string,
  delayMs: number,
  fn: (flushed: () => number, flushes: () => number) => Promise<void>,
): Promise<void> {
  const original = Deno.FsFile.prototype.syncData;
  let covered = 0;
  let count = 0;
  const stateIno = Deno.statSync(`${home}/audit.state`).ino;
  Deno.FsFile.prototype.syncData = async function (this: Deno.FsFile) {
    const st = this.statSync();
    if (st.ino === stateIno) return await original.call(this);
    const size = st.size;
    await new Promise((r) => setTimeout(r, delayMs));
    await original.call(this);
    covered = Math.max(covered, size);
    count++;
  };
  try {
    await fn(() => covered, () => count);
  } finally {
    Deno.FsFile.prototype.syncData = original;
  }
}

/** Byte offset just after the trail line whose `rows` is `rows`. */
function endOf(text: string, rows: number): number {
  let at = 0;
  for (const line of text.split("\n")) {
    at += new TextEncoder().encode(line).length + 1;
    if (line && JSON.parse(line).rows === rows) return at;
  }
  assert.fail(`no record with rows ${rows}`);
}

Deno.test("each append resolves only after a flush that covers its line, and concurrent ones share flushes", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home);
    await withFlushHook(home, 15, async (flushed, flushes) => {
      const before = flushes();
      const N = 40;
      const late: number[] = [];
      // Four waves of ten concurrent callers; a caller checks the disk the moment it resumes.
      for (let wave = 0; wave < 4; wave++) {
        await Promise.all(Array.from({ length: N / 4 }, async (_, k) => {
          const rows = wave * 100 + k;
          await log.append(query(rows));
          const end = endOf(Deno.readTextFileSync(log.path), rows);
          if (end > flushed()) late.push(rows);
        }));
      }
      assert.deepEqual(late, [], "appends resolved before their line was flushed");
      const used = flushes() - before;
      assert.ok(used < N / 2, `${used} flushes for ${N} concurrent records`);
    });
    // Once the writer is done (flush waits for it), the state counts every line: other
    // processes never see it behind.
    await log.flush();
    const lines = await auditLines(home);
    assert.equal((await readState(home))!.seq, lines.at(-1)!.seq);
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
  });
});

Deno.test("many concurrent statements of one process: every record present, in call order per caller, the chain verifies", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home);
    const WORKERS = 8, EACH = 60;
    await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
      for (let i = 0; i < EACH; i++) {
        await log.append(query(w * 1000 + i));
        // A statement's own round trip between records, of varying length.
        if (i % 3 === 0) await new Promise((r) => setTimeout(r, (w + i) % 3));
      }
    }));
    await log.flush();
    const got = (await auditLines(home)).slice(1);
    assert.equal(got.length, WORKERS * EACH);
    for (let w = 0; w < WORKERS; w++) {
      const mine = got.map((l) => l.rows as number).filter((r) => Math.floor(r / 1000) === w);
      assert.deepEqual(mine, Array.from({ length: EACH }, (_, i) => w * 1000 + i));
    }
    assert.deepEqual(got.map((l) => l.seq), got.map((_, i) => i + 2));
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.equal(report.entries, WORKERS * EACH + 1);
  });
});

Deno.test("a writer killed in the middle of a hold loses no final record; the next writer adopts the flushed lines and the chain verifies", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    let behind = 0;
    for (let run = 0; run < 8 && (run < 3 || behind === 0); run++) {
      const acked = await burstUntilKilled(home, run * 100_000_000, 150 + run * 50);
      assert.ok(acked.length >= 150);
      const onDisk = new Set(
        Deno.readTextFileSync(`${home}/audit.jsonl`).split("\n").filter((l) => l.endsWith("}"))
          .map((l) => JSON.parse(l).rows),
      );
      const lost = acked.filter((r) => !onDisk.has(r));
      assert.deepEqual(lost, [], "records reported final are missing after the kill");
      const state = (await readState(home))!;
      const lines = await auditLines(home).catch(() => []);
      if (state.seq < (lines.at(-1)?.seq as number ?? 0)) behind++;
      // The next writer (another process's log object) recovers, then appends after it.
      await new FileAuditLog(home).append(query(-1 - run));
      const report = await verifyTrail(home, a0);
      assert.equal(report.ok, true, `run ${run}: ${report.problem?.message ?? ""}`);
      assert.equal((await readState(home))!.seq, report.entries);
    }
    assert.ok(behind > 0, "no kill caught the state behind the flushed lines");
  });
});

Deno.test("a statement's result is not returned before its audit record is durable", async () => {
  const order: string[] = [];
  const sink = {
    append: async (e: AuditEvent) => {
      order.push(`record ${e.rows} started`);
      await new Promise((r) => setTimeout(r, 30)); // a slow disk
      order.push(`record ${e.rows} durable`);
    },
  };
  const set: CollectedSet = { columns: [{ name: "n", type: "int4" }], rows: [[1]], rowCount: 1 };
  const conn: DbConnection = {
    async *query() {
      yield { columns: set.columns, rows: (async function* () {})(), rowCount: () => 0 } as never;
    },
    collect: () => Promise.resolve(set),
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const db = new Connection("billing", "postgres", conn, sink);
  await Promise.all([1, 2, 3].map(async (k) => {
    const { rows } = await db.collect("select $1::int as n", [k]);
    assert.deepEqual(rows, [{ n: 1 }]);
    order.push(`result ${k}`);
  }));
  assert.equal(order.length, 9);
  for (const line of order.filter((l) => l.startsWith("result"))) {
    const at = order.indexOf(line);
    // Each result comes after a record of its own was durable (one record per statement, rows 1).
    const durableBefore = order.slice(0, at).filter((l) => l.endsWith("durable")).length;
    const resultsBefore = order.slice(0, at).filter((l) => l.startsWith("result")).length;
    assert.ok(durableBefore > resultsBefore, order.join(", "));
  }
});

Deno.test("a state file put back from an older copy is not healed by crash recovery: lines written long after it stay for verify to report", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    let t = Date.parse("2026-12-03T08:00:00Z");
    const log = new FileAuditLog(home, { now: () => new Date(t) });
    await log.append(query(1));
    const old = await Deno.readTextFile(`${home}/audit.state`); // the attacker's copy
    for (let i = 2; i <= 4; i++) {
      t += 3_000; // one process, lines 9 s apart in all: never one hold
      await log.append(query(i));
    }
    await Deno.writeTextFile(`${home}/audit.state`, old);
    await new FileAuditLog(home).append(query(5));
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, false, "the put-back state was adopted over as if after a crash");
  });
});

Deno.test("records sealed while a hold waits are sealed again when another writer or a segment change comes first: the chain verifies", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    // Small segments: holds end for a rotation with records already queued (and sealed ahead on
    // the old state), and a second writer on the same home appends between this one's holds.
    const mine = new FileAuditLog(home, { segmentBytes: 4096 });
    const other = new FileAuditLog(home, { segmentBytes: 4096 });
    const WORKERS = 8, EACH = 40;
    await Promise.all([
      ...Array.from({ length: WORKERS }, async (_, w) => {
        for (let i = 0; i < EACH; i++) {
          await mine.append(query(w * 1000 + i));
          if (i % 4 === 0) await new Promise((r) => setTimeout(r, 0));
        }
      }),
      (async () => {
        for (let i = 0; i < EACH; i++) {
          await other.append(query(900_000 + i));
          await new Promise((r) => setTimeout(r, 1));
        }
      })(),
    ]);
    await mine.flush();
    await other.flush();
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.equal(report.entries, (WORKERS + 1) * EACH + 1);
  });
});
