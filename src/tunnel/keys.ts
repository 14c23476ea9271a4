/**
 * Checks on private key files made when a profile is added, so a missing or mistyped passphrase
 * shows up then rather than at the first connection.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { HecateError } from "../errors.ts";
import { keyProblem } from "./ssh2.ts";

async function read(file: string): Promise<Buffer> {
  try {
    return Buffer.from(await Deno.readFile(file));
  } catch (e) {
    throw new HecateError("invalid_profile", `Cannot read the SSH key file "${file}"`, {
      cause: e,
    });
  }
}

/**
 * Whether a private key file needs a passphrase.
 *
 * @param file The key file.
 * @returns True for an encrypted key.
 * @throws {HecateError} `invalid_profile` when the file is unreadable or not a private key.
 */
export async function keyIsEncrypted(file: string): Promise<boolean> {
  const problem = keyProblem(await read(file));
  if (!problem) return false;
  if (/no passphrase/i.test(problem.message)) return true;
  throw new HecateError(
    "invalid_profile",
    `The SSH key file "${file}" is not a usable private key`,
  );
}

/**
 * Checks a passphrase against an encrypted key file.
 *
 * @param file The key file.
 * @param passphrase The candidate.
 * @throws {HecateError} `auth_failed` when it does not decrypt the key (the passphrase is never
 * named).
 */
export async function checkKeyPassphrase(file: string, passphrase: string): Promise<void> {
  if (keyProblem(await read(file), passphrase)) {
    throw new HecateError(
      "auth_failed",
      `Cannot decrypt the SSH key file "${file}": wrong passphrase`,
    );
  }
}
