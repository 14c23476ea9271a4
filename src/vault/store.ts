/**
 * Durable storage of the vault file: an exclusive lock across processes, atomic replacement
 * (temp file in the same directory, fsync, rename, directory fsync), and the previous
 * generations kept beside it. A crash at any instant leaves the old file or the new one.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { toHex } from "./encoding.ts";
import type { PositionedFile } from "./format.ts";
import { randomBytes } from "./primitives.ts";

/** File name of the vault inside the home directory. */
export const VAULT_FILE = "vault.hecate";
const LOCK_FILE = "vault.lock";
const GENERATIONS_DIR = "generations";
const TEMP_PREFIX = ".vault.hecate.tmp-";

/** Options for {@link VaultStore}. */
export interface VaultStoreOptions {
  /** How many previous generations to keep. @default {5} */
  keepGenerations?: number;
}

/**
 * Reads a whole file into one buffer of the size it has when opened, then checks that nothing
 * follows (a file that grew is read on). `Deno.readFile` grows its buffer as it reads: for a
 * 10 MiB vault, several milliseconds more on every unlock with the password.
 *
 * @param path The file.
 * @returns Its bytes, in a buffer of exactly their length.
 */
async function readWhole(path: string): Promise<Uint8Array<ArrayBuffer>> {
  using f = await Deno.open(path, { read: true });
  const size = (await f.stat()).size;
  const buf = new Uint8Array(size);
  let n = 0;
  while (n < size) {
    const r = await f.read(buf.subarray(n));
    if (r === null) return buf.slice(0, n); // shorter than when opened
    n += r;
  }
  const more: Uint8Array<ArrayBuffer>[] = [buf];
  let total = size;
  for (;;) {
    const chunk = new Uint8Array(64 * 1024);
    const r = await f.read(chunk);
    if (r === null) break;
    more.push(chunk.subarray(0, r));
    total += r;
  }
  if (more.length === 1) return buf;
  const out = new Uint8Array(total); // grew while read: joined (rare)
  let at = 0;
  for (const part of more) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Reads and atomically replaces the vault file in one home directory. */
export class VaultStore {
  /** The home directory. */
  readonly home: string;
  /** Absolute or relative path of the vault file. */
  readonly path: string;
  readonly #keep: number;

  /**
   * @param home The home directory (already checked).
   * @param options Retention.
   */
  constructor(home: string, options: VaultStoreOptions = {}) {
    this.home = home;
    this.path = `${home}/${VAULT_FILE}`;
    this.#keep = options.keepGenerations ?? 5;
  }

  /** Whether a vault file exists. */
  async exists(): Promise<boolean> {
    try {
      return (await Deno.lstat(this.path)).isFile;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  }

  /**
   * Reads the vault file, refusing anything but a regular file that only its owner can read.
   *
   * @returns The bytes.
   * @throws {HecateError} `vault_not_found` when absent, `insecure_home` when unsafe.
   */
  async read(): Promise<Uint8Array<ArrayBuffer>> {
    await this.#checkFile();
    return await readWhole(this.path);
  }

  async #checkFile(): Promise<void> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new HecateError("vault_not_found", `No vault at "${this.home}"`, {
          hint: "create one with 'hecate init', or pass --home DIR",
        });
      }
      throw e;
    }
    if (!info.isFile) {
      throw new HecateError("insecure_home", `Vault "${this.path}" is not a regular file`);
    }
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      throw new HecateError(
        "insecure_home",
        `Vault "${this.path}" is readable or writable by other users`,
        { hint: `run 'chmod 600 ${this.path}'` },
      );
    }
  }

  /**
   * Opens the vault file for positioned reads, with the checks of {@link read}: a reader that
   * needs only some of its lines (an API-key reader) reads those and not the whole file. The
   * size is taken from the open descriptor, and a writer replaces the file by rename, so every
   * read sees the one file that was opened.
   *
   * @returns The open file; close it when done.
   * @throws {HecateError} `vault_not_found` when absent, `insecure_home` when unsafe.
   */
  async openPositioned(): Promise<PositionedVaultFile> {
    await this.#checkFile();
    const file = await Deno.open(this.path, { read: true });
    try {
      const info = await file.stat();
      if (!info.isFile) {
        throw new HecateError("insecure_home", `Vault "${this.path}" is not a regular file`);
      }
      return new PositionedVaultFile(file, info.size);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /**
   * Runs `fn` holding the exclusive vault lock (flock on a lock file), so read-modify-write cycles
   * of different processes never interleave.
   *
   * @param fn The critical section.
   * @returns What `fn` returns.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = await Deno.open(`${this.home}/${LOCK_FILE}`, {
      create: true,
      write: true,
      mode: 0o600,
    });
    try {
      await lock.lock(true);
      return await fn();
    } finally {
      // Closing the descriptor releases the lock even if unlock was never reached.
      lock.close();
    }
  }

  /**
   * Replaces the vault file atomically and durably. Call only while holding {@link withLock}.
   * The file being replaced is kept as a numbered generation.
   *
   * @param bytes The new file, whole or as parts written in turn.
   * @param generation The generation number the new file carries.
   */
  async replace(bytes: Uint8Array | readonly Uint8Array[], generation: number): Promise<void> {
    await this.#removeStaleTemps();
    const temp = `${this.home}/${TEMP_PREFIX}${toHex(randomBytes(8))}`;
    const file = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
    try {
      for (const part of bytes instanceof Uint8Array ? [bytes] : bytes) {
        let written = 0;
        while (written < part.length) written += await file.write(part.subarray(written));
      }
      await file.sync();
    } finally {
      file.close();
    }
    await this.#keepPrevious(generation - 1);
    await Deno.rename(temp, this.path);
    await this.#syncDir(this.home);
    await this.#prune();
  }

  async #keepPrevious(previous: number): Promise<void> {
    if (this.#keep <= 0 || previous < 1 || !(await this.exists())) return;
    const dir = `${this.home}/${GENERATIONS_DIR}`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const target = `${dir}/vault.${previous}.hecate`;
    await Deno.remove(target).catch(() => {});
    // A hard link keeps the old inode alive after the rename, at no copying cost.
    await Deno.link(this.path, target);
    await this.#syncDir(dir);
  }

  async #prune(): Promise<void> {
    const list = await this.generations();
    for (const g of list.slice(this.#keep)) await Deno.remove(g.path).catch(() => {});
  }

  /**
   * Lists kept generations, newest first.
   *
   * @returns Generation numbers and file paths.
   */
  async generations(): Promise<{ generation: number; path: string }[]> {
    const dir = `${this.home}/${GENERATIONS_DIR}`;
    const out: { generation: number; path: string }[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        const m = /^vault\.(\d+)\.hecate$/.exec(e.name);
        if (m && e.isFile) out.push({ generation: Number(m[1]), path: `${dir}/${e.name}` });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out.sort((a, b) => b.generation - a.generation);
  }

  async #removeStaleTemps(): Promise<void> {
    // Only called under the lock, so any temp file present belongs to a writer that died.
    for await (const e of Deno.readDir(this.home)) {
      if (e.name.startsWith(TEMP_PREFIX)) {
        await Deno.remove(`${this.home}/${e.name}`).catch(() => {});
      }
    }
  }

  async #syncDir(dir: string): Promise<void> {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  }
}

/** The vault file open for positioned reads ({@link VaultStore.openPositioned}). */
export class PositionedVaultFile implements PositionedFile {
  /** The size when opened. */
  readonly size: number;
  readonly #file: Deno.FsFile;

  constructor(file: Deno.FsFile, size: number) {
    this.#file = file;
    this.size = size;
  }

  /**
   * Reads up to `length` bytes at `offset` (fewer only at the end of the file).
   *
   * @param offset Where to start.
   * @param length How many bytes.
   * @returns The bytes read.
   */
  async readAt(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
    const out = new Uint8Array(length);
    await this.#file.seek(offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < length) {
      const n = await this.#file.read(out.subarray(got));
      if (n === null) break;
      got += n;
    }
    return got === length ? out : out.slice(0, got);
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}
