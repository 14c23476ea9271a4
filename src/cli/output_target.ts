/**
 * Where query output goes: standard output, or a file that appears only when the whole result
 * was written (temp file in the same directory, fsync, rename), so a failed export never leaves a
 * truncated file that looks complete.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import type { CliIo } from "./io.ts";

/** A byte destination with commit/abort. */
export class OutputTarget {
  readonly #write: (chunk: Uint8Array) => Promise<void>;
  readonly #commit: () => Promise<void>;
  readonly #abort: () => Promise<void>;

  private constructor(
    write: (chunk: Uint8Array) => Promise<void>,
    commit: () => Promise<void>,
    abort: () => Promise<void>,
  ) {
    this.#write = write;
    this.#commit = commit;
    this.#abort = abort;
  }

  /**
   * Standard output.
   *
   * @param io The process io.
   * @returns The target.
   */
  static stdout(io: CliIo): OutputTarget {
    return new OutputTarget((c) => io.outBytes(c), async () => {}, async () => {});
  }

  /**
   * A file, written to a temp name beside it and renamed into place on commit.
   *
   * @param path The file to create or replace.
   * @returns The target.
   */
  static async file(path: string): Promise<OutputTarget> {
    const slash = path.lastIndexOf("/");
    const dir = slash >= 0 ? path.slice(0, slash) || "/" : ".";
    const base = slash >= 0 ? path.slice(slash + 1) : path;
    const temp = `${dir}/.${base}.hecate-partial-${crypto.randomUUID().slice(0, 8)}`;
    let f: Deno.FsFile;
    try {
      f = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
    } catch (e) {
      throw new HecateError("usage", `Cannot create the output file "${path}"`, { cause: e });
    }
    let open = true;
    const close = () => {
      if (open) f.close();
      open = false;
    };
    return new OutputTarget(
      async (chunk) => {
        let n = 0;
        while (n < chunk.length) n += await f.write(chunk.subarray(n));
      },
      async () => {
        await f.sync();
        close();
        await Deno.rename(temp, path);
      },
      async () => {
        close();
        await Deno.remove(temp).catch(() => {});
      },
    );
  }

  /** Writes a chunk. */
  write(chunk: Uint8Array): Promise<void> {
    return this.#write(chunk);
  }

  /** Makes the output final. */
  commit(): Promise<void> {
    return this.#commit();
  }

  /** Discards partial output. */
  abort(): Promise<void> {
    return this.#abort();
  }
}
