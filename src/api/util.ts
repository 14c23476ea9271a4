/**
 * Small helpers shared by the library modules.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { toHex, utf8 } from "../vault/encoding.ts";
import { sha256 } from "../sha256.ts";

const digests = new Map<string, string>();
/** Distinct statements remembered; a pool runs the same few over and over. */
const DIGEST_CACHE = 256;

/**
 * SHA-256 of a statement's text, hex, as the audit trail records it. Synchronous and cached, since
 * it runs for every statement.
 *
 * @param sql The statement text.
 * @returns 64 hex digits.
 */
export function sqlDigest(sql: string): string {
  let d = digests.get(sql);
  if (d === undefined) {
    d = toHex(sha256(utf8(sql)));
    if (digests.size >= DIGEST_CACHE) digests.clear();
    digests.set(sql, d);
  }
  return d;
}

/**
 * The audit reason for an error: its stable code, never its message.
 *
 * @param e The error.
 * @returns A code.
 */
export function reasonOf(e: unknown): string {
  return e instanceof HecateError ? e.code : "internal";
}

/**
 * Drops undefined and null members.
 *
 * @param o The object.
 * @returns A copy without them.
 */
export function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined && v !== null),
  ) as T;
}
