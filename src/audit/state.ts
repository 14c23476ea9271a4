/**
 * The chain state file `audit.state` (0600): the next key, the last sequence number and MAC, and
 * where the active segment stands. Written before each writer lets the audit lock go (after a
 * write, or once after the group writes of one hold: see log.ts).
 *
 * Format 2 (this version): two fixed slots of {@link SLOT_BYTES}, each a checksummed JSON object
 * with a write generation; the valid slot with the higher generation is current. An update writes
 * the other slot in place and `fdatasync`s it, then zeroes the current one and `fdatasync`s again:
 * no new file, no rename, no directory flush, and at rest only one slot holds a key. Format 1 (one
 * JSON object, replaced through a temp file and rename) is still read, and replaced whole by a
 * format-2 file on the next write, through the one fixed temp file `.audit.state.tmp` + fsync +
 * rename + directory fsync (as a missing file is created). A temp file or a second valid slot left
 * by a writer killed mid-update holds a key too: every locked section removes or zeroes it first
 * ({@link removeStaleTemps}). (A journaling or copy-on-write file system, or an SSD, may still
 * hold the old blocks: see docs/SECURITY.md.)
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { fromBase64Url, toBase64Url, toHex } from "../vault/encoding.ts";
import { sha256 } from "../sha256.ts";
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
 * rewrite every later entry. Also zeroes a slot of `audit.state` that still holds an older state
 * (a writer killed between writing the new slot and zeroing the old). Call under the audit lock (no
 * writer is between create and rename, or between the two slot writes).
 *
 * @param home The home directory.
 * @returns How many files were removed (a zeroed slot counts as one).
 */
export async function removeStaleTemps(home: string): Promise<number> {
  let removed = await removeStaleTempFiles(home);
  if (await scrubStaleSlot(home)) removed++;
  return removed;
}

/**
 * The temp-file half of {@link removeStaleTemps}: lists the home and removes every
 * `.audit.state.tmp*`, then fsyncs the directory if it removed one. Call under the audit lock.
 *
 * @param home The home directory.
 * @returns How many files were removed.
 */
export async function removeStaleTempFiles(home: string): Promise<number> {
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

/** Bytes of one slot of the two-slot state file (format 2). */
export const SLOT_BYTES = 512;
/** Bytes of a format-2 state file: two slots. */
export const STATE_FILE_BYTES = 2 * SLOT_BYTES;
const ZERO_SLOT = new Uint8Array(SLOT_BYTES);
const SUM_TAIL = /,"sum":"([0-9a-f]{64})"\}$/;

function fields(o: unknown, path: string, version: number): ChainState {
  if (o === null || typeof o !== "object" || Array.isArray(o)) throw bad(path, "not an object");
  const r = o as Record<string, unknown>;
  const int = (k: string) => {
    const v = r[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw bad(path, k);
    return v;
  };
  const bytes = (k: string) => {
    try {
      const v = r[k];
      if (typeof v !== "string") throw new Error();
      const b = fromBase64Url(v);
      if (b.length !== CHAIN_BYTES) throw new Error();
      return b;
    } catch {
      throw bad(path, k);
    }
  };
  if (r.v !== version) throw bad(path, "unknown version");
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
 * Parses a format-1 state file's text (one JSON object, replaced whole by rename; still read so
 * that a home written by an older version is upgraded on its next write).
 *
 * @param text The file contents.
 * @param path For messages.
 * @returns The state.
 * @throws {HecateError} `audit_failed` when malformed.
 */
export function parseState(text: string, path: string): ChainState {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw bad(path, "not JSON");
  }
  return fields(o, path, 1);
}

/** One valid slot of a format-2 file. */
interface Slot {
  /** Which slot (0 or 1). */
  index: number;
  /** Write generation: the higher valid one is current. */
  gen: number;
  state: ChainState;
}

/**
 * Reads one slot: `{"v":2,"gen":…,…,"sum":"<hex SHA-256 of the object without sum>"}\n`, then
 * zero bytes to the slot's end. A zeroed, torn or otherwise damaged slot gives undefined.
 */
function parseSlot(b: Uint8Array, index: number, path: string): Slot | undefined {
  const nl = b.indexOf(0x0a);
  if (nl < 0 || b.subarray(nl + 1).some((x) => x !== 0)) return undefined;
  const text = new TextDecoder("utf-8", { fatal: false }).decode(b.subarray(0, nl));
  const m = SUM_TAIL.exec(text);
  if (!m) return undefined;
  const body = text.slice(0, m.index) + "}";
  if (toHex(sha256(new TextEncoder().encode(body))) !== m[1]) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(body);
  } catch {
    return undefined;
  }
  const gen = o?.gen;
  if (typeof gen !== "number" || !Number.isSafeInteger(gen) || gen < 1) return undefined;
  try {
    return { index, gen, state: fields(o, path, 2) };
  } catch {
    return undefined;
  }
}

function slotBytes(s: ChainState, gen: number): Uint8Array {
  const body = JSON.stringify({
    v: 2,
    gen,
    seq: s.seq,
    mac: toBase64Url(s.mac),
    key: toBase64Url(s.key),
    size: s.size,
    segment_first: s.segmentFirst,
    segment_started: s.segmentStarted,
  });
  const sum = toHex(sha256(new TextEncoder().encode(body)));
  const text = new TextEncoder().encode(`${body.slice(0, -1)},"sum":"${sum}"}\n`);
  const out = new Uint8Array(SLOT_BYTES);
  out.set(text);
  return out;
}

/** What a state file holds. */
export interface StateFile {
  /** The current state. */
  state: ChainState;
  /** 1: the older single JSON object (upgraded on the next write); 2: two slots. */
  format: 1 | 2;
  /** Format 2: the slot holding the current state. */
  slot?: number;
  /** Format 2: its write generation. */
  gen?: number;
  /**
   * Format 2: the other slot is neither zeroed nor valid (a write torn by a crash, or damage);
   * the state came from the valid slot.
   */
  torn?: boolean;
  /** Format 2: the other slot holds a valid older state (a writer died before zeroing it). */
  stale?: boolean;
}

/**
 * Parses a state file's bytes, either format.
 *
 * @param b The file contents.
 * @param path For messages.
 * @returns The state and which slot it came from.
 * @throws {HecateError} `audit_failed` when no slot (or the format-1 object) is valid.
 */
export function parseStateFile(b: Uint8Array, path: string): StateFile {
  if (b.length !== STATE_FILE_BYTES) {
    // Format 1 (a JSON object of about 250 bytes): never this size.
    return { state: parseState(new TextDecoder().decode(b), path), format: 1 };
  }
  const slots = [0, 1].map((i) => ({
    raw: b.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES),
    slot: parseSlot(b.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES), i, path),
  }));
  const valid = slots.flatMap((s) => s.slot ? [s.slot] : []);
  if (valid.length === 0) throw bad(path, "no valid slot");
  const cur = valid.reduce((a, c) => c.gen > a.gen ? c : a);
  const other = slots[1 - cur.index]!;
  return {
    state: cur.state,
    format: 2,
    slot: cur.index,
    gen: cur.gen,
    torn: !other.slot && other.raw.some((x) => x !== 0),
    stale: other.slot !== undefined,
  };
}

/**
 * Reads the state file (either format) with where its state came from.
 *
 * @param home The home directory.
 * @returns What the file holds, or undefined when it does not exist.
 */
export async function readStateFile(home: string): Promise<StateFile | undefined> {
  const path = `${home}/${STATE_FILE}`;
  try {
    return parseStateFile(await Deno.readFile(path), path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * Reads the state file.
 *
 * @param home The home directory.
 * @returns The state, or undefined when the file does not exist.
 */
export async function readState(home: string): Promise<ChainState | undefined> {
  return (await readStateFile(home))?.state;
}

async function syncDir(dir: string): Promise<void> {
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

function freshFile(s: ChainState): Uint8Array {
  const b = new Uint8Array(STATE_FILE_BYTES);
  b.set(slotBytes(s, 1), 0);
  return b;
}

/**
 * Where the next state goes, or undefined when the file must be replaced whole (missing, format
 * 1, or no valid slot).
 */
function plan(b: Uint8Array | undefined, path: string): { slot: number; gen: number } | undefined {
  if (!b) return undefined;
  try {
    const f = parseStateFile(b, path);
    if (f.format !== 2) return undefined;
    return { slot: 1 - f.slot!, gen: f.gen! + 1 };
  } catch {
    return undefined;
  }
}

/**
 * Writes the state (call under the audit lock). A format-2 file is updated in place, without
 * changing its size: the new state goes into the slot that does not hold the current one, with a
 * higher generation, then `fdatasync`; only then is the other slot (the previous key) zeroed,
 * then `fdatasync` again. A crash during the first write leaves the previous slot valid (the torn
 * one fails its checksum); a crash between the two leaves both valid, and the next locked section
 * zeroes the older ({@link removeStaleTemps}). A missing or format-1 file is replaced whole (temp
 * file, fsync, rename, directory fsync) by a format-2 file.
 *
 * @param home The home directory.
 * @param s The new state.
 */
export async function writeState(home: string, s: ChainState): Promise<void> {
  let held: HeldState | undefined;
  try {
    held = HeldState.open(home);
  } catch (e) {
    if (!(e instanceof HecateError)) throw e;
    // Damaged beyond any valid slot: replaced whole below.
  }
  if (!held) return await replaceState(home, freshFile(s));
  try {
    await held.write(s);
  } finally {
    held.close();
  }
}

/**
 * The last state file update each home got from this process (any log object): if a locked
 * section finds the file exactly as this process left it, no other writer has run since, so none
 * can have been killed mid-update there (see {@link HeldState.untouched}).
 */
const lastWritten = new Map<string, { gen: number; slot: number }>();

/**
 * The state file opened for one locked section: read once with synchronous calls (a page-cache
 * copy; a hop to Deno's blocking thread pool costs more than the read), updated in place from
 * what was read, each `fdatasync` awaited so the event loop stays free while the disk works. Call
 * under the audit lock, and close before the lock goes.
 */
export class HeldState {
  readonly #home: string;
  #file: Deno.FsFile | undefined;
  #info: StateFile;
  /** Whether #info is known to match the file (false after a failed update). */
  #known = true;

  private constructor(home: string, file: Deno.FsFile, info: StateFile) {
    this.#home = home;
    this.#file = file;
    this.#info = info;
  }

  /**
   * Opens and reads the state file.
   *
   * @param home The home directory.
   * @returns The held file, or undefined when it does not exist.
   * @throws {HecateError} `audit_failed` when no slot (or the format-1 object) is valid.
   */
  static open(home: string): HeldState | undefined {
    let f: Deno.FsFile;
    try {
      f = Deno.openSync(`${home}/${STATE_FILE}`, { read: true, write: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    try {
      return new HeldState(home, f, readHeld(f, home));
    } catch (e) {
      f.close();
      throw e;
    }
  }

  /** What the file held when read (and after this object's updates). */
  get info(): StateFile {
    return this.#info;
  }

  /**
   * Whether the file is exactly as this process's last update left it: format 2, neither torn
   * nor holding a second valid slot, and the generation and slot this process wrote last. Then
   * no other locked section updated it since; and one that replaced it whole would have left a
   * different generation or no file. So no killed writer can have left a temp file or an older
   * slot since this process last looked.
   */
  get untouched(): boolean {
    const i = this.#info;
    const last = lastWritten.get(this.#home);
    return this.#known && i.format === 2 && !i.torn && !i.stale && last !== undefined &&
      last.gen === i.gen && last.slot === i.slot;
  }

  /**
   * Zeroes the slot that still holds an older state (a writer died between its two slot writes),
   * and flushes that.
   *
   * @returns True when a slot was zeroed.
   */
  async scrub(): Promise<boolean> {
    const i = this.#info;
    if (!i.stale || !this.#file) return false;
    writeAtSync(this.#file, (1 - i.slot!) * SLOT_BYTES, ZERO_SLOT);
    await this.#file.syncData();
    this.#info = { ...i, stale: false };
    return true;
  }

  /**
   * Writes the state: in place into the other slot, `fdatasync`, zeroes over the previous slot,
   * `fdatasync` (see {@link writeState}); a format-1 or slotless file is replaced whole.
   *
   * @param s The new state.
   */
  async write(s: ChainState): Promise<void> {
    const f = this.#file;
    if (f && !this.#known) {
      try {
        this.#info = readHeld(f, this.#home);
        this.#known = true;
      } catch {
        // Not valid any more: replaced whole below.
      }
    }
    const i = this.#info;
    if (!f || !this.#known || i.format !== 2) {
      this.close();
      await replaceState(this.#home, freshFile(s));
      this.#info = { state: s, format: 2, slot: 0, gen: 1, torn: false, stale: false };
      this.#known = true;
      lastWritten.set(this.#home, { gen: 1, slot: 0 });
      this.#file = Deno.openSync(`${this.#home}/${STATE_FILE}`, { read: true, write: true });
      return;
    }
    const slot = 1 - i.slot!;
    const gen = i.gen! + 1;
    this.#known = false; // until both steps are done
    writeAtSync(f, slot * SLOT_BYTES, slotBytes(s, gen));
    await f.syncData();
    writeAtSync(f, i.slot! * SLOT_BYTES, ZERO_SLOT);
    await f.syncData();
    this.#info = { state: s, format: 2, slot, gen, torn: false, stale: false };
    this.#known = true;
    lastWritten.set(this.#home, { gen, slot });
  }

  /** Closes the file (idempotent). */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

/** Reads a held state file whole from its start (synchronously: a page-cache copy). */
function readHeld(f: Deno.FsFile, home: string): StateFile {
  f.seekSync(0, Deno.SeekMode.Start);
  // One more byte than a format-2 file, so a longer file is seen as such (and read whole).
  let b = new Uint8Array(STATE_FILE_BYTES + 1);
  let n = 0;
  for (;;) {
    if (n === b.length) {
      const more = new Uint8Array(b.length * 2);
      more.set(b);
      b = more;
    }
    const r = f.readSync(b.subarray(n));
    if (r === null || r === 0) break;
    n += r;
  }
  return parseStateFile(b.subarray(0, n), `${home}/${STATE_FILE}`);
}

/** Replaces the state file whole: the temp file, fsync, rename, directory fsync. */
async function replaceState(home: string, content: Uint8Array): Promise<void> {
  const temp = `${home}/${STATE_TEMP}`;
  // A leftover from a killed writer goes first: a new file gets mode 0600 whatever it had.
  await Deno.remove(temp).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  const f = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
  try {
    let n = 0;
    while (n < content.length) n += await f.write(content.subarray(n));
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

/**
 * Zeroes a slot that still holds an older state because a writer died between writing the new
 * slot and zeroing the old one (call under the audit lock).
 *
 * @param home The home directory.
 * @returns True when a slot was zeroed.
 */
async function scrubStaleSlot(home: string): Promise<boolean> {
  let held: HeldState | undefined;
  try {
    held = HeldState.open(home);
  } catch {
    return false; // damaged: the reader reports it
  }
  if (!held) return false;
  try {
    return await held.scrub();
  } finally {
    held.close();
  }
}

/**
 * {@link writeState} without awaiting: for a process that is exiting (an `unload` handler cannot
 * wait). Same steps; call under the audit lock.
 *
 * @param home The home directory.
 * @param s The new state.
 */
export function writeStateSync(home: string, s: ChainState): void {
  const path = `${home}/${STATE_FILE}`;
  let b: Uint8Array | undefined;
  try {
    b = Deno.readFileSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const p = plan(b, path);
  if (p) {
    const f = Deno.openSync(path, { write: true });
    try {
      writeAtSync(f, p.slot * SLOT_BYTES, slotBytes(s, p.gen));
      f.syncDataSync();
      writeAtSync(f, (1 - p.slot) * SLOT_BYTES, ZERO_SLOT);
      f.syncDataSync();
    } finally {
      f.close();
    }
    return;
  }
  const temp = `${home}/${STATE_TEMP}`;
  try {
    Deno.removeSync(temp);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const f = Deno.openSync(temp, { createNew: true, write: true, mode: 0o600 });
  try {
    const content = freshFile(s);
    let n = 0;
    while (n < content.length) n += f.writeSync(content.subarray(n));
    f.syncSync();
  } finally {
    f.close();
  }
  Deno.renameSync(temp, path);
  const d = Deno.openSync(home, { read: true });
  try {
    d.syncSync();
  } finally {
    d.close();
  }
}

function writeAtSync(f: Deno.FsFile, offset: number, b: Uint8Array): void {
  f.seekSync(offset, Deno.SeekMode.Start);
  let n = 0;
  while (n < b.length) n += f.writeSync(b.subarray(n));
}
