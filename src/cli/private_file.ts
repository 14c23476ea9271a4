/**
 * Reading a credential from a file the person named (`HECATE_PASSWORD_FILE`,
 * `HECATE_NEW_PASSWORD_FILE`, `--api-key-file`): the file must be as private as the vault home
 * (src/vault/home.ts): a regular file, owned by this user, with no group or other permission bit.
 * A credential in a file others can read is already exposed; refusing it makes the person notice.
 *
 * The checks run on the opened file (not only on the path), so a file swapped in between the
 * check and the read is the one checked.
 *
 * @module
 */

import { HecateError } from "../errors.ts";

/** Refuses a file that is not private; `what` names it in the message. */
function checkPrivate(info: Deno.FileInfo, path: string, what: string): void {
  if (!info.isFile) {
    throw new HecateError("insecure_home", `The ${what} "${path}" is not a regular file`, {
      hint: "name a regular file only you can read",
    });
  }
  const uid = Deno.uid();
  if (info.uid !== null && uid !== null && info.uid !== uid) {
    throw new HecateError("insecure_home", `The ${what} "${path}" is owned by another user`, {
      hint: "use a file you own, readable only by you",
    });
  }
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    throw new HecateError(
      "insecure_home",
      `The ${what} "${path}" is open to other users (mode ${(info.mode & 0o777).toString(8)})`,
      { hint: `run 'chmod 600 ${path}'` },
    );
  }
}

/**
 * Reads a credential file after checking that only this user can read it.
 *
 * @param path The file.
 * @param what What it holds, for messages (e.g. `password file`).
 * @returns Its text (UTF-8).
 * @throws {HecateError} `no_credential` when it cannot be read, `insecure_home` when it is not a
 * regular file, is owned by another user, or has any group or other permission bit.
 */
export async function readPrivateFile(path: string, what: string): Promise<string> {
  const unreadable = () => new HecateError("no_credential", `Cannot read the ${what} "${path}"`);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw unreadable();
  }
  // Checked before opening: opening a FIFO or a device could block or have effects.
  checkPrivate(info, path, what);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    throw unreadable();
  }
  try {
    checkPrivate(await file.stat(), path, what);
    const bytes = new Uint8Array(await new Response(file.readable).arrayBuffer());
    return new TextDecoder().decode(bytes);
  } catch (e) {
    if (e instanceof HecateError) throw e;
    throw unreadable();
  } finally {
    try {
      file.close();
    } catch {
      // closed with its stream
    }
  }
}
