/**
 * The forward-secure MAC chain of the audit trail (Schneier-Kelsey style), as specified in
 * docs/SECURITY.md "Audit trail":
 *
 * - entry `n` (n >= 1) is sealed with key `A(n-1)`:
 *   `mac(n) = HMAC-SHA256(A(n-1), mac(n-1) || C(n))`, with `mac(0)` = 32 zero bytes and `C(n)` the
 *   entry's canonical bytes (its JSON line as written, without the `mac` member);
 * - then `A(n) = SHA-256("hecate-audit-v1 next key" || A(n-1))` and `A(n-1)` is erased.
 *
 * The key step is the labelled one-way hash of Schneier and Kelsey's construction; one SHA-256
 * block instead of an HMAC's four keeps verification fast.
 * Writer and verifier both compute it with ./fast_hmac.ts over the plain-JavaScript SHA-256 in
 * ../sha256.ts: synchronous, and loading neither an npm package nor a `node:` module, which would
 * start Deno's Node compatibility layer on every command. The tests check both against
 * node:crypto and the RFC 4231 vectors.
 *
 * @module
 */

import { FastHmac, STEP_LABEL } from "./fast_hmac.ts";

export { STEP_LABEL };

/** Bytes in a chain key and in a MAC. */
export const CHAIN_BYTES = 32;
/** `mac(0)`: the value chained into the first entry. */
export const ZERO_MAC: Uint8Array<ArrayBuffer> = new Uint8Array(CHAIN_BYTES);

/** Every line ends with `,"mac":"` + 43 base64url characters + `"}`: this many bytes. */
export const MAC_SUFFIX_BYTES = 8 + 43 + 2;
/** Every line starts with this. */
export const LINE_PREFIX = '{"seq":';

/**
 * The next chain key: `SHA-256(STEP_LABEL || key)`.
 *
 * @param key The current key `A(n-1)`.
 * @returns `A(n)`.
 */
export function nextKey(key: Uint8Array): Uint8Array<ArrayBuffer> {
  if (key.length !== CHAIN_BYTES) throw new RangeError("A chain key has 32 bytes");
  return new Uint8Array(engine().next(key));
}

let hmacEngine: FastHmac | undefined;
/** One engine for the process: it keeps buffers between calls, and JavaScript is one thread. */
function engine(): FastHmac {
  return hmacEngine ??= new FastHmac();
}

/**
 * The MAC of one entry.
 *
 * @param key The entry's key `A(n-1)`.
 * @param prev The previous entry's MAC (or {@link ZERO_MAC}).
 * @param canonical The entry's canonical bytes `C(n)`.
 * @returns `mac(n)`.
 */
export function entryMac(
  key: Uint8Array,
  prev: Uint8Array,
  canonical: Uint8Array,
): Uint8Array<ArrayBuffer> {
  return new Uint8Array(engine().mac(key, prev, canonical));
}

/**
 * Steps a key forward `n` times.
 *
 * @param key The starting key.
 * @param n How many steps.
 * @returns The key `n` steps on.
 */
export function stepKey(key: Uint8Array, n: number): Uint8Array<ArrayBuffer> {
  let k = new Uint8Array(key);
  for (let i = 0; i < n; i++) k = nextKey(k);
  return k;
}
