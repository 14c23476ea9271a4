/**
 * Byte encodings used by the vault format: base64url without padding, UTF-8, and a
 * constant-time comparison for MACs.
 *
 * @module
 */

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Encodes bytes as base64url without padding (RFC 4648 section 5).
 *
 * @param bytes The bytes to encode.
 * @returns The encoded text.
 */
export function toBase64Url(bytes: Uint8Array): string {
  // The built-in encoder: a vault of 10,000 profiles has some 30,000 fields to encode.
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * Decodes unpadded base64url text.
 *
 * @param text The encoded text.
 * @returns The decoded bytes.
 * @throws {SyntaxError} When the text is not canonical unpadded base64url.
 */
export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  // The built-in decoder skips ASCII whitespace and accepts padding: the pattern refuses both.
  if (!B64URL.test(text) || text.length % 4 === 1) {
    throw new SyntaxError("Invalid base64url text");
  }
  const padded = text + "=".repeat((4 - (text.length % 4)) % 4);
  try {
    // "strict" rejects stray low bits in the last chunk, so one byte string has one spelling.
    return Uint8Array.fromBase64(padded, { alphabet: "base64url", lastChunkHandling: "strict" });
  } catch {
    throw new SyntaxError("Non-canonical base64url text");
  }
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes text as UTF-8.
 *
 * @param text The text.
 * @returns Its UTF-8 bytes.
 */
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text);
}

/**
 * Decodes UTF-8, rejecting invalid sequences.
 *
 * @param bytes UTF-8 bytes.
 * @returns The text.
 * @throws {TypeError} When the bytes are not valid UTF-8.
 */
export function fromUtf8(bytes: Uint8Array): string {
  return strictDecoder.decode(bytes);
}

/**
 * Compares two byte strings in time that depends only on their lengths.
 *
 * @param a First value.
 * @param b Second value.
 * @returns Whether they are equal.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Concatenates byte strings.
 *
 * @param parts The parts, in order.
 * @returns One new array holding all parts.
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Encodes bytes as lowercase hex.
 *
 * @param bytes The bytes.
 * @returns Hex text.
 */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
