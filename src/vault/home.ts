/**
 * The Hecate home directory: where it is, creating it with safe permissions, and refusing one that
 * other users could write to (they could swap the vault or plant a lock file).
 *
 * @module
 */

import { HecateError } from "../errors.ts";

/** Options for {@link resolveHome}. */
export interface ResolveHomeOptions {
  /** An explicit directory (from `--home`). */
  home?: string | undefined;
  /** Environment lookup, injectable for tests. @default {Deno.env.get} */
  env?: (name: string) => string | undefined;
}

/**
 * Picks the home directory: `--home`, else `$HECATE_HOME`, else `~/.hecate`.
 *
 * @param options Where to look.
 * @returns An absolute or relative directory path.
 * @throws {HecateError} `usage` when no home can be determined.
 */
export function resolveHome(options: ResolveHomeOptions = {}): string {
  const env = options.env ?? ((n: string) => Deno.env.get(n));
  if (options.home) return options.home;
  const fromEnv = env("HECATE_HOME");
  if (fromEnv) return fromEnv;
  const userHome = env("HOME");
  if (!userHome) {
    throw new HecateError("usage", "Cannot find a home directory for the vault", {
      hint: "set HECATE_HOME or pass --home DIR",
    });
  }
  return `${userHome}/.hecate`;
}

/**
 * Checks that a directory is owned by this user and not writable by group or others.
 *
 * @param dir The directory.
 * @throws {HecateError} `insecure_home` when it is unsafe, `vault_not_found` when it is missing.
 */
export async function checkHome(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HecateError("vault_not_found", `No vault at "${dir}"`, {
        hint: "create one with 'hecate init'",
      });
    }
    throw e;
  }
  if (!info.isDirectory) {
    throw new HecateError("insecure_home", `Home "${dir}" is not a directory`);
  }
  const uid = Deno.uid();
  if (info.uid !== null && uid !== null && info.uid !== uid) {
    throw new HecateError("insecure_home", `Home "${dir}" is owned by another user`, {
      hint: "use a directory you own",
    });
  }
  if (info.mode !== null && (info.mode & 0o022) !== 0) {
    throw new HecateError(
      "insecure_home",
      `Home "${dir}" is writable by other users (mode ${(info.mode & 0o777).toString(8)})`,
      { hint: `run 'chmod 700 ${dir}'` },
    );
  }
}

/**
 * Creates the home directory with mode 0700 if it does not exist, then checks it.
 *
 * @param dir The directory.
 */
export async function ensureHome(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  await checkHome(dir);
}
