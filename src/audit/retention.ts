/**
 * The proof that lets retention remove the oldest entries of the trail (docs/SECURITY.md
 * "Segments and retention"). Whoever holds the current chain key can write entries that verify,
 * so a removal record MACed only by the chain proves nothing about what came before it. The
 * retention record therefore carries a tag under a key derived from the first chain key A0,
 * which lives only in the vault (the master password): `R = HMAC-SHA256(A0, RETENTION_LABEL)`,
 * `auth = HMAC-SHA256(R, u64be(s) || mac(s))`, where `s` is the last removed entry. A verifier
 * holding A0 checks `auth`, steps A0 forward to `A(s)`, and continues the chain from `mac(s)`.
 *
 * @module
 */

import { fromBase64Url, timingSafeEqual, toBase64Url } from "../vault/encoding.ts";
import { CHAIN_BYTES } from "./chain.ts";
import { FastHmac } from "./fast_hmac.ts";

/** The label the retention key is derived with. */
export const RETENTION_LABEL: Uint8Array<ArrayBuffer> = new TextEncoder().encode(
  "hecate-audit-v1 retention",
);

/** A segment that retention removed, as its in-chain record describes it. */
export interface RemovedSegment {
  segment: string;
  first_seq: number;
  last_seq: number;
  last_mac: string;
}

/**
 * The retention key `R = HMAC-SHA256(A0, "hecate-audit-v1 retention")`.
 *
 * @param a0 The first chain key.
 * @returns R.
 */
export function retentionKey(a0: Uint8Array): Uint8Array {
  if (a0.length !== CHAIN_BYTES) throw new RangeError("A chain key has 32 bytes");
  return new FastHmac().mac(a0, RETENTION_LABEL);
}

function seqBytes(seq: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(seq));
  return b;
}

/**
 * The tag authorising the removal of entries 1..`seq`: `HMAC-SHA256(R, u64be(seq) || mac(seq))`.
 *
 * @param r The retention key.
 * @param seq The last removed entry.
 * @param mac Its MAC.
 * @returns base64url of the tag.
 */
export function retentionAuth(r: Uint8Array, seq: number, mac: Uint8Array): string {
  return toBase64Url(new FastHmac().mac(r, seqBytes(seq), mac));
}

/**
 * Checks a retention record's proof for the entries before `firstKept`.
 *
 * @param a0 The first chain key.
 * @param detail The record's `detail` member, as parsed (untrusted).
 * @param firstKept The first entry still on disk.
 * @returns The removed segments and `mac(firstKept - 1)` when the proof holds; otherwise a short
 * reason why it does not.
 */
export function provenStart(
  a0: Uint8Array,
  detail: unknown,
  firstKept: number,
): { removed: RemovedSegment[]; prev: Uint8Array } | { refused: string } {
  const d = detail as { removed?: unknown; auth?: unknown } | null | undefined;
  const removed = Array.isArray(d?.removed) ? d.removed as RemovedSegment[] : undefined;
  const covering = removed?.find((r) =>
    r !== null && typeof r === "object" && r.last_seq === firstKept - 1
  );
  if (!removed || !covering) return { refused: "no retention record covers them" };
  if (typeof d?.auth !== "string") {
    return { refused: "the retention record that claims them carries no proof (forged or old)" };
  }
  let prev: Uint8Array;
  let tag: Uint8Array;
  try {
    prev = fromBase64Url(String(covering.last_mac));
    tag = fromBase64Url(d.auth);
  } catch {
    return { refused: "the retention record's proof is malformed (forged)" };
  }
  if (prev.length !== CHAIN_BYTES || tag.length !== CHAIN_BYTES) {
    return { refused: "the retention record's proof is malformed (forged)" };
  }
  const want = fromBase64Url(retentionAuth(retentionKey(a0), firstKept - 1, prev));
  if (!timingSafeEqual(want, tag)) {
    return { refused: "the retention record's proof does not verify (forged)" };
  }
  // The list is for people; only well-typed items are passed on.
  const listed = removed.filter((r) =>
    r !== null && typeof r === "object" && typeof r.segment === "string" &&
    Number.isSafeInteger(r.first_seq) && Number.isSafeInteger(r.last_seq) &&
    typeof r.last_mac === "string"
  );
  return { removed: listed.filter((r) => r.last_seq < firstKept), prev };
}
