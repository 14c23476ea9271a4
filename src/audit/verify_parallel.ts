/**
 * A parallel first pass for `audit verify` on large trails. The key chain is sequential but does
 * not depend on the log, and each entry's MAC can be checked on its own once its key and the
 * *claimed* previous MAC are known (if every entry verifies against the MAC stored on the line
 * before it, the chain is whole). So this thread reads the files, cuts them into runs of lines and
 * steps the key chain for each run (two SHA-256 blocks per entry); worker threads parse and check
 * the runs (about nine blocks per entry), and this thread checks a run itself whenever every
 * worker already has one queued, so that on a busy or small machine no core sits idle. It only
 * answers "all good" or "something is wrong"; on anything wrong, or if workers cannot start, the
 * sequential verifier runs and names the problem.
 *
 * @module
 */

import { decodeMacText, macOffset } from "./entry.ts";
import { bytesOf, type FastHmac, keyWords } from "./fast_hmac.ts";
import { eachLineRun } from "./lines.ts";
import { checkRun, type LineRun } from "./verify_batch.ts";
import type { RunMessage } from "./verify_worker.ts";

/** Lines per run: large enough to amortise a message, small enough to balance the threads. */
const RUN_LINES = 4096;
/** Runs queued per worker: one being checked and one waiting, so a worker never idles. */
const QUEUE = 2;
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

// From source the worker is the .ts module beside this one; in the bundle (scripts/bundle.ts)
// this code sits in a chunk and the worker is bundled beside it as verify_worker.js.
const WORKER = import.meta.url.endsWith(".ts") ? "./verify_worker.ts" : "./verify_worker.js";

/** Lets queued events (workers' answers) run between runs checked on this thread. */
function yielder(): { next: () => Promise<void>; close: () => void } {
  const ch = new MessageChannel();
  let wake: (() => void) | undefined;
  ch.port1.onmessage = () => wake?.();
  return {
    next: () => new Promise<void>((r) => (wake = r, ch.port2.postMessage(0))),
    close: () => (ch.port1.close(), ch.port2.close()),
  };
}

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
  const queued = pool.map(() => 0);
  const pending = new Map<
    number,
    { resolve: (bad: boolean) => void; reject: (e: unknown) => void }
  >();
  let broken = false;
  pool.forEach((w, n) => {
    w.onmessage = (e: MessageEvent<{ id: number; bad: number }>) => {
      queued[n]!--;
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
  });
  const results: Promise<boolean>[] = [];
  let nextId = 0;
  const post = (n: number, run: LineRun) => {
    const id = nextId++;
    const msg: RunMessage = { id, ...run, bytes: run.bytes.slice() };
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
    queued[n]!++;
    pool[n]!.postMessage(msg, [msg.bytes.buffer, msg.keys.buffer] as ArrayBuffer[]);
  };
  const pause = yielder();
  try {
    const key = keyWords(input.key);
    let prev = Uint8Array.from(input.prev);
    let expected = input.expected;
    let entries = 0;
    for (const f of input.files) {
      if (f.size === undefined) return undefined;
      if (f.first !== undefined && f.first !== expected) return undefined;
      const whole = await eachLineRun(f.path, f.size, async (bytes) => {
        for (let start = 0; start < bytes.length;) {
          // Cut a run and step the key chain along it.
          const keys = new Int32Array(RUN_LINES * 8);
          let end = start, last = start, n = 0;
          while (n < RUN_LINES && end < bytes.length) {
            keys.set(key, n * 8);
            input.hmac.nextInto(key, 0, key, 0);
            last = end;
            end = bytes.indexOf(0x0a, end) + 1;
            n++;
          }
          const run: LineRun = {
            bytes: bytes.subarray(start, end),
            keys: keys.subarray(0, n * 8),
            firstSeq: expected,
            prev,
          };
          // The next run chains from the MAC stored on this run's last line.
          const lastLine = bytes.subarray(last, end - 1);
          const at = macOffset(lastLine);
          prev = new Uint8Array(32);
          if (broken || at < 0 || !decodeMacText(lastLine, at + 8, prev)) return false;
          const idle = queued.indexOf(Math.min(...queued));
          if (queued[idle]! < QUEUE) post(idle, { ...run, keys: run.keys.slice() });
          else if (checkRun(input.hmac, run) >= 0) return false;
          expected += n;
          entries += n;
          start = end;
          await pause.next();
        }
        return true;
      });
      if (!whole) return undefined;
    }
    const bad = await Promise.all(results);
    return bad.some((b) => b) ? undefined : { key: bytesOf(key), prev, expected, entries };
  } catch {
    return undefined;
  } finally {
    pause.close();
    for (const p of pending.values()) p.reject(new Error("stopped"));
    await Promise.allSettled(results);
    for (const w of pool) w.terminate();
  }
}
