/**
 * A worker for parallel `audit verify`: checks runs of lines whose keys the main thread has
 * already worked out (see verify_parallel.ts and verify_batch.ts).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { FastHmac } from "./fast_hmac.ts";
import { checkRun, type LineRun } from "./verify_batch.ts";

/** One request: a run of lines and an id to answer with. */
export interface RunMessage extends LineRun {
  id: number;
}

const hmac = new FastHmac();

self.onmessage = (e: MessageEvent<RunMessage>) => {
  self.postMessage({ id: e.data.id, bad: checkRun(hmac, e.data) });
};
