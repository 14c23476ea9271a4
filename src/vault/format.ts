/**
 * Parsing and serialising the vault file. No cryptography and no I/O here: this module only
 * turns bytes into a checked structure and back. docs/FORMAT.md is the normative description.
 *
 * The file is two lines of UTF-8:
 *
 * ```text
 * <body: one line of JSON>\n
 * <seal: {"sha256":"<b64u>","mac":"<b64u>"}>\n
 * ```
 *
 * The seal covers the body's exact bytes, so readers never re-serialise before checking.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "./encoding.ts";

/** Bytes in an Ed25519 signature (the seal's `sig`). */
export const SIGNATURE_BYTES = 64;

/** The `format` value every vault body carries. */
export const FORMAT_NAME = "hecate-vault";
/** The body format version this build writes. */
export const FORMAT_VERSION = 2;
/** The body format versions this build reads (version 1 files are upgraded on their next write). */
export const READABLE_VERSIONS: readonly number[] = [1, 2];
/** Largest vault file accepted, to bound work on hostile input. */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
/**
 * Largest PBKDF2 iteration count accepted from a file, to bound work on hostile input: about a
 * second and a half here, over six times the cost `init` calibrates to.
 */
export const MAX_PBKDF2_ITERATIONS = 10_000_000;
/** Smallest PBKDF2 iteration count accepted from a file. */
export const MIN_PBKDF2_ITERATIONS = 1_000;

/** PBKDF2 parameters of a password slot. */
export interface Pbkdf2Params {
  alg: "pbkdf2-sha256";
  iterations: number;
  salt: Uint8Array<ArrayBuffer>;
}

/** A key slot: a way to recover the root key (password) or some data keys (API key). */
export interface PasswordSlot {
  id: Uint8Array<ArrayBuffer>;
  kind: "password";
  kdf: Pbkdf2Params;
  /** Root key sealed under the password-derived key. */
  wrapped: Uint8Array<ArrayBuffer>;
}

/**
 * An API-key slot (format 2): wraps only the data keys of the profiles in its scope, sealed to an
 * X25519 key pair derived from the key's secret.
 */
export interface ApiKeySlot {
  id: Uint8Array<ArrayBuffer>;
  kind: "apikey";
  /** The ephemeral X25519 public key of this sealing. */
  epk: Uint8Array<ArrayBuffer>;
  /** Scope payload (record ids, names, data keys, the writer's verifying key), sealed. */
  wrapped: Uint8Array<ArrayBuffer>;
}

/**
 * A format-1 API-key slot: the payload sealed under an HKDF slot key that the vault meta also
 * keeps. Read for compatibility; `rotate` refuses to carry one over (docs/FORMAT.md).
 */
export interface LegacyApiKeySlot {
  id: Uint8Array<ArrayBuffer>;
  kind: "apikey-legacy";
  /** HKDF salt for this slot. */
  salt: Uint8Array<ArrayBuffer>;
  /** Scope payload sealed under the key-derived slot key. */
  wrapped: Uint8Array<ArrayBuffer>;
}

/** Any key slot. */
export type Slot = PasswordSlot | ApiKeySlot | LegacyApiKeySlot;

/** One encrypted record. */
export interface RecordEntry {
  id: Uint8Array<ArrayBuffer>;
  kind: "profile";
  /** The record's data key sealed under the root wrapping key. */
  key: Uint8Array<ArrayBuffer>;
  /** The record's JSON sealed under its data key. */
  data: Uint8Array<ArrayBuffer>;
}

/** The vault body: everything in the file except the seal. */
export interface VaultBody {
  /** The format version the body was read in (always {@link FORMAT_VERSION} when written). */
  version: number;
  vaultId: Uint8Array<ArrayBuffer>;
  generation: number;
  slots: Slot[];
  records: RecordEntry[];
  /** Vault-level secrets (JSON) sealed under the meta key. */
  meta: Uint8Array<ArrayBuffer>;
}

/** The seal line. */
export interface Seal {
  sha256: Uint8Array<ArrayBuffer>;
  mac: Uint8Array<ArrayBuffer>;
  /** The writer's Ed25519 signature (format 2; absent in format 1). */
  sig?: Uint8Array<ArrayBuffer>;
}

/** A parsed file: the body, its exact bytes (what the seal covers) and the seal. */
export interface ParsedVaultFile {
  body: VaultBody;
  bodyBytes: Uint8Array<ArrayBuffer>;
  seal: Seal;
}

function damaged(what: string): HecateError {
  return new HecateError("vault_integrity", `Vault file is damaged: ${what}`, {
    hint:
      "copy the newest good file from generations/ over vault.hecate, or 'hecate backup restore'",
  });
}

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw damaged(`${what} is not an object`);
  }
  return v as Json;
}

function bytes(v: unknown, what: string, len?: number): Uint8Array<ArrayBuffer> {
  if (typeof v !== "string") throw damaged(`${what} is not a string`);
  let out: Uint8Array<ArrayBuffer>;
  try {
    out = fromBase64Url(v);
  } catch {
    throw damaged(`${what} is not base64url`);
  }
  if (len !== undefined && out.length !== len) throw damaged(`${what} has the wrong length`);
  return out;
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw damaged(`${what} is out of range`);
  }
  return v;
}

function exactKeys(o: Json, keys: string[], what: string): void {
  // As many members as wanted, and each wanted one present: the same set (no sorting per record).
  if (Object.keys(o).length !== keys.length || keys.some((k) => !Object.hasOwn(o, k))) {
    throw damaged(`${what} has unexpected fields`);
  }
}

function parseLegacyApiKeySlot(o: Json, i: number): LegacyApiKeySlot {
  exactKeys(o, ["id", "kind", "salt", "wrapped"], `slot ${i}`);
  return {
    id: bytes(o.id, `slot ${i} id`, 8),
    kind: "apikey-legacy",
    salt: bytes(o.salt, `slot ${i} salt`, 16),
    wrapped: bytes(o.wrapped, `slot ${i} wrapped keys`),
  };
}

function parseSlot(v: unknown, i: number, version: number): Slot {
  const o = obj(v, `slot ${i}`);
  if (o.kind === "password") {
    exactKeys(o, ["id", "kind", "kdf", "wrapped"], `slot ${i}`);
    const k = obj(o.kdf, `slot ${i} kdf`);
    exactKeys(k, ["alg", "iterations", "salt"], `slot ${i} kdf`);
    if (k.alg !== "pbkdf2-sha256") throw damaged(`slot ${i} uses an unknown KDF`);
    return {
      id: bytes(o.id, `slot ${i} id`, 8),
      kind: "password",
      kdf: {
        alg: "pbkdf2-sha256",
        iterations: int(
          k.iterations,
          `slot ${i} iterations`,
          MIN_PBKDF2_ITERATIONS,
          MAX_PBKDF2_ITERATIONS,
        ),
        salt: bytes(k.salt, `slot ${i} salt`, 16),
      },
      wrapped: bytes(o.wrapped, `slot ${i} wrapped key`),
    };
  }
  // Format 1 called its (HKDF) API-key slots "apikey"; format 2 names them "apikey-legacy".
  if (version === 1 ? o.kind === "apikey" : o.kind === "apikey-legacy") {
    return parseLegacyApiKeySlot(o, i);
  }
  if (version >= 2 && o.kind === "apikey") {
    exactKeys(o, ["id", "kind", "epk", "wrapped"], `slot ${i}`);
    return {
      id: bytes(o.id, `slot ${i} id`, 8),
      kind: "apikey",
      epk: bytes(o.epk, `slot ${i} ephemeral key`, 32),
      wrapped: bytes(o.wrapped, `slot ${i} wrapped keys`),
    };
  }
  throw damaged(`slot ${i} has an unknown kind`);
}

/**
 * A record read from a file. `key` and `data` are decoded when first read: a reader that opens a
 * few records of many (docs/FORMAT.md, "Reading" step 5) does not decode the others, and a writer
 * writes an unchanged record back as the text it was read as. A bad spelling is still "damaged",
 * when it is read; the MAC (or the writer's signature) has covered these bytes before then.
 */
class ParsedRecord implements RecordEntry {
  readonly id: Uint8Array<ArrayBuffer>;
  readonly kind = "profile" as const;
  /** The base64url texts as read. */
  readonly idText: string;
  readonly keyText: string;
  readonly dataText: string;
  #key: Uint8Array<ArrayBuffer> | undefined;
  #data: Uint8Array<ArrayBuffer> | undefined;
  readonly #i: number;

  constructor(
    id: Uint8Array<ArrayBuffer>,
    idText: string,
    keyText: string,
    dataText: string,
    i: number,
  ) {
    this.id = id;
    this.idText = idText;
    this.keyText = keyText;
    this.dataText = dataText;
    this.#i = i;
  }

  get key(): Uint8Array<ArrayBuffer> {
    return this.#key ??= bytes(this.keyText, `record ${this.#i} key`);
  }

  get data(): Uint8Array<ArrayBuffer> {
    return this.#data ??= bytes(this.dataText, `record ${this.#i} data`);
  }
}

function parseRecord(v: unknown, i: number): RecordEntry {
  const o = obj(v, `record ${i}`);
  exactKeys(o, ["id", "kind", "key", "data"], `record ${i}`);
  if (o.kind !== "profile") throw damaged(`record ${i} has an unknown kind`);
  const id = bytes(o.id, `record ${i} id`, 16);
  if (typeof o.key !== "string") throw damaged(`record ${i} key is not a string`);
  if (typeof o.data !== "string") throw damaged(`record ${i} data is not a string`);
  return new ParsedRecord(id, o.id as string, o.key, o.data, i);
}

/**
 * A record id in base64url, without encoding it again when it was read from a file.
 *
 * @param r The record.
 * @returns The id text.
 */
export function recordIdText(r: RecordEntry): string {
  return r instanceof ParsedRecord ? r.idText : toBase64Url(r.id);
}

/** The two lines of a vault file, before the body is interpreted. */
export interface SplitVaultFile {
  bodyBytes: Uint8Array<ArrayBuffer>;
  seal: Seal;
}

/**
 * Splits a vault file into its body bytes and parsed seal, so the checksum can be checked before
 * anything in the body (even its version) is believed.
 *
 * @param file The whole file.
 * @returns Body bytes and seal.
 * @throws {HecateError} `vault_integrity` when the layout or the seal is malformed.
 */
export function splitVaultFile(file: Uint8Array<ArrayBuffer>): SplitVaultFile {
  if (file.length > MAX_FILE_BYTES) throw damaged("file is too large");
  const nl = file.indexOf(0x0a);
  if (nl < 0 || file.length < nl + 2 || file[file.length - 1] !== 0x0a) {
    throw damaged("missing seal line");
  }
  const bodyBytes = file.slice(0, nl);
  const sealBytes = file.subarray(nl + 1, file.length - 1);
  if (sealBytes.includes(0x0a)) throw damaged("extra lines");
  let sealJson: unknown;
  try {
    sealJson = JSON.parse(fromUtf8(sealBytes));
  } catch {
    throw damaged("seal line is not valid JSON");
  }
  const s = obj(sealJson, "seal");
  const signed = "sig" in s;
  exactKeys(s, signed ? ["sha256", "mac", "sig"] : ["sha256", "mac"], "seal");
  const seal: Seal = {
    sha256: bytes(s.sha256, "seal checksum", 32),
    mac: bytes(s.mac, "seal MAC", 32),
  };
  if (signed) seal.sig = bytes(s.sig, "seal signature", SIGNATURE_BYTES);
  return { bodyBytes, seal };
}

/**
 * Parses and checks the body line.
 *
 * @param bodyBytes The body line without its newline.
 * @returns The body.
 * @throws {HecateError} `vault_integrity` for anything malformed, `unsupported_version` for a
 * well-formed body of another format version.
 */
export function parseBody(bodyBytes: Uint8Array<ArrayBuffer>): VaultBody {
  let bodyJson: unknown;
  try {
    bodyJson = JSON.parse(fromUtf8(bodyBytes));
  } catch {
    throw damaged("body is not valid JSON");
  }
  const b = obj(bodyJson, "body");
  if (b.format !== FORMAT_NAME) throw damaged("not a Hecate vault");
  const version = b.version;
  if (typeof version !== "number" || !READABLE_VERSIONS.includes(version)) {
    if (typeof version === "number" && Number.isSafeInteger(version) && version > 0) {
      throw new HecateError(
        "unsupported_version",
        `Vault format version ${version} is not supported by this build (it reads versions ${
          READABLE_VERSIONS.join(" and ")
        })`,
        { hint: "upgrade Hecate to open this vault" },
      );
    }
    throw damaged("version field is invalid");
  }
  exactKeys(b, ["format", "version", "vault_id", "generation", "slots", "records", "meta"], "body");
  if (!Array.isArray(b.slots) || !Array.isArray(b.records)) throw damaged("slot or record list");
  return {
    version,
    vaultId: bytes(b.vault_id, "vault id", 16),
    generation: int(b.generation, "generation", 0, Number.MAX_SAFE_INTEGER),
    slots: b.slots.map((slot, i) => parseSlot(slot, i, version)),
    records: b.records.map(parseRecord),
    meta: bytes(b.meta, "meta"),
  };
}

/**
 * Parses vault file bytes into a checked structure. Does not verify the checksum or the MAC.
 *
 * @param file The whole file.
 * @returns The body, its exact bytes, and the seal.
 * @throws {HecateError} As {@link splitVaultFile} and {@link parseBody}.
 */
export function parseVaultFile(file: Uint8Array<ArrayBuffer>): ParsedVaultFile {
  const split = splitVaultFile(file);
  return withBody(split, parseBody(split.bodyBytes));
}

/**
 * Pairs a split file with its parsed body, checking that the seal has the shape of the body's
 * version: a format-2 body must carry the writer's signature, a format-1 body must not.
 *
 * @param split The split file.
 * @param body Its parsed body.
 * @returns The parsed file.
 * @throws {HecateError} `vault_integrity` when the seal does not fit the version.
 */
export function withBody(split: SplitVaultFile, body: VaultBody): ParsedVaultFile {
  if ((body.version >= 2) !== (split.seal.sig !== undefined)) {
    throw damaged(body.version >= 2 ? "the seal has no signature" : "unexpected signature");
  }
  return { ...split, body };
}

function slotJson(s: Slot): Json {
  if (s.kind === "password") {
    return {
      id: toBase64Url(s.id),
      kind: s.kind,
      kdf: { alg: s.kdf.alg, iterations: s.kdf.iterations, salt: toBase64Url(s.kdf.salt) },
      wrapped: toBase64Url(s.wrapped),
    };
  }
  if (s.kind === "apikey") {
    return {
      id: toBase64Url(s.id),
      kind: s.kind,
      epk: toBase64Url(s.epk),
      wrapped: toBase64Url(s.wrapped),
    };
  }
  return {
    id: toBase64Url(s.id),
    kind: s.kind,
    salt: toBase64Url(s.salt),
    wrapped: toBase64Url(s.wrapped),
  };
}

/**
 * Serialises a body to the exact bytes that the seal will cover.
 *
 * @param body The body.
 * @returns One line of JSON, without the newline.
 */
export function serializeBody(body: VaultBody): Uint8Array<ArrayBuffer> {
  return utf8(JSON.stringify({
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    vault_id: toBase64Url(body.vaultId),
    generation: body.generation,
    slots: body.slots.map(slotJson),
    records: body.records.map((r) => {
      // A record read from a file and not changed is written back as the text it was read as.
      const read = r instanceof ParsedRecord;
      return {
        id: read ? r.idText : toBase64Url(r.id),
        kind: r.kind,
        key: read ? r.keyText : toBase64Url(r.key),
        data: read ? r.dataText : toBase64Url(r.data),
      };
    }),
    meta: toBase64Url(body.meta),
  }));
}

/**
 * Joins body bytes and a seal into the file layout.
 *
 * @param bodyBytes What {@link serializeBody} returned.
 * @param seal The seal over those bytes.
 * @returns The whole file.
 */
export function assembleFile(bodyBytes: Uint8Array, seal: Seal): Uint8Array<ArrayBuffer> {
  const sealLine = utf8(
    JSON.stringify({
      sha256: toBase64Url(seal.sha256),
      mac: toBase64Url(seal.mac),
      ...(seal.sig ? { sig: toBase64Url(seal.sig) } : {}),
    }) + "\n",
  );
  const out = new Uint8Array(bodyBytes.length + 1 + sealLine.length);
  out.set(bodyBytes, 0);
  out[bodyBytes.length] = 0x0a;
  out.set(sealLine, bodyBytes.length + 1);
  return out;
}
