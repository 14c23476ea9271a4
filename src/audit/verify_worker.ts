/**
 * A worker for parallel `audit verify`: checks the MACs of a batch of entries whose keys and
 * claimed previous MACs the main thread has already worked out (see verify_parallel.ts).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { macText } from "./entry.ts";
import { FastHmac } from "./fast_hmac.ts";

/** One batch: per entry a 32-byte key, a 32-byte previous MAC, the 43-byte MAC text, the body. */
export interface MacBatch {
  id: number;
  count: number;
  keys: Uint8Array;
  prevs: Uint8Array;
  macs: Uint8Array;
  bodies: Uint8Array;
  /** `count + 1` offsets into `bodies`. */
  offsets: Uint32Array;
}

const CLOSE = new Uint8Array([0x7d]); // "}"
const dec = new TextDecoder("latin1");
// The handler is installed at once (no top-level await before it), so that no batch posted while
// the WebAssembly module compiles can be missed.
const ready = FastHmac.create();

self.onmessage = async (e: MessageEvent<MacBatch>) => {
  const hmac = await ready;
  const b = e.data;
  let bad = -1;
  for (let i = 0; i < b.count; i++) {
    const mac = hmac.mac(
      b.keys.subarray(i * 32, i * 32 + 32),
      b.prevs.subarray(i * 32, i * 32 + 32),
      b.bodies.subarray(b.offsets[i]!, b.offsets[i + 1]!),
      CLOSE,
    );
    if (macText(mac) !== dec.decode(b.macs.subarray(i * 43, i * 43 + 43))) {
      bad = i;
      break;
    }
  }
  self.postMessage({ id: b.id, bad });
};
