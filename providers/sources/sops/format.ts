/**
 * Reading SOPS's JSON file format in-process: the data key unwrapped from the age recipients'
 * stanzas (`sops.age[].enc`, armored age files holding the 32-byte key), each value
 * `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]` opened with the key path (`a:b:`) as
 * additional data, and the file MAC (SHA-512 over every value in document order, upper-case
 * hex, itself sealed with `lastmodified` as additional data) checked before any value is used.
 *
 * Only what SOPS writes by default is taken in-process: one key group, the
 * `unencrypted_suffix`/`encrypted_suffix` rules, age recipients. Files using regex rules,
 * `mac_only_encrypted`, Shamir key groups or other key kinds go to the `sops` program.
 *
 * @module
 */

import { gcm } from "@noble/ciphers/aes.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { armor, Decrypter } from "age-encryption";

/** Why a file cannot be opened in-process (the caller maps it to a source status). */
export class SopsError extends Error {
  /**
   * @param kind `unsupported` (hand to the sops program), `no_identity`, `tampered`, `malformed`.
   * @param message A short non-secret description.
   */
  constructor(
    readonly kind: "unsupported" | "no_identity" | "tampered" | "malformed",
    message: string,
  ) {
    super(message);
  }
}

const ENC =
  /^ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:([a-z0-9]+)\]$/;

function b64(s: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw new SopsError("malformed", "a value's base64 is invalid");
  }
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Opens one `ENC[...]` value; throws `tampered` when the tag does not match. */
function open(value: string, key: Uint8Array, aad: string): Uint8Array {
  const m = ENC.exec(value);
  if (!m) throw new SopsError("malformed", "a value is not in SOPS's ENC[AES256_GCM,...] form");
  const [data, iv, tag] = [b64(m[1]!), b64(m[2]!), b64(m[3]!)];
  if (tag.length !== 16 || iv.length === 0) throw new SopsError("malformed", "bad iv or tag");
  const sealed = new Uint8Array(data.length + 16);
  sealed.set(data);
  sealed.set(tag, data.length);
  try {
    return gcm(key, iv, new TextEncoder().encode(aad)).decrypt(sealed);
  } catch {
    throw new SopsError("tampered", "a value fails its authentication tag");
  }
}

/** The bytes SOPS hashes for a value left in clear (its ToBytes). */
function clearBytes(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  throw new SopsError("unsupported", "a clear value of a type SOPS does not hash");
}

interface Meta {
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
}

function encrypted(path: readonly string[], meta: Meta): boolean {
  if (meta.encryptedSuffix) return path.some((p) => p.endsWith(meta.encryptedSuffix!));
  const suffix = meta.unencryptedSuffix ?? "_unencrypted";
  return !path.some((p) => p.endsWith(suffix));
}

/**
 * Walks the tree as SOPS does (object keys in order, list items under their parent's path),
 * opening encrypted values, feeding the MAC, and returning the tree in clear.
 */
function walk(
  node: unknown,
  path: string[],
  key: Uint8Array,
  meta: Meta,
  hash: ReturnType<typeof sha512.create>,
): unknown {
  if (Array.isArray(node)) return node.map((n) => walk(n, path, key, meta, hash));
  if (node && typeof node === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (path.length === 0 && k === "sops") continue;
      out[k] = walk(v, [...path, k], key, meta, hash);
    }
    return out;
  }
  if (node === null) return null;
  if (encrypted(path, meta)) {
    if (node === "") return ""; // SOPS leaves empty strings as they are
    if (typeof node !== "string") throw new SopsError("tampered", "a value is not encrypted");
    const plain = open(node, key, `${path.join(":")}:`);
    hash.update(plain);
    return new TextDecoder().decode(plain);
  }
  hash.update(new TextEncoder().encode(clearBytes(node)));
  return node;
}

/** Checks the metadata is the kind handled in-process; returns its suffix rules. */
function metaOf(sops: Record<string, unknown>): Meta {
  for (
    const k of [
      "encrypted_regex",
      "unencrypted_regex",
      "encrypted_comment_regex",
      "unencrypted_comment_regex",
      "key_groups",
      "shamir_threshold",
    ]
  ) {
    if (sops[k] !== undefined && sops[k] !== null && sops[k] !== "" && sops[k] !== 0) {
      throw new SopsError("unsupported", `${k} is handled by the sops program`);
    }
  }
  if (sops.mac_only_encrypted === true) {
    throw new SopsError("unsupported", "mac_only_encrypted is handled by the sops program");
  }
  const meta: Meta = {};
  if (typeof sops.unencrypted_suffix === "string") meta.unencryptedSuffix = sops.unencrypted_suffix;
  if (typeof sops.encrypted_suffix === "string") meta.encryptedSuffix = sops.encrypted_suffix;
  return meta;
}

/** Unwraps the data key with the first age stanza one of the identities opens. */
async function dataKey(sops: Record<string, unknown>, identities: readonly string[]) {
  const recipients = Array.isArray(sops.age) ? sops.age : [];
  if (recipients.length === 0) throw new SopsError("unsupported", "no age recipient in the file");
  if (identities.length === 0) throw new SopsError("no_identity", "no age identity found");
  const d = new Decrypter();
  for (const id of identities) d.addIdentity(id);
  for (const r of recipients) {
    const enc = (r as { enc?: unknown })?.enc;
    if (typeof enc !== "string") continue;
    try {
      const key = await d.decrypt(armor.decode(enc), "uint8array");
      if (key.length === 32) return key;
    } catch {
      // Not for these identities (or damaged): try the next stanza.
    }
  }
  throw new SopsError("no_identity", "no age identity opens the file's data key");
}

/**
 * Decrypts a SOPS JSON document and verifies its MAC before returning anything.
 *
 * @param doc The parsed file.
 * @param identities Age identities (`AGE-SECRET-KEY-1...`).
 * @returns The tree in clear, without the `sops` metadata.
 * @throws {SopsError} `unsupported`, `no_identity`, `tampered` (value or MAC), `malformed`.
 */
export async function decryptSopsJson(
  doc: unknown,
  identities: readonly string[],
): Promise<Record<string, unknown>> {
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) {
    throw new SopsError("malformed", "not a SOPS document");
  }
  const sops = (doc as Record<string, unknown>).sops;
  if (!sops || typeof sops !== "object") throw new SopsError("malformed", "no sops metadata");
  const s = sops as Record<string, unknown>;
  const meta = metaOf(s);
  if (typeof s.mac !== "string" || typeof s.lastmodified !== "string") {
    throw new SopsError("tampered", "the file has no MAC");
  }
  const key = await dataKey(s, identities);
  const hash = sha512.create();
  const tree = walk(doc, [], key, meta, hash) as Record<string, unknown>;
  const want = new TextDecoder().decode(open(s.mac, key, s.lastmodified));
  const got = Array.from(hash.digest(), (b) => b.toString(16).padStart(2, "0")).join("")
    .toUpperCase();
  let diff = want.length ^ got.length;
  for (let i = 0; i < got.length; i++) diff |= got.charCodeAt(i) ^ want.charCodeAt(i);
  if (diff !== 0) throw new SopsError("tampered", "the file MAC does not match its values");
  return tree;
}
