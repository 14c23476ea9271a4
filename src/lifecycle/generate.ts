/**
 * Strong random passwords for server-side rotation: WebCrypto random bytes, each character drawn
 * without modulo bias (rejection sampling), at least one of each class.
 *
 * @module
 */

import { HecateError } from "../errors.ts";

const CLASSES = [
  "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
  "abcdefghijklmnopqrstuvwxyz",
  "0123456789",
  // No quote, backslash, space or `$`: safe inside an SQL string literal on every engine.
  "!#%*+,-./:;=?@^_~",
];
const ALL = CLASSES.join("");

/** Shortest and longest generated password. */
export const MIN_LENGTH = 16;
export const MAX_LENGTH = 128;
/** Length when none is asked for. */
export const DEFAULT_LENGTH = 32;

/** A uniform index below `n` (n <= 256) from random bytes, rejecting the biased tail. */
function uniform(n: number): number {
  const limit = 256 - (256 % n);
  const b = new Uint8Array(1);
  for (;;) {
    crypto.getRandomValues(b);
    if (b[0]! < limit) return b[0]! % n;
  }
}

/**
 * A random password of `length` characters with upper and lower case letters, digits and
 * symbols (each at least once), every character uniform over its alphabet.
 *
 * @param length 16 to 128.
 * @returns The password.
 * @throws {HecateError} `usage` for a length out of range.
 */
export function generatePassword(length: number = DEFAULT_LENGTH): string {
  if (!Number.isInteger(length) || length < MIN_LENGTH || length > MAX_LENGTH) {
    throw new HecateError("usage", `--length must be from ${MIN_LENGTH} to ${MAX_LENGTH}`);
  }
  for (;;) {
    let out = "";
    for (let i = 0; i < length; i++) out += ALL[uniform(ALL.length)];
    // Redraw the whole password rather than patch it: patching would bias positions.
    if (CLASSES.every((c) => [...out].some((ch) => c.includes(ch)))) return out;
  }
}
