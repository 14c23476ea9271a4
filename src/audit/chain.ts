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
 * The writer uses @noble/hashes (synchronous, one entry at a time, and cheap to load: node:crypto
 * costs ~30 ms of start-up on every command); the verifier uses {@link ./fast_hmac.ts} for
 * throughput. Both are checked against each other in the tests.
 *
 * @module
 */

import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

/** Bytes in a chain key and in a MAC. */
export const CHAIN_BYTES = 32;
/** The label of the one-way key step. */
export const STEP_LABEL: Uint8Array<ArrayBuffer> = new TextEncoder().encode(
  "hecate-audit-v1 next key",
);
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
  const input = new Uint8Array(STEP_LABEL.length + key.length);
  input.set(STEP_LABEL);
  input.set(key, STEP_LABEL.length);
  return new Uint8Array(sha256(input));
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
  return new Uint8Array(hmac.create(sha256, key).update(prev).update(canonical).digest());
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
