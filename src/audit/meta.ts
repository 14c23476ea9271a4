/**
 * The audit chain's first key A0 as kept in the vault's encrypted meta object:
 * `meta.audit = { v: 1, key: base64url(A0), created: ISO time }`.
 *
 * @module
 */

import { fromBase64Url, toBase64Url } from "../vault/encoding.ts";
import { CHAIN_BYTES } from "./chain.ts";

/**
 * Returns a meta object carrying A0.
 *
 * @param meta The vault's meta object.
 * @param a0 The first chain key.
 * @param created When the chain was started.
 * @returns A copy of `meta` with `audit` set.
 */
export function withChainKey(
  meta: Record<string, unknown>,
  a0: Uint8Array,
  created: Date = new Date(),
): Record<string, unknown> {
  return { ...meta, audit: { v: 1, key: toBase64Url(a0), created: created.toISOString() } };
}

/**
 * Reads A0 from the vault's meta object.
 *
 * @param meta The vault's meta object.
 * @returns A0, or undefined when the vault has no chain yet.
 */
export function chainKeyOf(meta: Record<string, unknown>): Uint8Array | undefined {
  const audit = meta.audit as { key?: unknown } | undefined;
  if (typeof audit?.key !== "string") return undefined;
  const key = fromBase64Url(audit.key);
  return key.length === CHAIN_BYTES ? key : undefined;
}
