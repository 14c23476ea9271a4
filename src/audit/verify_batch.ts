/**
 * Checks a run of trail lines whose keys are known: the work that the parallel verify pass
 * (verify_parallel.ts) shares out between worker threads and its own thread.
 *
 * @module
 */

import { decodeMacText, macOffset, seqOf } from "./entry.ts";
import type { FastHmac } from "./fast_hmac.ts";

/** One run of complete lines and what is needed to check it without the lines before it. */
export interface LineRun {
  /** Complete lines, each ending with `\n`. */
  bytes: Uint8Array;
  /** The key of each line, 8 big-endian words per line. */
  keys: Int32Array;
  /** The seq the first line must carry; the next lines count up from it. */
  firstSeq: number;
  /** The MAC stored on the line before the run (or the chain's starting MAC), 32 bytes. */
  prev: Uint8Array;
}

/**
 * Checks every line of a run: shape, seq, and that its stored MAC is the HMAC of its body under
 * its key, chained to the MAC stored on the line before (the claimed one: if every line checks
 * out against its predecessor's claim, the chain is whole).
 *
 * @param hmac The engine.
 * @param run The lines and their keys.
 * @returns -1 when all lines check out and their number matches the keys, else the 0-based index
 * of the first bad line (the line count when there are too few lines).
 */
export function checkRun(hmac: FastHmac, run: LineRun): number {
  const { bytes, keys } = run;
  const count = keys.length / 8;
  const prev = Uint8Array.from(run.prev);
  const claimed = new Uint8Array(32);
  const mac = new Int32Array(8);
  let start = 0;
  let i = 0;
  for (; start < bytes.length; i++) {
    const nl = bytes.indexOf(0x0a, start);
    if (nl < 0 || i >= count) return i;
    const line = bytes.subarray(start, nl);
    const at = macOffset(line);
    if (at < 0 || seqOf(line) !== run.firstSeq + i) return i;
    if (!decodeMacText(line, at + 8, claimed)) return i;
    hmac.macInto(keys, i * 8, prev, line.subarray(0, at), mac);
    for (let j = 0; j < 8; j++) {
      const c = (claimed[4 * j]! << 24) | (claimed[4 * j + 1]! << 16) |
        (claimed[4 * j + 2]! << 8) | claimed[4 * j + 3]!;
      if (c !== mac[j]) return i;
    }
    prev.set(claimed);
    start = nl + 1;
  }
  return i === count ? -1 : i;
}
