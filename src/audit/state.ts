/**
 * The chain state file `audit.state` (0600): the next key, the last sequence number and MAC, and
 * where the active segment stands. Rewritten before each writer lets the audit lock go (after a
 * write, or once after the group writes of one hold: see log.ts), through one fixed temp file
 * `.audit.state.tmp` + fsync + rename + directory fsync, so the previous key does not survive in
 * the directory. A temp file left by a writer killed before its rename holds a key
 * too: every locked section removes such files first ({@link removeStaleTemps}). (A journaling or
 * copy-on-write file system, or an SSD, may still hold the old blocks: see docs/SECURITY.md.)
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { fromBase64Url, toBase64Url } from "../vault/encoding.ts";
import { CHAIN_BYTES, ZERO_MAC } from "./chain.ts";

/** File name of the state inside the home directory. */
export const STATE_FILE = "audit.state";
/** The one temp file a state write goes through (under the lock, so one writer at a time). */
export const STATE_TEMP = ".audit.state.tmp";

/** The chain state. */
export interface ChainState {
  /** Sequence number of the last entry written (0 before the first). */
  seq: number;
  /** MAC of that entry (zeros before the first). */
  mac: Uint8Array;
  /** The key for the next entry, `A(seq)`. */
  key: Uint8Array;
  /** Bytes of the active segment after the last entry. */
  size: number;
  /** Sequence number of the first entry of the active segment. */
  segmentFirst: number;
  /** When the active segment was started (ms since the epoch). */
  segmentStarted: number;
}

/**
 * The state of a new chain.
 *
 * @param a0 The first chain key.
 * @param now Current time in ms.
 * @returns State before entry 1.
 */
export function initialState(a0: Uint8Array, now: number): ChainState {
  return { seq: 0, mac: ZERO_MAC, key: a0, size: 0, segmentFirst: 1, segmentStarted: now };
}

function bad(path: string, what: string): HecateError {
  return new HecateError("audit_failed", `Audit state file "${path}" is damaged: ${what}`, {
    hint: "run 'hecate audit verify' to check the trail",
  });
}

/**
 * Removes temp state files a killed writer left behind: the fixed {@link STATE_TEMP} and the
 * randomly named `.audit.state.tmp-*` of earlier versions. Each holds a chain key that could
 * rewrite every later entry. Call under the audit lock (no writer is between create and rename).
 *
 * @param home The home directory.
 * @returns How many files were removed.
 */
export async function removeStaleTemps(home: string): Promise<number> {
  let removed = 0;
  for await (const e of Deno.readDir(home)) {
    if (!e.name.startsWith(STATE_TEMP)) continue;
    try {
      await Deno.remove(`${home}/${e.name}`);
      removed++;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  if (removed > 0) await syncDir(home);
  return removed;
}

/**
 * Parses the state file's text.
 *
 * @param text The file contents.
 * @param path For messages.
 * @returns The state.
 * @throws {HecateError} `audit_failed` when malformed.
 */
export function parseState(text: string, path: string): ChainState {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
  } catch {
    throw bad(path, "not JSON");
  }
  const int = (k: string) => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw bad(path, k);
    return v;
  };
  const bytes = (k: string) => {
    try {
      const v = o[k];
      if (typeof v !== "string") throw new Error();
      const b = fromBase64Url(v);
      if (b.length !== CHAIN_BYTES) throw new Error();
      return b;
    } catch {
      throw bad(path, k);
    }
  };
  if (o === null || typeof o !== "object" || Array.isArray(o)) throw bad(path, "not an object");
  if (o.v !== 1) throw bad(path, "unknown version");
  return {
    seq: int("seq"),
    mac: bytes("mac"),
    key: bytes("key"),
    size: int("size"),
    segmentFirst: int("segment_first"),
    segmentStarted: int("segment_started"),
  };
}

/**
 * Reads the state file.
 *
 * @param home The home directory.
 * @returns The state, or undefined when the file does not exist.
 */
export async function readState(home: string): Promise<ChainState | undefined> {
  const path = `${home}/${STATE_FILE}`;
  try {
    return parseState(await Deno.readTextFile(path), path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

/**
 * Replaces the state file atomically and durably (call under the audit lock).
 *
 * @param home The home directory.
 * @param s The new state.
 */
export async function writeState(home: string, s: ChainState): Promise<void> {
  const text = stateText(s);
  const temp = `${home}/${STATE_TEMP}`;
  // A leftover from a killed writer goes first: a new file gets mode 0600 whatever it had.
  await Deno.remove(temp).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  const f = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
  try {
    const b = new TextEncoder().encode(text);
    let n = 0;
    while (n < b.length) n += await f.write(b.subarray(n));
    await f.sync();
  } catch (e) {
    f.close();
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
  f.close();
  await Deno.rename(temp, `${home}/${STATE_FILE}`);
  await syncDir(home);
}

function stateText(s: ChainState): string {
  return JSON.stringify({
    v: 1,
    seq: s.seq,
    mac: toBase64Url(s.mac),
    key: toBase64Url(s.key),
    size: s.size,
    segment_first: s.segmentFirst,
    segment_started: s.segmentStarted,
  }) + "\n";
}

/**
 * {@link writeState} without awaiting: for a process that is exiting (an `unload` handler cannot
 * wait). Same temp file, flush, rename and directory flush; call under the audit lock.
 *
 * @param home The home directory.
 * @param s The new state.
 */
export function writeStateSync(home: string, s: ChainState): void {
  const temp = `${home}/${STATE_TEMP}`;
  try {
    Deno.removeSync(temp);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const f = Deno.openSync(temp, { createNew: true, write: true, mode: 0o600 });
  try {
    const b = new TextEncoder().encode(stateText(s));
    let n = 0;
    while (n < b.length) n += f.writeSync(b.subarray(n));
    f.syncSync();
  } finally {
    f.close();
  }
  Deno.renameSync(temp, `${home}/${STATE_FILE}`);
  const d = Deno.openSync(home, { read: true });
  try {
    d.syncSync();
  } finally {
    d.close();
  }
}
