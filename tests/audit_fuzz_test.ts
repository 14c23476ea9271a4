/**
 * Property-based tests (fast-check, bounded runs) of what an attacker can feed the audit code:
 * the line parsers, the state file parser, the reader behind `audit show`, retention proofs, the
 * export verifier, and `verifyTrail` over random mutations of a real small trail (byte flips,
 * cuts, inserted bytes, swapped, dropped or repeated lines, deleted files). Properties: no crash
 * other than the documented HecateError codes, no hang, never "intact" once a byte of the trail
 * changed, and no canary from the input in any message.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeMacText, macOffset, seqOf, splitLine } from "../src/audit/entry.ts";
import { exportTrail, verifyExport } from "../src/audit/export.ts";
import { FileAuditLog, startChain } from "../src/audit/log.ts";
import { jsonSafe, trailLines } from "../src/audit/read.ts";
import { provenStart } from "../src/audit/retention.ts";
import { closedSegments } from "../src/audit/segments.ts";
import { parseState, STATE_FILE } from "../src/audit/state.ts";
import { verifyTrail } from "../src/audit/verify.ts";
import { HecateError } from "../src/errors.ts";
import { within } from "./support/within.ts";

const CANARY = `canary-${crypto.randomUUID()}`;
const UNSAFE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

function documented(e: unknown, ...codes: string[]): void {
  assert.ok(e instanceof HecateError, `not a HecateError: ${e}`);
  assert.ok(codes.includes(e.code), `unexpected code ${e.code}: ${e.message}`);
  assert.ok(!e.message.includes(CANARY), "the input leaked into the message");
}

const GOOD_STATE = {
  v: 1,
  seq: 7,
  mac: "A".repeat(43),
  key: "B".repeat(42) + "A",
  size: 100,
  segment_first: 1,
  segment_started: 0,
};

Deno.test("parseState: any text gives a well-formed state or audit_failed", () => {
  const member = fc.constantFrom(...Object.keys(GOOD_STATE));
  const text = fc.oneof(
    fc.string(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.tuple(member, fc.jsonValue()).map(([k, v]) => JSON.stringify({ ...GOOD_STATE, [k]: v })),
    fc.tuple(fc.nat(200), fc.string()).map(([at, s]) => {
      const t = JSON.stringify({ ...GOOD_STATE, host: CANARY });
      return t.slice(0, at) + s + t.slice(at + s.length);
    }),
  );
  fc.assert(
    fc.property(text, (t) => {
      try {
        const s = parseState(t, "audit.state");
        assert.equal(s.key.length, 32);
        assert.equal(s.mac.length, 32);
        for (const n of [s.seq, s.size, s.segmentFirst, s.segmentStarted]) {
          assert.ok(Number.isSafeInteger(n) && n >= 0);
        }
      } catch (e) {
        documented(e, "audit_failed");
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("line parsers: any bytes give a consistent answer and never throw", () => {
  const real = new TextEncoder().encode(
    `{"seq":12,"time":"t","event":"e","actor":{"kind":"none"},"outcome":"ok","pid":1,` +
      `"host":"h","mac":"${"A".repeat(43)}"}`,
  );
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.tuple(fc.nat(real.length), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(
      ([at, b]) => {
        const m = real.slice();
        m.set(b.subarray(0, m.length - at), at);
        return m;
      },
    ),
    fc.nat(real.length).map((n) => real.slice(0, n)),
  );
  fc.assert(
    fc.property(bytes, (line) => {
      const seq = seqOf(line);
      assert.ok(seq === -1 || (Number.isSafeInteger(seq) && seq >= 0));
      const parts = splitLine(line);
      const off = macOffset(line);
      if (parts) {
        assert.equal(off, parts.body.length);
        assert.equal(parts.mac.length, 43);
        decodeMacText(line, off + 8, new Uint8Array(32));
      } else assert.equal(off, -1);
    }),
    { numRuns: 500 },
  );
});

Deno.test("the reader behind audit show: any file gives lines it can print safely", async () => {
  const home = await Deno.makeTempDir({ prefix: "hecate-audit-fuzz-" });
  try {
    const line = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.dictionary(
        fc.constantFrom("seq", "time", "event", "actor", "profile", "outcome", "detail", "mac"),
        fc.jsonValue(),
      ).map((o) => JSON.stringify(o)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 8 }), async (ls) => {
        await Deno.writeTextFile(`${home}/audit.jsonl`, ls.join("\n"));
        for (const l of await within(collect(trailLines(home)), 5000)) {
          const safe = jsonSafe(l.text);
          assert.doesNotMatch(safe, UNSAFE);
          try {
            assert.deepEqual(JSON.parse(safe), JSON.parse(l.text)); // same value when JSON
          } catch (e) {
            if (e instanceof assert.AssertionError) throw e;
          }
          if (l.entry) {
            // What the printer reads is of the type it expects.
            for (const k of ["time", "event", "profile", "outcome", "reason"] as const) {
              const v: unknown = l.entry[k];
              assert.ok(v === undefined || typeof v === "string", k);
            }
            const a = l.entry.actor as unknown;
            assert.ok(a === undefined || (typeof a === "object" && a !== null));
          }
        }
      }),
      { numRuns: 150 },
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

Deno.test("provenStart: no made-up retention record proves anything", () => {
  const a0 = crypto.getRandomValues(new Uint8Array(32));
  fc.assert(
    fc.property(fc.jsonValue(), fc.integer({ min: 2, max: 1000 }), (detail, first) => {
      const r = provenStart(a0, detail, first);
      assert.ok("refused" in r);
    }),
    { numRuns: 500 },
  );
});

/** A small real trail: segments, a proven retention, a canary in a profile name. */
async function buildTrail(
  home: string,
): Promise<{ a0: Uint8Array; files: Map<string, Uint8Array> }> {
  const a0 = await startChain(home);
  const log = new FileAuditLog(home, { segmentBytes: 1200, keepSegments: 2, host: "h" });
  log.enableRetention(a0);
  for (let i = 0; i < 24; i++) {
    await log.append({
      event: "query",
      actor: { kind: "apikey", id: "k1", name: "cron" },
      profile: CANARY,
      outcome: "ok",
      rows: i,
    });
  }
  const files = new Map<string, Uint8Array>();
  for (const s of await closedSegments(home)) files.set(s.name, await Deno.readFile(s.path));
  files.set("audit.jsonl", await Deno.readFile(`${home}/audit.jsonl`));
  return { a0, files };
}

async function restore(home: string, files: Map<string, Uint8Array>, state: Uint8Array) {
  await Deno.remove(`${home}/audit.segments`, { recursive: true }).catch(() => {});
  await Deno.remove(`${home}/audit.jsonl`).catch(() => {});
  await Deno.mkdir(`${home}/audit.segments`, { mode: 0o700 });
  for (const [name, bytes] of files) await Deno.writeFile(`${home}/${name}`, bytes);
  await Deno.writeFile(`${home}/${STATE_FILE}`, state);
}

function splitLines(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a) {
      out.push(b.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < b.length) out.push(b.slice(start));
  return out;
}

function joinBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

type Mutation = {
  kind: "flip" | "cut" | "insert" | "swap" | "drop" | "dup" | "delete";
  file: number;
  a: number;
  b: number;
  bits: number;
  bytes: Uint8Array;
};

/** Applies a mutation to a copy of the files; undefined when it would change nothing. */
function mutate(files: Map<string, Uint8Array>, m: Mutation): Map<string, Uint8Array> | undefined {
  const names = [...files.keys()];
  const name = names[m.file % names.length]!;
  const orig = files.get(name)!;
  const out = new Map(files);
  const lines = splitLines(orig);
  const i = m.a % Math.max(1, lines.length), j = m.b % Math.max(1, lines.length);
  let next: Uint8Array | undefined;
  switch (m.kind) {
    case "flip":
      if (orig.length === 0) return undefined;
      next = orig.slice();
      next[m.a % orig.length]! ^= m.bits;
      break;
    case "cut":
      if (orig.length === 0) return undefined;
      next = orig.slice(0, m.a % orig.length);
      break;
    case "insert":
      next = joinBytes([
        orig.subarray(0, m.a % (orig.length + 1)),
        m.bytes,
        orig.subarray(m.a % (orig.length + 1)),
      ]);
      break;
    case "swap":
      if (i === j || lines.length < 2) return undefined;
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      next = joinBytes(lines);
      break;
    case "drop":
      if (lines.length === 0) return undefined;
      lines.splice(i, 1);
      next = joinBytes(lines);
      break;
    case "dup":
      if (lines.length === 0) return undefined;
      lines.splice(i, 0, lines[i]!);
      next = joinBytes(lines);
      break;
    case "delete":
      out.delete(name);
      return out;
  }
  if (next.length === orig.length && next.every((x, k) => x === orig[k])) return undefined;
  out.set(name, next);
  return out;
}

Deno.test("verifyTrail over random mutations of a real trail: never intact, never a crash, no hang", async () => {
  const home = await Deno.makeTempDir({ prefix: "hecate-audit-fuzz-" });
  try {
    const { a0, files } = await buildTrail(home);
    const state = await Deno.readFile(`${home}/${STATE_FILE}`);
    const base = await verifyTrail(home, a0);
    assert.equal(base.ok, true, base.problem?.message ?? "");
    assert.ok(base.firstSeq > 1, "the base trail should include a retention");
    const mutation = fc.record({
      kind: fc.constantFrom("flip", "cut", "insert", "swap", "drop", "dup", "delete"),
      file: fc.nat(),
      a: fc.nat(),
      b: fc.nat(),
      bits: fc.integer({ min: 1, max: 255 }),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 60 }),
    }) as fc.Arbitrary<Mutation>;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ms) => {
        let now = files;
        let changed = false;
        for (const m of ms) {
          const next = mutate(now, m);
          if (next) [now, changed] = [next, true];
        }
        await restore(home, now, state);
        const report = await within(verifyTrail(home, a0, undefined, { workers: 0 }), 5000);
        if (changed) {
          // A mutation can cancel an earlier one (e.g. two swaps): only then may it verify.
          const same = [...files].every(([n, b]) =>
            now.has(n) && now.get(n)!.length === b.length &&
            now.get(n)!.every((x, k) => x === b[k])
          ) && now.size === files.size;
          if (!same) assert.equal(report.ok, false, `intact after ${JSON.stringify(ms)}`);
        }
        if (report.problem) assert.ok(!report.problem.message.includes(CANARY));
      }),
      { numRuns: 300 },
    );
    // The state file too: parse errors are audit_failed, a changed key/MAC/seq is reported.
    await restore(home, files, state);
    await fc.assert(
      fc.asyncProperty(
        fc.nat(state.length - 1),
        fc.integer({ min: 1, max: 255 }),
        async (at, bits) => {
          const s = state.slice();
          s[at]! ^= bits;
          await Deno.writeFile(`${home}/${STATE_FILE}`, s);
          try {
            const r = await within(verifyTrail(home, a0, undefined, { workers: 0 }), 5000);
            const o = JSON.parse(new TextDecoder().decode(s));
            const was = JSON.parse(new TextDecoder().decode(state));
            if (o.seq !== was.seq || o.key !== was.key || o.mac !== was.mac) {
              assert.equal(r.ok, false);
            }
          } catch (e) {
            if (e instanceof SyntaxError) return; // from this test's own JSON.parse
            documented(e, "audit_failed");
          }
        },
      ),
      { numRuns: 200 },
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("verifyExport over random mutations of a real export: audit_tampered or the same entries", async () => {
  const home = await Deno.makeTempDir({ prefix: "hecate-audit-fuzz-" });
  try {
    const { a0 } = await buildTrail(home);
    let text = "";
    await exportTrail(home, a0, "vault-id", (t) => Promise.resolve(void (text += t)));
    const ok = await verifyExport(text, a0);
    await fc.assert(
      fc.asyncProperty(
        fc.nat(text.length - 1),
        fc.string({ minLength: 1, maxLength: 8 }),
        async (at, s) => {
          const bad = text.slice(0, at) + s + text.slice(at + 1);
          try {
            const h = await within(verifyExport(bad, a0), 5000);
            // Accepted: then it is the same export (e.g. the change was in trailing text only).
            assert.equal(h.entries, ok.entries);
            assert.equal(
              bad.split("\n").filter((l) => l).join("\n"),
              text.split("\n").filter((l) => l).join("\n"),
            );
          } catch (e) {
            documented(e, "audit_tampered");
          }
        },
      ),
      { numRuns: 300 },
    );
    // Any first line at all.
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (v) => {
        const bad = JSON.stringify(v) + text.slice(text.indexOf("\n"));
        await assert.rejects(() => within(verifyExport(bad, a0), 5000), (e) => {
          documented(e, "audit_tampered");
          return true;
        });
      }),
      { numRuns: 200 },
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
