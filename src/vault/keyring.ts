/**
 * The key hierarchy of a vault: how the root key is wrapped by a password slot, how sub-keys are
 * derived from it, and how records and the meta blob are sealed. Each derived key has a fixed
 * label (see docs/FORMAT.md, "Keys and labels").
 *
 * @module
 */

import { concatBytes, utf8 } from "./encoding.ts";
import type { RecordKind } from "./format.ts";
import { hkdfSha256, hmacSha256, KEY_BYTES, open, pbkdf2Sha256, seal } from "./primitives.ts";

// Format 2 keeps every construction of format 1 under its original labels (so records need no
// re-sealing on upgrade) and names what it adds with the "hecate-vault/2" prefix.
const LABEL_V1 = "hecate-vault/1";
const LABEL_V2 = "hecate-vault/2";
// Format 4 adds the name-tag key and the index line's associated data under its own prefix.
const LABEL_V4 = "hecate-vault/4";

/**
 * Builds associated data: a label followed by length-prefixed fields, so that no two field lists
 * encode to the same bytes. The label is prefixed with `hecate-vault/1 `, the prefix of every
 * construction format 1 defined.
 *
 * @param label What the data binds (e.g. "record").
 * @param fields Identifiers to bind.
 * @returns The associated data bytes.
 */
export function associatedData(label: string, ...fields: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return labelled(LABEL_V1, label, fields);
}

/**
 * As {@link associatedData}, for the constructions format 2 added (prefix `hecate-vault/2 `).
 *
 * @param label What the data binds (e.g. "apikey-slot").
 * @param fields Identifiers to bind.
 * @returns The associated data bytes.
 */
export function associatedDataV2(
  label: string,
  ...fields: Uint8Array[]
): Uint8Array<ArrayBuffer> {
  return labelled(LABEL_V2, label, fields);
}

/**
 * The bytes the writer signs: a fixed label, then the body line exactly as stored, so a
 * signature over a vault body can never be taken for a signature over anything else.
 *
 * @param bodyBytes The body line without its newline.
 * @returns The message to sign or verify.
 */
export function signedBodyMessage(bodyBytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return concatBytes(utf8(`${LABEL_V2} body-signature `), bodyBytes);
}

function labelled(prefix: string, label: string, fields: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [utf8(`${prefix} ${label}`)];
  for (const f of fields) {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, f.length);
    parts.push(len, f);
  }
  return concatBytes(...parts);
}

/** Keys derived from the root key for one vault. */
export interface DerivedKeys {
  /** Wraps record data keys. */
  wrap: Uint8Array<ArrayBuffer>;
  /** Authenticates the body. */
  mac: Uint8Array<ArrayBuffer>;
  /** Seals the meta blob (and, format 4, the profile index line). */
  meta: Uint8Array<ArrayBuffer>;
  /** Format 4: keys the record name tags. */
  tag: Uint8Array<ArrayBuffer>;
}

/**
 * Derives the per-purpose keys from the root key with HKDF-SHA256, salted with the vault id.
 *
 * @param root The 32-byte root key.
 * @param vaultId The vault id.
 * @returns The derived keys.
 */
export async function deriveKeys(
  root: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
): Promise<DerivedKeys> {
  const [wrap, mac, meta, tag] = await Promise.all(
    [`${LABEL_V1} wrap`, `${LABEL_V1} mac`, `${LABEL_V1} meta`, `${LABEL_V4} name-tag`].map((
      info,
    ) => hkdfSha256(root, vaultId, utf8(info))),
  );
  return { wrap: wrap!, mac: mac!, meta: meta!, tag: tag! };
}

/**
 * Normalises and encodes a password: Unicode NFC, then UTF-8, so that the same password typed on
 * different systems derives the same key.
 *
 * @param password The password text.
 * @returns Its bytes.
 */
export function passwordBytes(password: string): Uint8Array<ArrayBuffer> {
  return utf8(password.normalize("NFC"));
}

/**
 * Seals the root key under a password-derived key.
 *
 * @param root The root key.
 * @param password The password.
 * @param salt The slot's salt.
 * @param iterations PBKDF2 iterations.
 * @param vaultId The vault id (bound as associated data).
 * @param slotId The slot id (bound as associated data).
 * @returns The wrapped root key.
 */
export async function wrapRootWithPassword(
  root: Uint8Array<ArrayBuffer>,
  password: string,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  const kek = await passwordKek(password, salt, iterations);
  try {
    return await seal(kek, root, associatedData("password-slot", vaultId, slotId));
  } finally {
    kek.fill(0); // needed only for this one seal
  }
}

/**
 * Recovers the root key from a password slot.
 *
 * @returns The root key.
 * @throws {import("./primitives.ts").AuthenticationFailure} On a wrong password or altered slot.
 */
export async function unwrapRootWithPassword(
  wrapped: Uint8Array<ArrayBuffer>,
  password: string,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  const kek = await passwordKek(password, salt, iterations);
  let root: Uint8Array<ArrayBuffer>;
  try {
    root = await open(kek, wrapped, associatedData("password-slot", vaultId, slotId));
  } finally {
    kek.fill(0); // needed only for this one open
  }
  if (root.length !== KEY_BYTES) {
    root.fill(0);
    throw new RangeError("Root key has the wrong length");
  }
  return root;
}

/** The password slot's key; the password's bytes are zeroed once PBKDF2 has them. */
async function passwordKek(
  password: string,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const bytes = passwordBytes(password);
  try {
    return await pbkdf2Sha256(bytes, salt, iterations);
  } finally {
    bytes.fill(0);
  }
}

/** Seals a record's data key under the wrap key. */
export function wrapDataKey(
  wrapKey: Uint8Array<ArrayBuffer>,
  dataKey: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  recordId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return seal(wrapKey, dataKey, associatedData("record-key", vaultId, recordId));
}

/** Opens a record's data key; throws AuthenticationFailure if anything differs. */
export function unwrapDataKey(
  wrapKey: Uint8Array<ArrayBuffer>,
  wrapped: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  recordId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return open(wrapKey, wrapped, associatedData("record-key", vaultId, recordId));
}

/**
 * Seals a record's plaintext JSON under its data key. The record's kind is part of the associated
 * data, so a sealed secret never opens as a profile, nor the reverse.
 */
export function sealRecord(
  dataKey: Uint8Array<ArrayBuffer>,
  plaintext: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  recordId: Uint8Array<ArrayBuffer>,
  kind: RecordKind = "profile",
): Promise<Uint8Array<ArrayBuffer>> {
  return seal(dataKey, plaintext, associatedData("record", vaultId, recordId, utf8(kind)));
}

/** Opens a record of a kind; throws AuthenticationFailure if anything differs. */
export function openRecord(
  dataKey: Uint8Array<ArrayBuffer>,
  sealed: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  recordId: Uint8Array<ArrayBuffer>,
  kind: RecordKind = "profile",
): Promise<Uint8Array<ArrayBuffer>> {
  return open(dataKey, sealed, associatedData("record", vaultId, recordId, utf8(kind)));
}

/** Seals the meta blob. */
export function sealMeta(
  metaKey: Uint8Array<ArrayBuffer>,
  plaintext: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return seal(metaKey, plaintext, associatedData("meta", vaultId));
}

/** The associated data of a format-4 index line: the vault id and the generation it is for. */
function indexAad(vaultId: Uint8Array, generation: number): Uint8Array<ArrayBuffer> {
  const g = new Uint8Array(8);
  new DataView(g.buffer).setBigUint64(0, BigInt(generation));
  return labelled(LABEL_V4, "profile-index", [vaultId, g]);
}

/** Seals the format-4 profile index line under the meta key, bound to its generation. */
export function sealIndex(
  metaKey: Uint8Array<ArrayBuffer>,
  plaintext: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  generation: number,
): Promise<Uint8Array<ArrayBuffer>> {
  return seal(metaKey, plaintext, indexAad(vaultId, generation));
}

/** Opens a format-4 profile index line; throws AuthenticationFailure if anything differs. */
export function openIndex(
  metaKey: Uint8Array<ArrayBuffer>,
  sealed: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  generation: number,
): Promise<Uint8Array<ArrayBuffer>> {
  return open(metaKey, sealed, indexAad(vaultId, generation));
}

/** Opens the meta blob; throws AuthenticationFailure if anything differs. */
export function openMeta(
  metaKey: Uint8Array<ArrayBuffer>,
  sealed: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return open(metaKey, sealed, associatedData("meta", vaultId));
}

/**
 * Computes the body MAC: HMAC-SHA256 under the mac key over the body's exact bytes.
 *
 * @param macKey The derived mac key.
 * @param bodyBytes The body line.
 * @returns The 32-byte tag.
 */
export function macBody(
  macKey: Uint8Array<ArrayBuffer>,
  bodyBytes: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return hmacSha256(macKey, bodyBytes);
}

/**
 * The associated data of a PKCS#11 slot's on-token AES-GCM: binds the ciphertext to this vault,
 * this slot and the labels that name the token and its key (docs/FORMAT.md, "PKCS#11 slot").
 *
 * @param vaultId The vault id.
 * @param slotId The slot id.
 * @param token The token label.
 * @param key The key label.
 * @returns The associated data.
 */
export function pkcs11SlotAad(
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
  token: string,
  key: string,
): Uint8Array<ArrayBuffer> {
  return associatedDataV2("pkcs11-slot", vaultId, slotId, utf8(token), utf8(key));
}
