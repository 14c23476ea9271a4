/**
 * The `\x` hex text form of binary values (PostgreSQL's bytea output), used for blobs in text mode.
 *
 * @module
 */

/**
 * Formats bytes as `\x` followed by lowercase hex.
 *
 * @param bytes The bytes.
 * @returns The text form.
 */
export function byteaHex(bytes: Uint8Array): string {
  let s = "\\x";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
