/**
 * Small JSON state files in the home directory (lockout counters, TOTP replay guard, API-key
 * last-used times): read without a lock (writes are atomic renames, so a reader sees the old or
 * the new file), changed under an exclusive lock so concurrent processes never lose an update.
 * Mode 0600. These files hold no secret; they hold what must be known without the master password.
 *
 * @module
 */

import { toHex } from "../vault/encoding.ts";
import { randomBytes } from "../vault/primitives.ts";

/** A state file's content: a JSON object. */
export type State = Record<string, unknown>;

/**
 * Reads a state file; a missing or unreadable file reads as empty.
 *
 * @param home The home directory.
 * @param name File name, e.g. `lockout.state.json`.
 * @returns The state.
 */
export async function readState(home: string, name: string): Promise<State> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${home}/${name}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v as State : {};
  } catch {
    return {}; // a torn or hand-edited file: start over rather than fail every unlock
  }
}

/** Options for {@link updateState}. */
export interface UpdateStateOptions {
  /** fsync the new file before the rename (durability across power loss). @default {true} */
  sync?: boolean;
}

/**
 * Changes a state file under its exclusive lock: reads it, lets `fn` change the object, and
 * replaces the file atomically when `fn` returns `true` for "changed".
 *
 * @param home The home directory.
 * @param name File name.
 * @param fn Changes the state in place; returns whether to write and a result.
 * @param options Durability.
 * @returns What `fn` returned as its result.
 */
export async function updateState<T>(
  home: string,
  name: string,
  fn: (state: State) => { write: boolean; result: T },
  options: UpdateStateOptions = {},
): Promise<T> {
  const lock = await Deno.open(`${home}/${name}.lock`, { create: true, write: true, mode: 0o600 });
  try {
    await lock.lock(true);
    const state = await readState(home, name);
    const { write, result } = fn(state);
    if (write) {
      const temp = `${home}/.${name}.tmp-${toHex(randomBytes(8))}`;
      const f = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
      try {
        const bytes = new TextEncoder().encode(JSON.stringify(state) + "\n");
        let n = 0;
        while (n < bytes.length) n += await f.write(bytes.subarray(n));
        if (options.sync ?? true) await f.sync();
      } finally {
        f.close();
      }
      await Deno.rename(temp, `${home}/${name}`);
    }
    return result;
  } finally {
    lock.close();
  }
}
