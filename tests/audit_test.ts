/**
 * The audit trail through the library (src/audit): the chain construction, crash recovery,
 * segments and retention, 20 concurrent appending processes, fail-closed writes, and exports.
 * Chains here are started with `startChain` (no vault, no KDF) so the tests stay fast; the CLI
 * tests (audit_cli_test.ts) go through a real vault and the master password. A chain starts
 * with one entry (`audit.start` here, `init` for a vault), so counts below include it.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { entryMac, nextKey, stepKey, ZERO_MAC } from "../src/audit/chain.ts";
import { FastHmac } from "../src/audit/fast_hmac.ts";
import { type AuditEvent, type AuditSink, FileAuditLog, startChain } from "../src/audit/log.ts";
import { closedSegments, segmentName } from "../src/audit/segments.ts";
import { readState, STATE_FILE } from "../src/audit/state.ts";
import { verifyTrail } from "../src/audit/verify.ts";
import { exportTrail, verifyExport } from "../src/audit/export.ts";
import { HecateError } from "../src/errors.ts";
import { initVault, openVault } from "../src/hecate.ts";
import { fromBase64Url, toBase64Url } from "../src/vault/encoding.ts";
import { VaultStore } from "../src/vault/store.ts";
import { UnlockedVault } from "../src/vault/vault.ts";

const APPENDER = new URL("./support/audit_appender.ts", import.meta.url).pathname;

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "hecate-audit-test-" });
  await Deno.chmod(home, 0o700);
  try {
    await fn(home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

const QUERY: AuditEvent = {
  event: "query",
  actor: { kind: "apikey", id: "k-1", name: "nightly" },
  profile: "billing",
  outcome: "ok",
  rows: 3,
  durationMs: 12,
  sqlSha256: "ab".repeat(32),
};

async function fill(log: FileAuditLog, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await log.append({ ...QUERY, rows: i });
}

async function lines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("FastHmac agrees with node:crypto and the RFC 4231 vector; the key step is SHA-256(label || key)", async () => {
  const h = await FastHmac.create();
  const enc = new TextEncoder();
  // RFC 4231 test case 2.
  assert.equal(
    hex(h.mac(enc.encode("Jefe"), enc.encode("what do ya want "), enc.encode("for nothing?"))),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
  for (let i = 0; i < 50; i++) {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const prev = crypto.getRandomValues(new Uint8Array(32));
    const body = crypto.getRandomValues(new Uint8Array(i * 13));
    const step = h.step(key, prev, body);
    assert.deepEqual(step.mac, entryMac(key, prev, new Uint8Array([...body, 0x7d])));
    assert.deepEqual(step.next, nextKey(key));
    assert.deepEqual(
      step.next,
      new Uint8Array(
        createHash("sha256").update("hecate-audit-v1 next key").update(key).digest(),
      ),
    );
  }
});

Deno.test("each line has the canonical members in order, its MAC chains from A0, and the state keeps only the next key", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home, { host: "testhost" });
    await log.append({ event: "unlock", actor: { kind: "password" }, outcome: "ok" });
    await log.append(QUERY);
    await log.append({
      event: "unlock",
      actor: { kind: "password" },
      outcome: "fail",
      reason: "auth_failed",
    });
    const ls = await lines(log.path);
    assert.equal(ls.length, 4);
    assert.equal(JSON.parse(ls[0]!).event, "audit.start");
    const second = JSON.parse(ls[2]!);
    assert.deepEqual(Object.keys(second), [
      "seq",
      "time",
      "event",
      "actor",
      "profile",
      "outcome",
      "rows",
      "duration_ms",
      "sql_sha256",
      "pid",
      "host",
      "mac",
    ]);
    assert.match(second.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(second.actor, { kind: "apikey", id: "k-1", name: "nightly" });
    assert.equal(second.pid, Deno.pid);
    assert.equal(second.host, "testhost");
    assert.equal(JSON.parse(ls[3]!).reason, "auth_failed");

    // Recompute by hand from the documented construction.
    let key: Uint8Array = a0;
    let prev: Uint8Array = ZERO_MAC;
    for (const [i, l] of ls.entries()) {
      const o = JSON.parse(l);
      assert.equal(o.seq, i + 1);
      const canonical = l.slice(0, l.lastIndexOf(',"mac":"')) + "}";
      const mac = entryMac(key, prev, new TextEncoder().encode(canonical));
      assert.equal(o.mac, toBase64Url(mac));
      prev = mac;
      key = nextKey(key);
    }
    const state = (await readState(home))!;
    assert.equal(state.seq, 4);
    assert.deepEqual(state.key, stepKey(a0, 4));
    assert.deepEqual(state.mac, prev);
    assert.equal((await Deno.stat(`${home}/${STATE_FILE}`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(log.path)).mode! & 0o777, 0o600);
    // No earlier key is left in the state file or anywhere in the home.
    const all = (await Promise.all(
      [...Deno.readDirSync(home)].filter((e) => e.isFile).map((e) =>
        Deno.readTextFile(`${home}/${e.name}`)
      ),
    )).join("\n");
    for (const k of [a0, stepKey(a0, 1), stepKey(a0, 2), stepKey(a0, 3)]) {
      assert.ok(!all.includes(toBase64Url(k)), "an old chain key is still on disk");
    }
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.equal(report.entries, 4);
  });
});

Deno.test("after a crash, a written but unrecorded entry is adopted and a half-written line is cut off", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home);
    await fill(log, 2);
    const before = await Deno.readTextFile(`${home}/${STATE_FILE}`);
    await fill(log, 1);
    // Crash between the log fsync and the state rename: the state is one entry behind.
    await Deno.writeTextFile(`${home}/${STATE_FILE}`, before);
    await fill(log, 1);
    assert.equal((await lines(log.path)).length, 5);
    assert.equal((await verifyTrail(home, a0)).ok, true);
    // Crash in the middle of a write: a partial line without its newline.
    await Deno.writeTextFile(log.path, '{"seq":6,"time":"2026', { append: true });
    await fill(log, 1);
    const ls = await lines(log.path);
    assert.equal(ls.length, 6);
    assert.equal(JSON.parse(ls[5]!).seq, 6);
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
  });
});

Deno.test("the active segment rotates by size and by age, the chain continues, and verify reads every segment", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    await fill(new FileAuditLog(home, { segmentBytes: 1500 }), 30);
    const segs = await closedSegments(home);
    assert.ok(segs.length >= 3, `only ${segs.length} segments`);
    assert.equal(segs[0]!.name, segmentName(1));
    for (const s of segs) {
      const first = JSON.parse((await lines(s.path))[0]!).seq;
      assert.equal(first, s.first);
    }
    let clock = Date.now() + 31 * 86_400_000; // a month later
    const aged = new FileAuditLog(home, { now: () => new Date(clock++) });
    await aged.append(QUERY);
    assert.equal((await closedSegments(home)).length, segs.length + 1);
    assert.equal((await lines(aged.path)).length, 1);
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.equal(report.entries, 32);
    assert.equal(report.files, segs.length + 2);
  });
});

Deno.test("retention removes old segments only after a signed record, and verify names what was removed", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    // Without the retention key (no password unlock), segments are closed but never removed.
    await fill(new FileAuditLog(home, { segmentBytes: 1500, keepSegments: 2 }), 30);
    assert.ok((await closedSegments(home)).length > 2);
    assert.equal((await verifyTrail(home, a0)).firstSeq, 1);
    const log = new FileAuditLog(home, { segmentBytes: 1500, keepSegments: 2 });
    log.enableRetention(a0);
    await fill(log, 10);
    const segs = await closedSegments(home);
    assert.equal(segs.length, 2);
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.ok(report.firstSeq > 1);
    assert.ok(report.removed.length >= 1);
    assert.equal(report.removed.at(-1)!.last_seq, report.firstSeq - 1);
    // The record is in the chain: altering it breaks verification.
    const files = [...segs.map((s) => s.path), `${home}/audit.jsonl`];
    const holder =
      (await Promise.all(files.map(async (f) => ({ f, t: await Deno.readTextFile(f) }))))
        .find(({ t }) => t.includes('"audit.retention"'));
    assert.ok(holder, "no retention record in the remaining files");
    await Deno.writeTextFile(holder.f, holder.t.replace('"last_seq":', '"last_seq":1'));
    assert.equal((await verifyTrail(home, a0)).ok, false);
    await Deno.writeTextFile(holder.f, holder.t);
    assert.equal((await verifyTrail(home, a0)).ok, true);
    // Removing the oldest remaining segment without a record is reported as a missing segment.
    await Deno.remove(segs[0]!.path);
    const bad = await verifyTrail(home, a0);
    assert.equal(bad.problem?.kind, "segment_missing", bad.problem?.message ?? "");
  });
});

Deno.test("20 processes appending at once (rotating segments meanwhile) leave a valid chain with no lost or interleaved lines", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const N = 20;
    const EACH = 5;
    const children = Array.from({ length: N }, (_, i) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          "--allow-sys",
          APPENDER,
          home,
          `p${i}`,
          String(EACH),
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        // Small segments, so that rotations happen while the others wait on the lock.
        env: { NO_COLOR: "1", HECATE_AUDIT_SEGMENT_BYTES: "4000" },
      }).spawn());
    const readers = children.map((c) => c.stdout.pipeThrough(new TextDecoderStream()).getReader());
    for (const r of readers) assert.equal((await r.read()).value?.trim(), "ready");
    const go = new TextEncoder().encode("go\n");
    await Promise.all(children.map(async (c) => {
      const w = c.stdin.getWriter();
      await w.write(go);
      await w.close();
    }));
    for (const [i, c] of children.entries()) {
      const status = await c.status;
      const err = await new Response(c.stderr).text();
      assert.equal(status.code, 0, `child ${i}: ${err}`);
      readers[i]!.releaseLock();
      await c.stdout.cancel().catch(() => {});
    }
    const segs = await closedSegments(home);
    assert.ok(segs.length >= 3, `only ${segs.length} rotations`);
    const ls: string[] = [];
    for (const f of [...segs.map((s) => s.path), `${home}/audit.jsonl`]) ls.push(...await lines(f));
    assert.equal(ls.length, N * EACH + 1);
    const perChild = new Map<string, number[]>();
    for (const [i, l] of ls.entries()) {
      const o = JSON.parse(l); // every line is one whole JSON object
      assert.equal(o.seq, i + 1);
      if (i === 0) continue; // the chain's start
      perChild.set(o.actor.id, [...(perChild.get(o.actor.id) ?? []), o.rows]);
    }
    assert.equal(perChild.size, N);
    for (const rows of perChild.values()) assert.deepEqual(rows, [0, 1, 2, 3, 4]);
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.equal(report.entries, N * EACH + 1);
  });
});

Deno.test("an unwritable trail fails closed with audit_failed; HECATE_AUDIT_FAILURE=warn only warns", async () => {
  await withHome(async (home) => {
    await startChain(home);
    const log = new FileAuditLog(home);
    await fill(log, 1);
    // Disk full: the log is /dev/full.
    await Deno.remove(log.path);
    await Deno.symlink("/dev/full", log.path);
    await assert.rejects(() => log.append(QUERY), (e: unknown) => {
      assert.ok(e instanceof HecateError);
      assert.equal(e.code, "audit_failed");
      assert.equal(e.exitCode, 12);
      return true;
    });
    assert.equal((await readState(home))!.seq, 2, "the state moved on without a record");
    const warnings: string[] = [];
    await new FileAuditLog(home, { failure: "warn", onWarning: (m) => warnings.push(m) }).append(
      QUERY,
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /audit failure mode "warn": continuing without it/);
    // A missing state file: nothing can be chained, so nothing is written.
    await Deno.remove(log.path);
    await Deno.remove(`${home}/${STATE_FILE}`);
    await assert.rejects(() => log.append(QUERY), /state file .* is missing/);
  });
});

Deno.test("the profile.read record is written before a secret is used: if it fails, no connection is opened", async () => {
  await withHome(async (home) => {
    const pw = "audit test password";
    await initVault({ home, password: pw, kdfIterations: 600_000 });
    const db = `${home}/reachable.db`;
    await Deno.writeFile(db, new Uint8Array()); // so that only the audit failure can stop connect
    // A fake sink (named as such): the real file sink, but refusing profile.read records.
    const real = new FileAuditLog(home);
    const fakeFailingOnRead: AuditSink = {
      append: (e) =>
        e.event === "profile.read"
          ? Promise.reject(new HecateError("audit_failed", "Cannot write the audit record"))
          : real.append(e),
    };
    const vault = await openVault({ home, password: pw, audit: fakeFailingOnRead });
    await vault.profiles.add({ name: "lite", engine: "sqlite", database: db });
    await assert.rejects(() => vault.connect("lite"), (e: unknown) => {
      assert.ok(e instanceof HecateError);
      assert.equal(e.code, "audit_failed");
      return true;
    });
    // With the record written, the same profile connects: the refusal above was the audit's.
    const vault2 = await openVault({ home, password: pw });
    await (await vault2.connect("lite")).close();
  });
});

Deno.test("deferred records go out in group writes, keep the chain, and are all on disk after flush", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home);
    for (let i = 0; i < 300; i++) log.enqueue({ ...QUERY, rows: i });
    await log.flush();
    const ls = (await lines(log.path)).slice(1);
    assert.equal(ls.length, 300);
    // In the order they were enqueued.
    assert.deepEqual(ls.map((l) => JSON.parse(l).rows), Array.from({ length: 300 }, (_, i) => i));
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.equal(report.entries, 301);
    // Durable records queued behind deferred ones keep their place in the chain.
    log.enqueue({ ...QUERY, rows: 300 });
    await log.append({ ...QUERY, rows: 301 });
    assert.deepEqual((await lines(log.path)).slice(-2).map((l) => JSON.parse(l).rows), [300, 301]);
  });
});

Deno.test("deferred records reach the disk on their own, without flush", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home);
    for (let i = 0; i < 5; i++) log.enqueue({ ...QUERY, rows: i });
    // No flush: the pending write must still happen (it also keeps a process alive until then).
    let n = 0;
    for (let i = 0; i < 200 && n < 6; i++) {
      await new Promise((r) => setTimeout(r, 10));
      n = await Deno.readTextFile(log.path).then((t) => t.split("\n").length - 1, () => 0);
    }
    assert.equal(n, 6);
    assert.equal((await verifyTrail(home, a0)).entries, 6);
  });
});

Deno.test("a deferred record that cannot be written fails flush and refuses every later record", async () => {
  await withHome(async (home) => {
    await startChain(home);
    const log = new FileAuditLog(home);
    await fill(log, 1);
    await Deno.remove(log.path);
    await Deno.symlink("/dev/full", log.path); // disk full
    log.enqueue(QUERY); // returns at once; the failure comes later
    const isAuditFailed = (e: unknown) => {
      assert.ok(e instanceof HecateError);
      assert.equal(e.code, "audit_failed");
      return true;
    };
    await assert.rejects(() => log.flush(), isAuditFailed);
    // Fail closed from now on, even with the disk fixed: the trail is missing a record.
    await Deno.remove(log.path);
    assert.throws(() => log.enqueue(QUERY), isAuditFailed);
    assert.throws(() => log.assertWritable(), isAuditFailed);
    await assert.rejects(() => log.append(QUERY), isAuditFailed);
    assert.equal((await readState(home))!.seq, 2, "the chain moved on without its records");
  });
});

Deno.test("a connection with deferred statement records: every statement is on the trail after close", async () => {
  await withHome(async (home) => {
    const pw = "audit test password";
    await initVault({ home, password: pw, kdfIterations: 600_000 });
    const db = `${home}/lite.db`;
    await Deno.writeFile(db, new Uint8Array());
    const vault = await openVault({ home, password: pw });
    await vault.profiles.add({ name: "lite", engine: "sqlite", database: db });
    const conn = await vault.connect("lite", { auditStatements: "deferred" });
    for (let i = 0; i < 120; i++) {
      assert.deepEqual(await conn.query("select ? as n", [i]).toArray(), [{ n: i }]);
    }
    await assert.rejects(() => conn.query("selec 1").toArray(), HecateError);
    await conn.close();
    const entries = (await lines(`${home}/audit.jsonl`)).map((l) => JSON.parse(l));
    const queries = entries.filter((e) => e.event === "query" && e.profile === "lite");
    assert.equal(queries.length, 121);
    assert.equal(queries.filter((q) => q.outcome === "ok").length, 120);
    assert.equal(queries.at(-1).outcome, "fail");
    // The parameter values never reach the trail; the SQL only as its hash.
    const text = await Deno.readTextFile(`${home}/audit.jsonl`);
    assert.ok(!text.includes("select ? as n"));
    await vault.close();
  });
});

Deno.test("an export verifies with A0, names a changed or cut line, and holds no key", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home);
    await fill(log, 1);
    // Entries carry millisecond times: seq 3 (the `since` below) must be later than seq 1 and 2.
    await new Promise((r) => setTimeout(r, 5));
    await fill(log, 4);
    const mid = JSON.parse((await lines(log.path))[2]!).time;
    await fill(log, 5);
    let text = "";
    const h = await exportTrail(home, a0, "vault-id", (t) => Promise.resolve(void (text += t)), {
      since: new Date(mid),
    });
    assert.equal(h.first_seq, 3);
    assert.equal(h.last_seq, 11);
    const header = await verifyExport(text, a0);
    assert.equal(header.entries, 9);
    for (let i = 0; i <= 11; i++) {
      assert.ok(!text.includes(toBase64Url(stepKey(a0, i))), "a chain key in the export");
    }
    const rows = text.trimEnd().split("\n");
    await assert.rejects(
      () => verifyExport(text.replace('"rows":2', '"rows":4'), a0),
      /Line 4 of the export \(seq 5\) was altered/,
    );
    await assert.rejects(
      () => verifyExport(rows.slice(0, -2).join("\n") + "\n", a0),
      /truncated/,
    );
    await assert.rejects(
      () => verifyExport(text, crypto.getRandomValues(new Uint8Array(32))),
      /header was altered or belongs to another vault/,
    );
    assert.deepEqual(fromBase64Url(header.prev_mac).length, 32);
  });
});

Deno.test("a large appendMany batch (WebAssembly HMAC) chains exactly like single appends", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home);
    await log.append(QUERY);
    await log.appendMany(Array.from({ length: 300 }, (_, i) => ({ ...QUERY, rows: i })));
    await log.append(QUERY);
    const state = (await readState(home))!;
    assert.equal(state.seq, 303);
    assert.deepEqual(state.key, stepKey(a0, 303));
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.equal(report.entries, 303);
  });
});

Deno.test("the parallel verify pass agrees with the sequential one, and a problem is still named precisely", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home, { segmentBytes: 400_000 });
    for (let i = 0; i < 5; i++) {
      await log.appendMany(Array.from({ length: 2000 }, (_, j) => ({ ...QUERY, rows: j })));
    }
    const seq = await verifyTrail(home, a0, undefined, { workers: 0 });
    const par = await verifyTrail(home, a0, undefined, { workers: 2 });
    assert.equal(par.ok, true, par.problem?.message ?? "");
    assert.deepEqual(par, seq);
    assert.equal(par.entries, 10_001);
    // One byte changed deep inside a closed segment, in the middle of a worker batch.
    const seg = (await closedSegments(home))[1]!;
    const ls = await lines(seg.path);
    ls[100] = ls[100]!.replace('"rows":', '"rows":9');
    await Deno.writeTextFile(seg.path, ls.map((l) => l + "\n").join(""));
    const bad = await verifyTrail(home, a0, undefined, { workers: 2 });
    assert.equal(bad.problem?.kind, "edited");
    assert.equal(bad.problem?.file, seg.name);
    assert.equal(bad.problem?.line, 101);
  });
});

Deno.test("a vault made before the chained trail gets its first chain key on the first unlock", async () => {
  await withHome(async (home) => {
    const pw = "audit test password";
    // A vault file written without meta.audit, and an old plain trail beside it.
    const old = await UnlockedVault.create(pw, { iterations: 600_000 });
    const store = new VaultStore(home);
    await store.withLock(async () => {
      const { bytes, generation } = await old.serialize();
      await store.replace(bytes, generation);
    });
    await Deno.writeTextFile(`${home}/audit.jsonl`, '{"event":"unlock","outcome":"ok"}\n');
    const vault = await openVault({ home, password: pw });
    const a0 = vault.auditChainKey();
    assert.ok(a0, "no chain key in the vault");
    const moved = [...Deno.readDirSync(home)].map((e) => e.name).filter((n) =>
      n.startsWith("audit.jsonl.before-")
    );
    assert.equal(moved.length, 1, "the old plain trail was not kept aside");
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    // The chain's start, the record of the write that stored its key, then this unlock.
    assert.equal(report.entries, 3);
    const again = await openVault({ home, password: pw });
    assert.deepEqual(again.auditChainKey(), a0);
  });
});

Deno.test("concurrent appends in one process share writes, keep call order and verify", async () => {
  await withHome(async (home) => {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home);
    // 200 callers at once: each promise resolves only when its own record is on disk.
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append({ ...QUERY, rows: i })));
    const rows = (await lines(`${home}/audit.jsonl`)).slice(1).map((l) => JSON.parse(l).rows);
    assert.deepEqual(rows, Array.from({ length: 200 }, (_, i) => i));
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.equal(report.entries, 201);
  });
});

Deno.test("when a shared write fails, every caller waiting on it is refused", async () => {
  await withHome(async (home) => {
    await startChain(home);
    const log = new FileAuditLog(home);
    await log.append(QUERY);
    // The active segment cannot be opened for appending: a directory stands in its place (tests
    // run as root, which file modes would not stop).
    await Deno.remove(`${home}/audit.jsonl`);
    await Deno.mkdir(`${home}/audit.jsonl`);
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => log.append(QUERY)),
    );
    assert.deepEqual(results.map((r) => r.status), Array(5).fill("rejected"));
    for (const r of results) {
      assert.equal((r as PromiseRejectedResult).reason.code, "audit_failed");
    }
  });
});
