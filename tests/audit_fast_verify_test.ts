/**
 * The verifier's own hashing and its parallel pass (src/audit/sha256.ts, fast_hmac.ts,
 * verify_batch.ts, verify_parallel.ts): checked against node:crypto, @noble/hashes (the writer's
 * implementation), the FIPS 180-4 and RFC 4231 vectors, and real trails with damaged lines.
 */

import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { entryMac, nextKey, stepKey, ZERO_MAC } from "../src/audit/chain.ts";
import { decodeMacText, macText } from "../src/audit/entry.ts";
import { bytesOf, FastHmac, keyWords } from "../src/audit/fast_hmac.ts";
import { FileAuditLog, startChain } from "../src/audit/log.ts";
import { sha256 as sha256Digest, SHA256_IV, Sha256Core } from "../src/sha256.ts";
import { readState } from "../src/audit/state.ts";
import { verifyTrail } from "../src/audit/verify.ts";
import { checkRun } from "../src/audit/verify_batch.ts";
import { parallelPass } from "../src/audit/verify_parallel.ts";

const enc = new TextEncoder();
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

/** SHA-256 over Sha256Core, with the padding written out here (the test's own, independent). */
function sha256(msg: Uint8Array): string {
  const total = Math.ceil((msg.length + 9) / 64) * 64;
  const m = new Uint8Array(total);
  m.set(msg);
  m[msg.length] = 0x80;
  new DataView(m.buffer).setBigUint64(total - 8, BigInt(msg.length) * 8n);
  const core = new Sha256Core();
  const s = Int32Array.from(SHA256_IV);
  for (let off = 0; off < total; off += 64) {
    core.load(m, off);
    core.compress(s);
  }
  return hex(bytesOf(s));
}

Deno.test("Sha256Core matches the FIPS 180-4 examples and node:crypto on random inputs", () => {
  assert.equal(
    sha256(enc.encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    sha256(enc.encode("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assert.equal(
    sha256(enc.encode(
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
    )),
    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
  );
  assert.equal(
    sha256(new Uint8Array(1_000_000).fill(0x61)),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  );
  assert.equal(sha256(new Uint8Array()), createHash("sha256").digest("hex"));
  for (let n = 0; n < 700; n += 1 + (n % 7)) {
    const msg = random(n);
    assert.equal(sha256(msg), createHash("sha256").update(msg).digest("hex"), `length ${n}`);
  }
});

Deno.test("sha256() pads like FIPS 180-4 at every length around the block edges", () => {
  assert.equal(
    hex(sha256Digest(enc.encode("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    hex(sha256Digest(new Uint8Array(1_000_000).fill(0x61))),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  );
  for (let n = 0; n <= 200; n++) {
    const msg = random(n);
    assert.equal(hex(sha256Digest(msg)), createHash("sha256").update(msg).digest("hex"), `${n}`);
  }
});

Deno.test("the writer's chain is HMAC-SHA256 and a labelled SHA-256, as node:crypto computes them", () => {
  for (let n = 0; n < 2000; n += 97) {
    const key = random(32), prev = random(32), canonical = random(n);
    assert.equal(
      hex(entryMac(key, prev, canonical)),
      createHmac("sha256", key).update(prev).update(canonical).digest("hex"),
    );
    assert.equal(
      hex(nextKey(key)),
      createHash("sha256").update("hecate-audit-v1 next key").update(key).digest("hex"),
    );
  }
});

Deno.test("FastHmac matches RFC 4231 and node:crypto; its word-level paths match the writer's chain", () => {
  const h = new FastHmac();
  const key20 = new Uint8Array(20);
  // RFC 4231 test cases 1, 3 and 4.
  assert.equal(
    hex(h.mac(key20.fill(0x0b), enc.encode("Hi There"))),
    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
  );
  assert.equal(
    hex(h.mac(new Uint8Array(20).fill(0xaa), new Uint8Array(50).fill(0xdd))),
    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
  );
  assert.equal(
    hex(h.mac(
      Uint8Array.from({ length: 25 }, (_, i) => i + 1),
      new Uint8Array(50).fill(0xcd),
    )),
    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
  );
  for (let n = 0; n < 600; n += 17) {
    const key = random(1 + (n % 64));
    const msg = random(n);
    assert.deepEqual(
      hex(h.mac(key, msg.subarray(0, n >> 1), msg.subarray(n >> 1))),
      createHmac("sha256", key).update(msg).digest("hex"),
    );
  }
  const out = new Int32Array(8);
  for (let i = 0; i < 40; i++) {
    const key = random(32), prev = random(32), body = random(i * 11);
    h.macInto(keyWords(key), 0, prev, body, out);
    assert.deepEqual(bytesOf(out), entryMac(key, prev, new Uint8Array([...body, 0x7d])));
    const k = keyWords(key);
    h.nextInto(k, 0, k, 0);
    assert.deepEqual(bytesOf(k), nextKey(key));
  }
});

Deno.test("decodeMacText inverts macText and refuses any other text", () => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 200; i++) {
    const mac = random(32);
    assert.ok(decodeMacText(enc.encode(macText(mac)), 0, out));
    assert.deepEqual(out, mac);
  }
  const text = macText(random(32));
  for (const bad of ["+", "/", "=", " ", "\u00e9"]) {
    assert.equal(decodeMacText(enc.encode(bad + text.slice(1)), 0, out), false, bad);
  }
  // The last character carries 4 bits: one with its 2 unused bits set decodes to the same bytes
  // under a lenient decoder, but is not what the writer produced.
  const last = B64URL.indexOf(text[42]!);
  assert.equal(decodeMacText(enc.encode(text.slice(0, 42) + B64URL[last | 1]), 0, out), false);
});

async function withTrail(
  n: number,
  fn: (home: string, a0: Uint8Array, path: string) => Promise<void>,
): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "hecate-fastverify-test-" });
  try {
    const a0 = await startChain(home);
    const log = new FileAuditLog(home, { host: "testhost" });
    // n entries in all: the chain's first (audit.start), then n - 1 queries.
    await log.appendMany(Array.from({ length: n - 1 }, (_, i) => ({
      event: "query",
      actor: { kind: "apikey" as const, id: "k-1", name: "nightly" },
      outcome: "ok" as const,
      rows: i,
    })));
    await fn(home, a0, log.path);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

/** Replaces the last character of line `i`'s MAC with one that has its unused bits set. */
function nonCanonical(lines: string[], i: number): void {
  const l = lines[i]!;
  const c = B64URL.indexOf(l[l.length - 3]!);
  lines[i] = l.slice(0, -3) + B64URL[c | 1] + l.slice(-2);
}

Deno.test("checkRun accepts a run of good lines and points at the first bad one", async () => {
  await withTrail(60, async (_home, a0, path) => {
    const text = await Deno.readTextFile(path);
    const keys = new Int32Array(60 * 8);
    for (let i = 0; i < 60; i++) keys.set(keyWords(stepKey(a0, i)), i * 8);
    const h = new FastHmac();
    const run = (t: string, first = 1, k = keys) =>
      checkRun(h, { bytes: enc.encode(t), keys: k, firstSeq: first, prev: ZERO_MAC });
    assert.equal(run(text), -1);
    const lines = text.split("\n").slice(0, -1);
    const join = (ls: string[]) => ls.map((l) => l + "\n").join("");
    const edited = [...lines];
    edited[20] = edited[20]!.replace('"rows":19', '"rows":21');
    assert.equal(run(join(edited)), 20);
    const odd = [...lines];
    nonCanonical(odd, 30);
    assert.equal(run(join(odd)), 30);
    const swapped = [...lines];
    [swapped[40], swapped[41]] = [swapped[41]!, swapped[40]!];
    assert.equal(run(join(swapped)), 40);
    assert.equal(run(text, 2), 0);
    assert.equal(run(join(lines.slice(0, 59))), 59);
    assert.equal(run(text, 1, keys.subarray(0, 59 * 8)), 59);
    assert.equal(run(text.slice(0, -1)), 59);
  });
});

Deno.test("the parallel pass ends where the state file does, and refuses a non-canonical MAC the sequential pass names", async () => {
  await withTrail(9000, async (home, a0, path) => {
    const state = (await readState(home))!;
    const size = (await Deno.stat(path)).size;
    for (const workers of [1, 2]) {
      const pass = await parallelPass({
        files: [{ path, size }],
        key: a0,
        prev: ZERO_MAC,
        expected: 1,
        hmac: new FastHmac(),
        workers,
      });
      assert.ok(pass, `workers ${workers}`);
      assert.equal(pass.entries, 9000);
      assert.equal(pass.expected, 9001);
      assert.deepEqual(pass.key, state.key);
      assert.deepEqual(pass.prev, state.mac);
    }
    const lines = (await Deno.readTextFile(path)).split("\n").slice(0, -1);
    nonCanonical(lines, 6000);
    await Deno.writeTextFile(path, lines.map((l) => l + "\n").join(""));
    const pass = await parallelPass({
      files: [{ path, size }],
      key: a0,
      prev: ZERO_MAC,
      expected: 1,
      hmac: new FastHmac(),
      workers: 1,
    });
    assert.equal(pass, undefined);
    const report = await verifyTrail(home, a0, undefined, { workers: 1 });
    assert.equal(report.problem?.kind, "edited");
    assert.equal(report.problem?.line, 6001);
  });
});
