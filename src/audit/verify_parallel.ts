/**
 * A parallel first pass for `audit verify` on large trails. The key chain is sequential but does
 * not depend on the log, and each entry's MAC can be checked on its own once its key and the
 * *claimed* previous MAC are known (if every entry verifies against the MAC stored on the line
 * before it, the chain is whole). So the main thread checks shapes and sequence numbers and steps
 * the key, and workers check the MACs. It only answers "all good" or "something is wrong"; on
 * anything wrong, or if workers cannot start, the sequential verifier runs and names the problem.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { seqOf, splitLine } from "./entry.ts";
import type { FastHmac } from "./fast_hmac.ts";
import { eachLine } from "./lines.ts";
import type { MacBatch } from "./verify_worker.ts";

const BATCH = 8192;
const WORKER_TIMEOUT_MS = 120_000;

/** Where the pass starts and what it reads. */
export interface PassInput {
  files: { path: string; size: number | undefined; first?: number | undefined }[];
  key: Uint8Array;
  prev: Uint8Array;
  expected: number;
  hmac: FastHmac;
  workers: number;
}

/** The chain position after a clean pass. */
export interface PassResult {
  key: Uint8Array;
  prev: Uint8Array;
  expected: number;
  entries: number;
}

class Batch {
  count = 0;
  keys = new Uint8Array(BATCH * 32);
  prevs = new Uint8Array(BATCH * 32);
  macs = new Uint8Array(BATCH * 43);
  bodies = new Uint8Array(BATCH * 400);
  offsets = new Uint32Array(BATCH + 1);

  add(key: Uint8Array, prev: Uint8Array, mac: Uint8Array, body: Uint8Array): void {
    const i = this.count++;
    this.keys.set(key, i * 32);
    this.prevs.set(prev, i * 32);
    this.macs.set(mac, i * 43);
    const at = this.offsets[i]!;
    if (at + body.length > this.bodies.length) {
      const bigger = new Uint8Array(Math.max(this.bodies.length * 2, at + body.length));
      bigger.set(this.bodies.subarray(0, at));
      this.bodies = bigger;
    }
    this.bodies.set(body, at);
    this.offsets[i + 1] = at + body.length;
  }

  message(id: number): MacBatch {
    return {
      id,
      count: this.count,
      keys: this.keys,
      prevs: this.prevs,
      macs: this.macs,
      bodies: this.bodies,
      offsets: this.offsets,
    };
  }
}

// From source the worker is the .ts module beside this one; in the bundle (scripts/bundle.ts)
// this code sits in a chunk and the worker is bundled beside it as verify_worker.js.
const WORKER = import.meta.url.endsWith(".ts") ? "./verify_worker.ts" : "./verify_worker.js";

/**
 * Runs the parallel pass.
 *
 * @param input Files and the chain position to start from.
 * @returns The position after the last entry, or undefined when anything did not check out
 * (or workers were unavailable): then verify sequentially.
 */
export async function parallelPass(input: PassInput): Promise<PassResult | undefined> {
  let pool: Worker[];
  try {
    pool = Array.from(
      { length: input.workers },
      () => new Worker(new URL(WORKER, import.meta.url), { type: "module" }),
    );
  } catch {
    return undefined;
  }
  const pending = new Map<
    number,
    { resolve: (bad: boolean) => void; reject: (e: unknown) => void }
  >();
  for (const w of pool) {
    w.onmessage = (e: MessageEvent<{ id: number; bad: number }>) => {
      pending.get(e.data.id)?.resolve(e.data.bad >= 0);
      pending.delete(e.data.id);
    };
    w.onerror = (e) => {
      // E.g. a build without the worker module: fall back to the sequential pass at once.
      e.preventDefault();
      broken = true;
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    };
  }
  let broken = false;
  const results: Promise<boolean>[] = [];
  let nextId = 0;
  const send = (b: Batch) => {
    if (broken) throw new Error("a verify worker failed");
    const id = nextId++;
    const msg = b.message(id);
    results.push(
      new Promise<boolean>((resolve, reject) => {
        // A worker that never answers must not hang verify: give up and verify sequentially.
        const timer = setTimeout(
          () => reject(new Error("verify worker timed out")),
          WORKER_TIMEOUT_MS,
        );
        pending.set(id, {
          resolve: (bad) => (clearTimeout(timer), resolve(bad)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
      }),
    );
    pool[id % pool.length]!.postMessage(msg, [
      msg.keys.buffer,
      msg.prevs.buffer,
      msg.macs.buffer,
      msg.bodies.buffer,
      msg.offsets.buffer,
    ] as ArrayBuffer[]);
  };
  try {
    let { key, prev, expected } = input;
    let entries = 0;
    let ok = true;
    let batch = new Batch();
    for (const f of input.files) {
      if (f.size === undefined) return undefined;
      if (f.first !== undefined && f.first !== expected) return undefined;
      await eachLine(f.path, f.size, (line, complete) => {
        const parts = complete ? splitLine(line) : undefined;
        if (!parts || seqOf(line) !== expected) return (ok = false);
        const macBytes = line.subarray(parts.body.length + 8, parts.body.length + 8 + 43);
        batch.add(key, prev, macBytes, parts.body);
        prev = new Uint8Array(Buffer.from(parts.mac, "base64url"));
        if (prev.length !== 32) return (ok = false);
        key = input.hmac.next(key);
        expected++;
        entries++;
        if (batch.count === BATCH) {
          send(batch);
          batch = new Batch();
        }
        return true;
      });
      if (!ok) return undefined;
    }
    if (batch.count > 0) send(batch);
    const bad = await Promise.all(results);
    return bad.some((b) => b) ? undefined : { key, prev, expected, entries };
  } catch {
    return undefined;
  } finally {
    for (const p of pending.values()) p.reject(new Error("stopped"));
    await Promise.allSettled(results);
    for (const w of pool) w.terminate();
  }
}
