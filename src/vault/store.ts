/**
 * Durable storage of the vault file: an exclusive lock across processes, atomic replacement
 * (temp file in the same directory, fsync, rename, directory fsync), and the previous
 * generations kept beside it. A crash at any instant leaves the old file or the new one.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { toHex } from "./encoding.ts";
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
    return await Deno.readFile(this.path);
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
   * @param bytes The new file.
   * @param generation The generation number the new file carries.
   */
  async replace(bytes: Uint8Array, generation: number): Promise<void> {
    await this.#removeStaleTemps();
    const temp = `${this.home}/${TEMP_PREFIX}${toHex(randomBytes(8))}`;
    const file = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
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
