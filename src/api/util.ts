/**
 * Small helpers shared by the library modules.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { toHex, utf8 } from "../vault/encoding.ts";
import { sha256 } from "../vault/primitives.ts";

/**
 * SHA-256 of a text, as lowercase hex.
 *
 * @param text The text.
 * @returns The digest.
 */
export function sha256Hex(text: string): Promise<string> {
  return sha256(utf8(text)).then(toHex);
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
