/**
 * Parsing and serialising the vault file. No cryptography and no I/O here: this module only
 * turns bytes into a checked structure and back. docs/FORMAT.md is the normative description.
 *
 * A format-3 file is lines of UTF-8 (formats 1 and 2 have only the first two, the body holding
 * the records):
 *
 * ```text
 * <header: one line of JSON, with the record table (id, size, SHA-256 of each record line)>\n
 * <seal: {"sha256":"<b64u>","mac":"<b64u>","sig":"<b64u>"}>\n
 * <record line 1: one record's JSON>\n
 * ...
 * ```
 *
 * The seal covers the header's exact bytes, so readers never re-serialise before checking; a
 * record line is covered through its SHA-256 in the header's table, checked before the line is
 * parsed, and only when the record is read.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { sha256 } from "../sha256.ts";
import { fromBase64Url, fromUtf8, timingSafeEqual, toBase64Url, utf8 } from "./encoding.ts";

/** Bytes in an Ed25519 signature (the seal's `sig`). */
export const SIGNATURE_BYTES = 64;

/** The `format` value every vault body carries. */
export const FORMAT_NAME = "hecate-vault";
/** The format version this build writes. */
export const FORMAT_VERSION = 5;
/** The format versions this build reads (older files are upgraded on their next write). */
export const READABLE_VERSIONS: readonly number[] = [1, 2, 3, 4, 5];

/**
 * Whether a header's version has format 4's layout: a binary record table and an index line after
 * the seal line (versions 4 and 5; version 5 changes only the index line's plaintext).
 *
 * @param version The header's `version` member, unchecked.
 * @returns True for versions 4 and 5.
 */
export function hasIndexLine(version: unknown): boolean {
  return version === 4 || version === 5;
}
/** Bytes in a record name tag (format 4): a truncated HMAC-SHA256 of the record kind and name. */
export const NAME_TAG_BYTES = 16;
/** Bytes in one format-4 record table entry: id (16), line size (4), SHA-256 (32), name tag. */
export const TABLE_ENTRY_BYTES = 16 + 4 + 32 + NAME_TAG_BYTES;

/** Bytes per id when a table's ids are encoded together (16 padded to a multiple of 3 and 4). */
const ID_SLOT = 24;
/** Base64 characters per padded id: the first 22 are the id's own encoding. */
const ID_SLOT_CHARS = ID_SLOT / 3 * 4;
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

/**
 * A PKCS#11 slot (format 3): the root key encrypted with AES-256-GCM by a key that never leaves a
 * hardware token (docs/FORMAT.md, "PKCS#11 slot").
 */
export interface Pkcs11Slot {
  id: Uint8Array<ArrayBuffer>;
  kind: "pkcs11";
  /** The token's label (`CKA_LABEL` of `CK_TOKEN_INFO`), 1-32 bytes of UTF-8. */
  token: string;
  /** The label of the AES key on the token, 1-64 bytes of UTF-8. */
  key: string;
  /** The 12-byte GCM IV the token used. */
  iv: Uint8Array<ArrayBuffer>;
  /** The root key encrypted on the token, with its 16-byte tag. */
  wrapped: Uint8Array<ArrayBuffer>;
}

/**
 * An age slot (a teammate's X25519 identity): a random slot key encrypted to an `age1...`
 * recipient as an age file, and the root key sealed under that slot key, bound to the vault id
 * and the slot id (docs/FORMAT.md, "Age slot").
 */
export interface AgeSlot {
  id: Uint8Array<ArrayBuffer>;
  kind: "age";
  /** The `age1...` recipient (public), so a reader picks its slot without trying each one. */
  recipient: string;
  /** An age v1 file (binary) whose plaintext is the 32-byte slot key. */
  age: Uint8Array<ArrayBuffer>;
  /** Root key sealed under the slot key. */
  wrapped: Uint8Array<ArrayBuffer>;
}

/** Any key slot. */
export type Slot = PasswordSlot | ApiKeySlot | LegacyApiKeySlot | AgeSlot | Pkcs11Slot;

/** An X25519 age recipient: `age1` and 58 Bech32 characters (the checksum is checked on use). */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
/** Largest age file accepted in an age slot (one X25519 stanza and 32 bytes need about 250). */
const MAX_AGE_SLOT_BYTES = 4096;

/**
 * What a record holds: a connection profile, or a stored secret (`hecate secret`; formats 3 and 4).
 */
export type RecordKind = "profile" | "secret";

/** Bytes of a PKCS#11 slot's `wrapped`: a 32-byte root key and a 16-byte GCM tag. */
export const PKCS11_WRAPPED_BYTES = 48;

/**
 * Whether a label can name a PKCS#11 token (`max` 32) or key (`max` 64): 1 to `max` bytes of
 * UTF-8, no control characters, no leading or trailing space (the token pads its label with them).
 *
 * @param label The label.
 * @param max The most bytes allowed.
 * @returns Whether it is acceptable.
 */
export function validPkcs11Label(label: string, max: number): boolean {
  const size = utf8(label).length;
  // deno-lint-ignore no-control-regex
  return size >= 1 && size <= max && !/[\u0000-\u001f\u007f]/.test(label) &&
    label.trim() === label;
}

/** One encrypted record. */
export interface RecordEntry {
  id: Uint8Array<ArrayBuffer>;
  kind: RecordKind;
  /** The record's data key sealed under the root wrapping key. */
  key: Uint8Array<ArrayBuffer>;
  /** The record's JSON sealed under its data key. */
  data: Uint8Array<ArrayBuffer>;
  /**
   * Format 4: the keyed tag of the profile's name in the record table (docs/FORMAT.md, "Record
   * table"); required when writing, present when read from a format-4 file.
   */
  nameTag?: Uint8Array | undefined;
}

/**
 * The sealed profile index (format 4): its own line, authenticated through its SHA-256 in the
 * header. As read, `bytes` is checked against `sha256` only when it is opened.
 */
export interface IndexLine {
  /** The sealed index as stored. */
  bytes: Uint8Array<ArrayBuffer>;
  /** Its SHA-256 as the header states it (read); unused when writing. */
  sha256?: Uint8Array<ArrayBuffer>;
}

/**
 * The vault body: everything in the file except the seal (in format 3, the header and the record
 * lines it lists).
 */
export interface VaultBody {
  /** The format version the body was read in (always {@link FORMAT_VERSION} when written). */
  version: number;
  vaultId: Uint8Array<ArrayBuffer>;
  generation: number;
  slots: Slot[];
  records: RecordEntry[];
  /** Vault-level secrets (JSON) sealed under the meta key. */
  meta: Uint8Array<ArrayBuffer>;
  /** Format 4: the sealed profile index line (required when writing). */
  indexLine?: IndexLine;
  /** Formats 3 and 4, as read: the lines after the seal line (table, index, record lines). */
  region?: RecordLines | undefined;
}

/** The seal line. */
export interface Seal {
  sha256: Uint8Array<ArrayBuffer>;
  mac: Uint8Array<ArrayBuffer>;
  /** The writer's Ed25519 signature (format 2; absent in format 1). */
  sig?: Uint8Array<ArrayBuffer>;
}

/**
 * A parsed file: the body, the exact bytes the seal covers (the body line of formats 1 and 2, the
 * header line of format 3) and the seal.
 */
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

function parsePkcs11Slot(o: Json, i: number): Pkcs11Slot {
  exactKeys(o, ["id", "kind", "token", "key", "iv", "wrapped"], `slot ${i}`);
  if (typeof o.token !== "string" || !validPkcs11Label(o.token, 32)) {
    throw damaged(`slot ${i} token label is invalid`);
  }
  if (typeof o.key !== "string" || !validPkcs11Label(o.key, 64)) {
    throw damaged(`slot ${i} key label is invalid`);
  }
  return {
    id: bytes(o.id, `slot ${i} id`, 8),
    kind: "pkcs11",
    token: o.token,
    key: o.key,
    iv: bytes(o.iv, `slot ${i} iv`, 12),
    wrapped: bytes(o.wrapped, `slot ${i} wrapped key`, PKCS11_WRAPPED_BYTES),
  };
}

function parseSlot(v: unknown, i: number, version: number): Slot {
  const o = obj(v, `slot ${i}`);
  if (version >= 3 && o.kind === "pkcs11") return parsePkcs11Slot(o, i);
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
  if (version >= 3 && o.kind === "age") return parseAgeSlot(o, i);
  throw damaged(`slot ${i} has an unknown kind`);
}

function parseAgeSlot(o: Json, i: number): AgeSlot {
  exactKeys(o, ["id", "kind", "recipient", "age", "wrapped"], `slot ${i}`);
  if (typeof o.recipient !== "string" || !AGE_RECIPIENT.test(o.recipient)) {
    throw damaged(`slot ${i} recipient is not an age X25519 recipient`);
  }
  const age = bytes(o.age, `slot ${i} age file`);
  if (age.length > MAX_AGE_SLOT_BYTES) throw damaged(`slot ${i} age file is too large`);
  return {
    id: bytes(o.id, `slot ${i} id`, 8),
    kind: "age",
    recipient: o.recipient,
    age,
    wrapped: bytes(o.wrapped, `slot ${i} wrapped key`),
  };
}

function tampered(what: string): HecateError {
  return new HecateError("vault_integrity", `Vault failed authentication: ${what}`, {
    hint: "the file was altered or damaged; restore a previous generation or a backup",
  });
}

/**
 * The record lines of a format-3 file as read: every byte after the seal line, and the SHA-256
 * of all of them that the header carries (`lines_sha256`). Readers check a line against its own
 * hash when they read it; a writer checks the whole region once before it carries any line
 * forward unread, so damage is never copied into the next file (and from there, as the kept
 * generations rotate, over every good copy).
 */
export class RecordLines {
  /** The bytes after the seal line. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Their SHA-256 as the header states it. */
  readonly sha256: Uint8Array<ArrayBuffer>;
  /**
   * Set when the lines were not read with the header ({@link readSplitHead}): `bytes` then holds
   * only the lines loaded through {@link RecordLines.load}, zeros elsewhere.
   */
  readonly source: PositionedFile | undefined;
  /** Where the lines start in the file (partial regions only). */
  readonly fileOffset: number;
  /** Format 4: where the record lines start in `bytes` (after the table and index lines). */
  readonly linesStart: number;
  /** Format 4: the record table line and its SHA-256 from the header. */
  readonly table: { bytes: Uint8Array<ArrayBuffer>; sha256: Uint8Array<ArrayBuffer> } | undefined;
  #tableChecked = false;
  #idTexts: string[] | undefined;
  #idBlockText: string | undefined;
  #tableWords: Uint32Array | undefined;
  #loaded: Set<number> | undefined;
  #checked: Promise<void> | undefined;

  constructor(
    bytes: Uint8Array<ArrayBuffer>,
    digest: Uint8Array<ArrayBuffer>,
    partial?: { source: PositionedFile; fileOffset: number },
    v4?: {
      linesStart: number;
      table: { bytes: Uint8Array<ArrayBuffer>; sha256: Uint8Array<ArrayBuffer> };
    },
  ) {
    this.bytes = bytes;
    this.sha256 = digest;
    this.source = partial?.source;
    this.fileOffset = partial?.fileOffset ?? 0;
    this.linesStart = v4?.linesStart ?? 0;
    this.table = v4?.table;
    if (partial) this.#loaded = new Set();
  }

  /**
   * Format 4: checks the record table line against its SHA-256 in the header. Every reader does
   * this before it uses any table entry (a record's line, hash or name tag); nothing is read
   * through the table before. Formats 1 to 3: nothing to check.
   *
   * @throws {HecateError} `vault_integrity` when the table is not the one the header vouches for.
   */
  async checkTable(): Promise<void> {
    if (!this.table || this.#tableChecked) return;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", this.table.bytes));
    if (!timingSafeEqual(digest, this.table.sha256)) {
      throw tampered("the record table does not match the header (damaged or altered)");
    }
    this.#tableChecked = true;
  }

  /**
   * As {@link checkTable}, synchronously (the JavaScript SHA-256), for {@link parseVaultFile}.
   *
   * @throws {HecateError} `vault_integrity` when the table is not the one the header vouches for.
   */
  checkTableSync(): void {
    if (!this.table || this.#tableChecked) return;
    if (!timingSafeEqual(sha256(this.table.bytes), this.table.sha256)) {
      throw tampered("the record table does not match the header (damaged or altered)");
    }
    this.#tableChecked = true;
  }

  /**
   * Format 4: every record id in the table as base64url, in table order, encoded in one pass
   * (memoised): a listing or a write that needs all of them encodes 10,000 ids with one call
   * instead of one each (see {@link #idBlock}).
   *
   * @returns The ids' texts.
   */
  idTexts(): string[] {
    if (this.#idTexts) return this.#idTexts;
    const text = this.#idBlock();
    const n = text.length / ID_SLOT_CHARS;
    const out: string[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = text.slice(i * ID_SLOT_CHARS, i * ID_SLOT_CHARS + 22);
    return this.#idTexts = out;
  }

  /**
   * Format 4: whether `texts` are exactly the table's record ids in base64url, in table order,
   * compared in place in the ids' one encoding (no string made per id).
   *
   * @param texts Candidate id texts.
   * @returns True when there are as many as entries and each is its entry's id.
   */
  idTextsAre(texts: readonly string[]): boolean {
    const text = this.#idBlock();
    if (texts.length * ID_SLOT_CHARS !== text.length) return false;
    for (let i = 0; i < texts.length; i++) if (texts[i]!.length !== 22) return false;
    // Each slot's encoding is its id's 22 characters, then only zero bits: "A"s. With every text
    // 22 long, the texts joined by those "A"s (one string compare) equal the block exactly when
    // each text is its slot's id.
    const gap = "A".repeat(ID_SLOT_CHARS - 22);
    return texts.length === 0 || texts.join(gap) + gap === text;
  }

  /**
   * Format 4: the checked record table as 32-bit words in the platform's byte order (memoised;
   * the table copied once when it does not start on a 4-byte boundary), for loops that read
   * every entry's id: a word a step instead of a byte or a `DataView` call.
   *
   * @returns The words (an entry is {@link TABLE_ENTRY_BYTES} / 4 of them).
   */
  tableWords(): Uint32Array {
    if (this.#tableWords) return this.#tableWords;
    if (!this.table || !this.#tableChecked) {
      throw new Error("record table used before it was checked (RecordLines.checkTable)");
    }
    let t = this.table.bytes;
    if (t.byteOffset % 4 !== 0) t = t.slice(); // a word view needs an aligned start
    return this.#tableWords = new Uint32Array(t.buffer, t.byteOffset, t.length / 4);
  }

  /**
   * Format 4: all ids of the table encoded in one base64url call (memoised). Each id is padded to
   * {@link ID_SLOT} bytes (a multiple of 3), so entry i is the {@link ID_SLOT_CHARS} characters
   * from `ID_SLOT_CHARS * i`, of which the first 22 are exactly its unpadded encoding. The slot
   * is also a multiple of 4, so the ids are copied four bytes a step.
   */
  #idBlock(): string {
    if (this.#idBlockText !== undefined) return this.#idBlockText;
    if (!this.table || !this.#tableChecked) {
      throw new Error("record table used before it was checked (RecordLines.checkTable)");
    }
    const words = this.tableWords();
    const n = words.length * 4 / TABLE_ENTRY_BYTES;
    const padded = new Uint32Array(n * (ID_SLOT / 4));
    const stride = TABLE_ENTRY_BYTES / 4;
    for (let i = 0, from = 0, to = 0; i < n; i++, from += stride, to += ID_SLOT / 4) {
      padded[to] = words[from]!;
      padded[to + 1] = words[from + 1]!;
      padded[to + 2] = words[from + 2]!;
      padded[to + 3] = words[from + 3]!;
    }
    return this.#idBlockText = new Uint8Array(padded.buffer).toBase64({
      alphabet: "base64url",
      omitPadding: true,
    });
  }

  /**
   * Format 4: the id text of the entry at this table offset, when {@link idTexts} has run.
   *
   * @param tableAt The entry's offset in the table.
   * @returns The text, or undefined.
   */
  idTextAt(tableAt: number): string | undefined {
    return tableAt < 0 ? undefined : this.#idTexts?.[tableAt / TABLE_ENTRY_BYTES];
  }

  /** Whether the table may be used: checked (format 4), or there is none (formats 1 to 3). */
  get tableChecked(): boolean {
    return !this.table || this.#tableChecked;
  }

  /**
   * Partial regions: reads one line (and the newline that must end it) from the file into
   * `bytes`. Its content is checked against its table entry when the record is read, as for a
   * region read whole; here only that it ends where its size says.
   *
   * @param line The record's line, a view into `bytes`.
   * @throws {HecateError} `vault_integrity` when the file is shorter than the table says or the
   * line does not end with a newline.
   */
  async load(line: Uint8Array): Promise<void> {
    if (!this.source || !this.#loaded) return;
    const at = line.byteOffset - this.bytes.byteOffset;
    if (this.#loaded.has(at)) return;
    const got = await this.source.readAt(this.fileOffset + at, line.length + 1);
    if (got.length !== line.length + 1 || got[line.length] !== 0x0a) {
      throw damaged("a record line is missing or has another size than the header says");
    }
    this.bytes.set(got, at);
    this.#loaded.add(at);
  }

  /** Whether a line's bytes are present (always, unless the region is partial). */
  isLoaded(line: Uint8Array): boolean {
    return !this.#loaded || this.#loaded.has(line.byteOffset - this.bytes.byteOffset);
  }

  /**
   * Checks the region against the header's `lines_sha256` (once; later calls share the result).
   *
   * @throws {HecateError} `vault_integrity` when any record line differs from what the header's
   * writer wrote.
   */
  check(): Promise<void> {
    // A partial region was read for a read-only opening; nothing may be written from it.
    if (this.source) return Promise.reject(new Error("a partly read vault cannot be checked"));
    return this.#checked ??= (async () => {
      await this.checkTable();
      const digest = new Uint8Array(
        await crypto.subtle.digest("SHA-256", this.bytes.subarray(this.linesStart)),
      );
      if (!timingSafeEqual(digest, this.sha256)) {
        throw tampered("the record lines do not match the header (damaged or altered)");
      }
    })();
  }
}

/** What a {@link ParsedRecord} makes when first used. */
interface RecordCache {
  /** The record's kind (format 3: read from its line). */
  kind?: RecordKind | undefined;
  /** The id's base64url text as read (format 4: encoded from the table when first used). */
  idText?: string | undefined;
  /** Format 3: the line (a view on the region). */
  line?: Uint8Array | undefined;
  id?: Uint8Array<ArrayBuffer> | undefined;
  lineHash?: Uint8Array<ArrayBuffer> | undefined;
  keyText?: string | undefined;
  dataText?: string | undefined;
  key?: Uint8Array<ArrayBuffer> | undefined;
  data?: Uint8Array<ArrayBuffer> | undefined;
}

/**
 * A record read from a file. `key` and `data` are decoded when first read: a reader that opens a
 * few records of many (docs/FORMAT.md, "Reading" step 5) does not decode the others, and a writer
 * writes an unchanged record back as the text it was read as. A bad spelling is still "damaged",
 * when it is read; the MAC (or the writer's signature) has covered these bytes before then.
 *
 * A format-3 record is its own line, covered by the seal only through its SHA-256 in the header's
 * record table: the line is hashed and compared with that entry before any of it is parsed, on
 * first read, so a reader hashes only the records it opens.
 */
class ParsedRecord implements RecordEntry {
  /**
   * What is read, decoded or encoded when first used (see {@link RecordCache}), in one object
   * made then: a 10,000-record file read for one record makes 10,000 small records, not 10,000
   * records of every such field.
   */
  #c: RecordCache | undefined = undefined;
  /** Format 3: where the line starts in the region, and its size (without its newline). */
  readonly #lineAt: number;
  readonly #lineSize: number;
  /** Format 3: the line's SHA-256 as the table spells it (decoded when the line is read). */
  readonly lineHashText: string | undefined;
  /** Format 3: all record lines of the file this one came from. */
  readonly region: RecordLines | undefined;
  readonly #i: number;
  /** Format 4: where this record's entry starts in the record table (-1: no table entry). */
  readonly #tableAt: number;

  constructor(
    id: Uint8Array<ArrayBuffer> | undefined,
    idText: string | undefined,
    i: number,
    texts:
      | { keyText: string; dataText: string }
      | {
        at: number;
        size: number;
        lineHashText?: string;
        /** Format 4: the entry's offset in `region.table` (hash and tag read from there). */
        tableAt?: number;
        region: RecordLines;
      },
  ) {
    if (id !== undefined || idText !== undefined) this.#c = { id, idText };
    this.#i = i;
    this.#lineAt = 0;
    this.#lineSize = 0;
    this.#tableAt = -1;
    if ("region" in texts) {
      // The view on the line is made when first used: 10,000 views cost a read that uses one.
      this.#lineAt = texts.at;
      this.#lineSize = texts.size;
      this.lineHashText = texts.lineHashText;
      this.#tableAt = texts.tableAt ?? -1;
      this.region = texts.region;
    } else {
      const cache = this.#cache();
      cache.keyText = texts.keyText;
      cache.dataText = texts.dataText;
      cache.kind = "profile"; // formats 1 and 2 hold profiles only
    }
  }

  /** The record's {@link RecordCache}, made on first use. */
  #cache(): RecordCache {
    return this.#c ??= {};
  }

  /** The id's base64url text. */
  get idText(): string {
    return this.#cache().idText ??= this.region?.idTextAt(this.#tableAt) ??
      toBase64Url(this.#entry(0, 16));
  }

  /**
   * Format 4: whether this record's name tag is `tag`, compared in place in the table.
   *
   * @param tag A name tag.
   * @returns Undefined for a record without a tag (formats 1 to 3).
   */
  nameTagIs(tag: Uint8Array): boolean | undefined {
    if (this.#tableAt < 0) return undefined;
    if (!this.region!.tableChecked) {
      throw new Error("record table used before it was checked (RecordLines.checkTable)");
    }
    const t = this.region!.table!.bytes;
    const at = this.#tableAt + 52;
    for (let k = 0; k < NAME_TAG_BYTES; k++) if (t[at + k] !== tag[k]) return false;
    return true;
  }

  /**
   * Format 4: whether this record's id is `id` (16 bytes), compared in place in the table.
   *
   * @param id A record id.
   * @returns Undefined for a record without a table entry (formats 1 to 3).
   */
  idIs(id: Uint8Array): boolean | undefined {
    if (this.#tableAt < 0) return undefined;
    if (!this.region!.tableChecked) {
      throw new Error("record table used before it was checked (RecordLines.checkTable)");
    }
    const t = this.region!.table!.bytes;
    const at = this.#tableAt;
    for (let k = 0; k < 16; k++) if (t[at + k] !== id[k]) return false;
    return true;
  }

  /**
   * Format 4, for a writer carrying this record forward unchanged: where its table entry and its
   * line are in the file it was read from (once the table was checked). Undefined otherwise.
   */
  get span(): CarriedSpan | undefined {
    if (this.#tableAt < 0 || !this.region?.table || !this.region.tableChecked) return undefined;
    return {
      region: this.region,
      tableAt: this.#tableAt,
      lineAt: this.#lineAt,
      lineSize: this.#lineSize,
    };
  }

  /** The record's kind (format 3: read from its line, after the line's hash was checked). */
  get kind(): RecordKind {
    if (this.#c?.kind === undefined) this.#readLine();
    return this.#c!.kind!;
  }

  /** Format 3: the record line as stored (without its newline). */
  get line(): Uint8Array | undefined {
    if (!this.region) return undefined;
    return this.#cache().line ??= this.region.bytes.subarray(
      this.#lineAt,
      this.#lineAt + this.#lineSize,
    );
  }

  /**
   * The id. A format-3 table's ids are decoded when first used: parsing a 10,000-record table
   * decodes none (their spelling is still checked, strictly, before any use).
   */
  get id(): Uint8Array<ArrayBuffer> {
    if (this.#tableAt >= 0) return this.#cache().id ??= this.#entry(0, 16);
    return this.#cache().id ??= bytes(this.idText, `record ${this.#i} id`, 16);
  }

  /** Format 4: whether the record has a table entry, so a name tag (formats 1 to 3: none). */
  get tagged(): boolean {
    return this.#tableAt >= 0;
  }

  /** Format 4: the name tag from the table (once the table was checked against the header). */
  get nameTag(): Uint8Array | undefined {
    return this.#tableAt < 0 ? undefined : this.#entry(52, NAME_TAG_BYTES);
  }

  /** Bytes of this record's format-4 table entry, once the table was checked. */
  #entry(at: number, length: number): Uint8Array<ArrayBuffer> {
    const table = this.region!.table!;
    if (!this.region!.tableChecked) {
      throw new Error("record table used before it was checked (RecordLines.checkTable)");
    }
    return table.bytes.subarray(this.#tableAt + at, this.#tableAt + at + length);
  }

  /** Formats 3 and 4: the line's SHA-256 from the table. */
  get lineHash(): Uint8Array<ArrayBuffer> | undefined {
    const known = this.#c?.lineHash;
    if (known) return known;
    if (this.#tableAt >= 0) return this.#cache().lineHash = this.#entry(20, 32);
    if (this.lineHashText === undefined) return undefined;
    return this.#cache().lineHash ??= bytes(this.lineHashText, `record ${this.#i} hash`, 32);
  }

  /** The base64url text of `key` as read (format 3: after the line's hash was checked). */
  get keyText(): string {
    if (this.#c?.keyText === undefined) this.#readLine();
    return this.#c!.keyText!;
  }

  /** The base64url text of `data` as read (format 3: after the line's hash was checked). */
  get dataText(): string {
    if (this.#c?.dataText === undefined) this.#readLine();
    return this.#c!.dataText!;
  }

  get key(): Uint8Array<ArrayBuffer> {
    return this.#cache().key ??= bytes(this.keyText, `record ${this.#i} key`);
  }

  get data(): Uint8Array<ArrayBuffer> {
    return this.#cache().data ??= bytes(this.dataText, `record ${this.#i} data`);
  }

  /** Checks a format-3 line against its table entry, then parses it. */
  #readLine(): void {
    if (!this.region!.isLoaded(this.line!)) {
      throw new Error("record line read before it was loaded (RecordLines.load)");
    }
    if (!this.region!.tableChecked) {
      throw new Error("record table used before it was checked (RecordLines.checkTable)");
    }
    // The hash first: nothing of a line the header does not vouch for is parsed.
    if (!timingSafeEqual(sha256(this.line!), this.lineHash!)) {
      throw tampered(`record line ${this.#i + 1} does not match its hash in the header`);
    }
    let v: unknown;
    try {
      v = JSON.parse(fromUtf8(this.line!));
    } catch {
      throw damaged(`record line ${this.#i + 1} is not valid JSON`);
    }
    const o = obj(v, `record ${this.#i}`);
    exactKeys(o, ["id", "kind", "key", "data"], `record ${this.#i}`);
    if (o.kind !== "profile" && o.kind !== "secret") {
      throw damaged(`record ${this.#i} has an unknown kind`);
    }
    if (o.id !== this.idText) throw tampered(`record line ${this.#i + 1} has another record's id`);
    if (typeof o.key !== "string") throw damaged(`record ${this.#i} key is not a string`);
    if (typeof o.data !== "string") throw damaged(`record ${this.#i} data is not a string`);
    const cache = this.#cache();
    cache.keyText = o.key;
    cache.dataText = o.data;
    cache.kind = o.kind;
  }
}

function parseRecord(v: unknown, i: number): RecordEntry {
  const o = obj(v, `record ${i}`);
  exactKeys(o, ["id", "kind", "key", "data"], `record ${i}`);
  if (o.kind !== "profile") throw damaged(`record ${i} has an unknown kind`);
  const id = bytes(o.id, `record ${i} id`, 16);
  if (typeof o.key !== "string") throw damaged(`record ${i} key is not a string`);
  if (typeof o.data !== "string") throw damaged(`record ${i} data is not a string`);
  return new ParsedRecord(id, o.id as string, i, { keyText: o.key, dataText: o.data });
}

/** The members of a record table entry (format 3). */
const TABLE_ENTRY_KEYS = ["id", "size", "sha256"];

/**
 * Reads the format-3 record table and finds each record's line in the bytes after the seal line.
 * Lines follow in table order, each `size` bytes and a newline, and nothing else follows: a
 * missing, extra, cut or resized line is damage found here, before any key is derived. The
 * content of a line is checked against its hash when the record is read.
 */
function parseRecordTable(v: unknown, region: RecordLines): RecordEntry[] {
  if (!Array.isArray(v)) throw damaged("record table is not a list");
  const lines = region.bytes;
  const partial = region.source !== undefined;
  const out: RecordEntry[] = new Array(v.length);
  let at = 0;
  // An indexed loop and one key count per entry: this runs 10,000 times per read of a large vault.
  for (let i = 0; i < v.length; i++) {
    const o = v[i] as Json;
    if (typeof o !== "object" || o === null || Array.isArray(o)) {
      throw damaged(`record table entry ${i} is not an object`);
    }
    // Exactly `id`, `size` and `sha256` (each checked below): three members, no array made.
    let members = 0;
    for (const _ in o) members++;
    if (members !== TABLE_ENTRY_KEYS.length || !Object.hasOwn(o, "size")) {
      throw damaged(`record table entry ${i} has unexpected fields`);
    }
    // Ids and hashes are decoded when used (see ParsedRecord); here only their length, which is
    // fixed for 16 and 32 bytes of unpadded base64url.
    const { id, sha256: hashText } = o;
    if (typeof id !== "string" || id.length !== 22) throw damaged(`record ${i} id`);
    if (typeof hashText !== "string" || hashText.length !== 43) throw damaged(`record ${i} hash`);
    const size = int(o.size, `record ${i} size`, 1, MAX_FILE_BYTES);
    // A partial region has only its total length here; each line's newline is checked when the
    // line is loaded.
    if (at + size >= lines.length || (!partial && lines[at + size] !== 0x0a)) {
      throw damaged(`record line ${i + 1} is missing or has another size than the header says`);
    }
    out[i] = new ParsedRecord(undefined, id, i, {
      at,
      size,
      lineHashText: hashText,
      region,
    });
    at += size + 1;
  }
  if (at !== lines.length) throw damaged("bytes after the last record line");
  return out;
}

/**
 * Every record id of a body in base64url, in record order: a format-4 table's in one pass
 * ({@link RecordLines.idTexts}), after which each record's {@link recordIdText} is that text.
 *
 * @param body The body (format 4: its table checked).
 * @returns The ids' texts.
 */
export function recordIdTexts(body: VaultBody): string[] {
  const region = body.region;
  if (region?.table && region.table.bytes.length === body.records.length * TABLE_ENTRY_BYTES) {
    return region.idTexts();
  }
  return body.records.map(recordIdText);
}

/**
 * Whether `texts` are exactly a body's record ids in base64url, in record order: a format-4
 * table's compared in place in one encoding of all ids ({@link RecordLines.idTextsAre}).
 *
 * @param body The body (format 4: its table checked).
 * @param texts Candidate id texts.
 * @returns True when there is one text per record and each is its record's id.
 */
export function recordIdTextsAre(body: VaultBody, texts: readonly string[]): boolean {
  const region = body.region;
  if (region?.table && region.table.bytes.length === body.records.length * TABLE_ENTRY_BYTES) {
    return region.idTextsAre(texts);
  }
  return texts.length === body.records.length &&
    body.records.every((r, i) => recordIdText(r) === texts[i]);
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

/**
 * Format 4: whether a record read from a file has this name tag ({@link ParsedRecord.nameTagIs}).
 *
 * @param r The record.
 * @param tag A name tag.
 * @returns Undefined when the record has no tag (not read from a format-4 table).
 */
export function nameTagIs(r: RecordEntry, tag: Uint8Array): boolean | undefined {
  return r instanceof ParsedRecord ? r.nameTagIs(tag) : undefined;
}

/**
 * Format 4: whether a record was read from a format-4 table, so has a name tag that a writer can
 * keep without a view on it ({@link serializeBody}).
 *
 * @param r The record.
 * @returns True for a record read from a format-4 table.
 */
export function hasNameTag(r: RecordEntry): boolean {
  return r instanceof ParsedRecord && r.tagged;
}

/**
 * Format 4: whether a record read from a file has this id ({@link ParsedRecord.idIs}), compared in
 * the table without encoding it.
 *
 * @param r The record.
 * @param id A record id (16 bytes).
 * @returns Undefined when the record has no table entry (not read from a format-4 table).
 */
export function recordIdIs(r: RecordEntry, id: Uint8Array): boolean | undefined {
  return r instanceof ParsedRecord ? r.idIs(id) : undefined;
}

/**
 * The first record with this id, in file order. A format-4 table is scanned on its bytes, so a
 * reader that wants a few records encodes no id of the others.
 *
 * @param body The body (format 4: its table checked).
 * @param idText The record id, base64url.
 * @returns The record, or undefined.
 */
export function recordById(body: VaultBody, idText: string): RecordEntry | undefined {
  const table = body.region?.table?.bytes;
  if (!table) return body.records.find((r) => recordIdText(r) === idText);
  if (!body.region!.tableChecked) throw new Error("table not checked");
  let id: Uint8Array;
  try {
    id = fromBase64Url(idText);
  } catch {
    return undefined;
  }
  if (id.length !== 16) return undefined;
  for (let i = 0, off = 0; i < body.records.length; i++, off += TABLE_ENTRY_BYTES) {
    let k = 0;
    while (k < 16 && table[off + k] === id[k]) k++;
    if (k === 16) return body.records[i];
  }
  return undefined;
}

/**
 * Whether a body repeats a slot id or a record id (docs/FORMAT.md: ids are unique). A format-4
 * table is checked on its bytes, without encoding 10,000 ids.
 *
 * @param body The body (format 4: its table checked).
 * @returns True when an id repeats.
 */
export function hasDuplicateIds(body: VaultBody): boolean {
  const slots = new Set(body.slots.map((s) => toBase64Url(s.id)));
  if (slots.size !== body.slots.length) return true;
  const table = body.region?.table?.bytes;
  if (!table) {
    return new Set(body.records.map(recordIdText)).size !== body.records.length;
  }
  if (body.region && !body.region.tableChecked) throw new Error("table not checked");
  // 48 bits of each id (its first six bytes, read as words in the platform's byte order) as a
  // number; on two equal prefixes (rare for random ids, or a repeated id), every id is compared
  // in full. Sorted in a typed array (native), so equal prefixes are neighbours: no set of 10,000.
  const words = body.region!.tableWords();
  const keys = new Float64Array(table.length / TABLE_ENTRY_BYTES);
  const stride = TABLE_ENTRY_BYTES / 4;
  for (let i = 0, w = 0; i < keys.length; i++, w += stride) {
    keys[i] = words[w]! * 65536 + (words[w + 1]! & 0xffff);
  }
  keys.sort();
  for (let i = 1; i < keys.length; i++) {
    if (keys[i] === keys[i - 1]) {
      return new Set(body.records.map(recordIdText)).size !== body.records.length;
    }
  }
  return false;
}

/**
 * Makes a record's line readable when its file was read by position ({@link readSplitHead});
 * nothing to do otherwise.
 *
 * @param r The record.
 * @throws {HecateError} `vault_integrity` when the line is not where the table puts it.
 */
export async function loadRecordLine(r: RecordEntry): Promise<void> {
  if (r instanceof ParsedRecord && r.region && r.line) await r.region.load(r.line);
}

/** A vault file split into its lines, before the body is interpreted. */
export interface SplitVaultFile {
  /** The first line: the body (formats 1, 2) or the header (format 3), what the seal covers. */
  bodyBytes: Uint8Array<ArrayBuffer>;
  seal: Seal;
  /** Everything after the seal line: the record lines of format 3, empty in formats 1 and 2. */
  recordBytes: Uint8Array<ArrayBuffer>;
  /** Set by {@link readSplitHead}: `recordBytes` is a zeroed buffer filled line by line. */
  partial?: { source: PositionedFile; fileOffset: number; preloaded?: number };
  /** The header's JSON, once parsed ({@link loadTable} parses it before {@link parseSplit}). */
  headerJson?: unknown;
}

/** A file read by position (docs/FORMAT.md, "Reading with an API key"). */
export interface PositionedFile {
  /** The file's size in bytes, when it was opened. */
  readonly size: number;
  /**
   * Reads up to `length` bytes at `offset`; fewer only at the end of the file.
   *
   * @param offset Where to start.
   * @param length How many bytes.
   * @returns The bytes read.
   */
  readAt(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
}

/**
 * The first read of {@link readSplitHead}; doubled until the seal line's end is found. A format-4
 * header is kilobytes (the table and index are lines of their own); a format-3 one, megabytes.
 */
const HEAD_CHUNK = 64 * 1024;

/**
 * Reads only the header and seal lines of a vault file, by position, for a reader that then
 * reads only the record lines it needs ({@link RecordLines.load}). The record lines' sizes are
 * checked against the file's size (their total) here, and each line's newline when it is loaded.
 *
 * @param file The file.
 * @returns The split head, with a partial record region.
 * @throws {HecateError} `vault_integrity` when the layout or the seal is malformed.
 */
export async function readSplitHead(file: PositionedFile): Promise<SplitVaultFile> {
  if (file.size > MAX_FILE_BYTES) throw damaged("file is too large");
  // Chunks kept apart and joined once: the header of a large vault is megabytes.
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let read = 0;
  let chunk = HEAD_CHUNK;
  let nl = -1;
  let sealEnd = -1;
  while (read < file.size && sealEnd < 0) {
    const more = await file.readAt(read, Math.min(chunk, file.size - read));
    if (more.length === 0) break;
    chunks.push(more);
    // Newlines searched in the new chunk only, as offsets in the whole file.
    let from = 0;
    while (sealEnd < 0) {
      const at = more.indexOf(0x0a, from);
      if (at < 0) break;
      if (nl < 0) nl = read + at;
      else sealEnd = read + at;
      from = at + 1;
    }
    read += more.length;
    chunk *= 2;
  }
  const head = chunks.length === 1 ? chunks[0]! : new Uint8Array(read);
  if (chunks.length > 1) {
    let at = 0;
    for (const c of chunks) {
      head.set(c, at);
      at += c.length;
    }
  }
  const { bodyBytes, seal } = splitLines(head, nl, sealEnd);
  const fileOffset = sealEnd + 1;
  return {
    bodyBytes,
    seal,
    // Zeroed; only the lines a reader loads are ever filled in.
    recordBytes: new Uint8Array(Math.max(0, file.size - fileOffset)),
    partial: { source: file, fileOffset },
  };
}

/**
 * Splits a vault file into its first line, parsed seal and the rest, so the checksum can be
 * checked before anything in the body (even its version) is believed.
 *
 * @param file The whole file.
 * @param owned Whether the caller never changes `file` afterwards (then it is not copied).
 * @returns Body (or header) bytes, seal, record lines.
 * @throws {HecateError} `vault_integrity` when the layout or the seal is malformed.
 */
export function splitVaultFile(file: Uint8Array<ArrayBuffer>, owned = false): SplitVaultFile {
  if (file.length > MAX_FILE_BYTES) throw damaged("file is too large");
  const nl = file.indexOf(0x0a);
  const sealEnd = nl < 0 ? -1 : file.indexOf(0x0a, nl + 1);
  const { bodyBytes, seal } = splitLines(file, nl, sealEnd);
  // Its own copy unless the caller gives up the buffer: records are read from it lazily, after
  // the caller may have reused its buffer.
  const rest = owned ? file.subarray(sealEnd + 1) : file.slice(sealEnd + 1);
  return { bodyBytes, seal, recordBytes: rest };
}

/** The header (body) line and the parsed seal, given where the two lines end. */
function splitLines(
  file: Uint8Array<ArrayBuffer>,
  nl: number,
  sealEnd: number,
): { bodyBytes: Uint8Array<ArrayBuffer>; seal: Seal } {
  if (sealEnd < 0 || sealEnd === nl + 1) throw damaged("missing seal line");
  const bodyBytes = file.slice(0, nl);
  const sealBytes = file.subarray(nl + 1, sealEnd);
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
 * Parses and checks the body line (format 3: the header line and the layout of the record lines).
 *
 * @param bodyBytes The body line without its newline.
 * @param recordBytes What follows the seal line: format 3's record lines; must be empty otherwise.
 * @returns The body.
 * @throws {HecateError} `vault_integrity` for anything malformed, `unsupported_version` for a
 * well-formed body of another format version.
 */
export function parseBody(
  bodyBytes: Uint8Array<ArrayBuffer>,
  recordBytes: Uint8Array<ArrayBuffer> = new Uint8Array(),
  partial?: SplitVaultFile["partial"],
  headerJson?: unknown,
): VaultBody {
  const b = obj(headerJson ?? parseHeaderJson(bodyBytes), "body");
  if (b.format !== FORMAT_NAME) throw damaged("not a Hecate vault");
  const version = b.version;
  if (typeof version !== "number" || !READABLE_VERSIONS.includes(version)) {
    if (typeof version === "number" && Number.isSafeInteger(version) && version > 0) {
      throw new HecateError(
        "unsupported_version",
        `Vault format version ${version} is not supported by this build (it reads versions ${
          READABLE_VERSIONS.join(", ")
        })`,
        { hint: "upgrade Hecate to open this vault" },
      );
    }
    throw damaged("version field is invalid");
  }
  if (version >= 4) return parseHeaderV4(b, version, recordBytes, partial);
  const fields = ["format", "version", "vault_id", "generation", "slots", "records", "meta"];
  exactKeys(b, version >= 3 ? [...fields, "lines_sha256"] : fields, "body");
  if (!Array.isArray(b.slots) || !Array.isArray(b.records)) throw damaged("slot or record list");
  if (version < 3 && recordBytes.length > 0) throw damaged("extra lines");
  const vaultId = bytes(b.vault_id, "vault id", 16);
  const generation = int(b.generation, "generation", 0, Number.MAX_SAFE_INTEGER);
  const slots = b.slots.map((slot, i) => parseSlot(slot, i, version));
  const region = version >= 3
    ? new RecordLines(recordBytes, bytes(b.lines_sha256, "record lines checksum", 32), partial)
    : undefined;
  const records = region ? parseRecordTable(b.records, region) : b.records.map(parseRecord);
  return withMeta(b, { version, vaultId, generation, slots, records, region });
}

/** The header line's JSON. */
function parseHeaderJson(bodyBytes: Uint8Array): unknown {
  try {
    return JSON.parse(fromUtf8(bodyBytes));
  } catch {
    throw damaged("body is not valid JSON");
  }
}

/** A body with its meta text decoded when first used. */
function withMeta(b: Json, body: Omit<VaultBody, "meta">): VaultBody {
  if (typeof b.meta !== "string") throw damaged("meta is not a string");
  const metaText = b.meta;
  let meta: Uint8Array<ArrayBuffer> | undefined;
  return {
    ...body,
    // Decoded when first used: an API-key reader, which cannot open it, never pays for it.
    get meta(): Uint8Array<ArrayBuffer> {
      return meta ??= bytes(metaText, "meta");
    },
  };
}

/** The members of a format-4 header. */
const HEADER_V4_KEYS = [
  "format",
  "version",
  "vault_id",
  "generation",
  "slots",
  "records",
  "table_sha256",
  "index_size",
  "index_sha256",
  "lines_sha256",
  "meta",
];

/**
 * Parses a format-4 header and lays out the lines after the seal: the binary record table
 * (`records` entries of {@link TABLE_ENTRY_BYTES}), the sealed index line (`index_size` bytes),
 * then one line per record with the size its table entry states; each followed by a newline, and
 * nothing after the last. The table's bytes are read here only for the sizes (layout); its
 * entries are used only after {@link RecordLines.checkTable}.
 */
function parseHeaderV4(
  b: Json,
  version: number,
  recordBytes: Uint8Array<ArrayBuffer>,
  partial: SplitVaultFile["partial"],
): VaultBody {
  exactKeys(b, HEADER_V4_KEYS, "header");
  if (!Array.isArray(b.slots)) throw damaged("slot list");
  const vaultId = bytes(b.vault_id, "vault id", 16);
  const generation = int(b.generation, "generation", 0, Number.MAX_SAFE_INTEGER);
  const slots = b.slots.map((slot, i) => parseSlot(slot, i, version));
  const count = int(b.records, "record count", 0, Math.floor(MAX_FILE_BYTES / TABLE_ENTRY_BYTES));
  const indexSize = int(b.index_size, "index size", 1, MAX_FILE_BYTES);
  const tableSha = bytes(b.table_sha256, "record table checksum", 32);
  const indexSha = bytes(b.index_sha256, "index checksum", 32);
  const linesSha = bytes(b.lines_sha256, "record lines checksum", 32);
  const tableSize = count * TABLE_ENTRY_BYTES;
  const indexAt = tableSize + 1;
  const linesStart = indexAt + indexSize + 1;
  if (linesStart > recordBytes.length) throw damaged("the record table or index line is cut short");
  if (partial && (partial.preloaded ?? 0) < tableSize + 1) {
    throw new Error("record table not loaded (loadTable)");
  }
  if (recordBytes[tableSize] !== 0x0a) {
    throw damaged("the record table line has another size than the header says");
  }
  // A reader by position that does not read the index line (an API key cannot open it) knows
  // its end only from the sizes, which must still add up to the file; a listing reads it.
  if (
    (!partial || (partial.preloaded ?? 0) >= linesStart) &&
    recordBytes[indexAt + indexSize] !== 0x0a
  ) {
    throw damaged("the index line has another size than the header says");
  }
  const table = recordBytes.subarray(0, tableSize);
  const region = new RecordLines(recordBytes, linesSha, partial, {
    linesStart,
    table: { bytes: table, sha256: tableSha },
  });
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const records: RecordEntry[] = new Array(count);
  // Nothing decoded or encoded per entry here (10,000 per read of a large vault): the id's text
  // and the id, hash and tag views are made when used.
  let at = linesStart;
  for (let i = 0; i < count; i++) {
    const off = i * TABLE_ENTRY_BYTES;
    const size = view.getUint32(off + 16);
    if (
      size < 1 || at + size >= recordBytes.length || (!partial && recordBytes[at + size] !== 0x0a)
    ) {
      throw damaged(`record line ${i + 1} is missing or has another size than the header says`);
    }
    records[i] = new ParsedRecord(undefined, undefined, i, {
      at,
      size,
      tableAt: off,
      region,
    });
    at += size + 1;
  }
  if (at !== recordBytes.length) throw damaged("bytes after the last record line");
  const indexLine = {
    bytes: recordBytes.subarray(indexAt, indexAt + indexSize),
    sha256: indexSha,
  };
  return withMeta(b, { version, vaultId, generation, slots, records, indexLine, region });
}

/**
 * Format 4, a file read by position ({@link readSplitHead}): reads the record table line, which
 * {@link parseSplit} needs to lay out the record lines, and with `withIndex` the index line after
 * it (a listing), in one read. The sizes come from the header before it is believed (no read goes
 * past the file's size): nothing read is used before the header checksum has passed, no table
 * entry before the table's hash, and the index line not before its own. Does nothing for a file
 * read whole or of another version.
 *
 * @param split The split head.
 * @param withIndex Also read the index line (its newline is then checked by {@link parseBody}).
 * @throws {HecateError} `vault_integrity` when the file is shorter than the header says.
 */
export async function loadTable(split: SplitVaultFile, withIndex = false): Promise<void> {
  if (!split.partial) return;
  const h = split.headerJson ??= parseHeaderJson(split.bodyBytes);
  if (typeof h !== "object" || h === null || !hasIndexLine((h as Json).version)) return;
  const count = (h as Json).records;
  // Anything wrong here is reported by parseBody, with the same checks as for a whole file.
  if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 0) return;
  let n = count * TABLE_ENTRY_BYTES + 1;
  const indexSize = (h as Json).index_size;
  if (withIndex && typeof indexSize === "number" && Number.isSafeInteger(indexSize)) {
    if (indexSize >= 1) n += indexSize + 1;
  }
  if (n > split.recordBytes.length) return;
  const got = await split.partial.source.readAt(split.partial.fileOffset, n);
  if (got.length !== n) throw damaged("the record table line is cut short");
  split.recordBytes.set(got, 0);
  split.partial.preloaded = n;
}

/**
 * Parses the body of a split file and pairs the two ({@link parseBody}, {@link withBody}).
 *
 * @param split The split file.
 * @returns The parsed file.
 * @throws {HecateError} As {@link parseBody} and {@link withBody}.
 */
export function parseSplit(split: SplitVaultFile): ParsedVaultFile {
  return withBody(
    split,
    parseBody(split.bodyBytes, split.recordBytes, split.partial, split.headerJson),
  );
}

/**
 * Parses vault file bytes into a checked structure, with the format-4 record table checked
 * against the header. Does not verify the checksum or the MAC.
 *
 * @param file The whole file.
 * @returns The body, its exact bytes, and the seal.
 * @throws {HecateError} As {@link splitVaultFile} and {@link parseBody}.
 */
export function parseVaultFile(file: Uint8Array<ArrayBuffer>): ParsedVaultFile {
  const parsed = parseSplit(splitVaultFile(file));
  // Format 4: the table is checked here (unkeyed, like the other checks of this function).
  parsed.body.region?.checkTableSync();
  return parsed;
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
  return { bodyBytes: split.bodyBytes, seal: split.seal, body };
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
  if (s.kind === "age") {
    return {
      id: toBase64Url(s.id),
      kind: s.kind,
      recipient: s.recipient,
      age: toBase64Url(s.age),
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
  if (s.kind === "pkcs11") {
    return {
      id: toBase64Url(s.id),
      kind: s.kind,
      token: s.token,
      key: s.key,
      iv: toBase64Url(s.iv),
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

/** A serialised format-4 body. */
export interface SerializedBody {
  /** The header line without its newline: what the seal covers. */
  bodyBytes: Uint8Array<ArrayBuffer>;
  /** What follows the seal line (table, index and record lines, newlines included), in order. */
  lines: Uint8Array[];
}

/** Where a carried format-4 record's table entry and line are in the file it was read from. */
interface CarriedSpan {
  region: RecordLines;
  tableAt: number;
  lineAt: number;
  lineSize: number;
  /** Records in the span (1, or a whole leading run; `lineSize` then spans their lines). */
  count?: number;
}

/**
 * The first records of a format-4 file as read, carried unchanged, in order, with their tags:
 * a writer passes them as a count instead of one entry each (no step per record).
 */
export interface CarriedRun {
  /** The records of the file as read (`body.records` of its parse). */
  records: readonly RecordEntry[];
  /** How many of them, from the first, lead the new file. */
  count: number;
}

/**
 * The span of the first `count` records of a parsed format-4 file, as one carried span, or
 * undefined when they are not a format-4 file's first records, in order (then the caller carries
 * them one by one).
 */
function leadingSpan(run: CarriedRun): CarriedSpan | undefined {
  const { records, count } = run;
  const first = records[0];
  if (count < 1 || count > records.length || !(first instanceof ParsedRecord)) return undefined;
  const start = first.span;
  if (!start || start.tableAt !== 0) return undefined;
  const region = start.region;
  const next = records[count];
  const end = count === records.length
    ? region.bytes.length
    : next instanceof ParsedRecord && next.region === region
    ? next.span?.lineAt
    : undefined;
  if (end === undefined || region.table!.bytes.length < count * TABLE_ENTRY_BYTES) return undefined;
  return { region, tableAt: 0, lineAt: start.lineAt, lineSize: end - start.lineAt - 1, count };
}

/** A record line to write: its id, bytes and SHA-256. */
interface LineOut {
  id: Uint8Array;
  line: Uint8Array;
  hash: Uint8Array;
}

/** A record's line as read, when it is written back unchanged (synchronous: 10,000 a write). */
function carriedLine(r: RecordEntry): LineOut | undefined {
  if (r instanceof ParsedRecord && r.line && r.lineHash !== undefined) {
    // Written back as read, with the hash the header it came from vouched for; serializeBody has
    // checked the lines it came from against that header first.
    return { id: r.id, line: r.line, hash: r.lineHash };
  }
  return undefined;
}

/** A record's line and its SHA-256: as read for an unchanged record line, else made now. */
async function recordLine(r: RecordEntry): Promise<LineOut> {
  const carried = carriedLine(r);
  if (carried) return carried;
  const read = r instanceof ParsedRecord;
  const line = utf8(JSON.stringify({
    id: read ? r.idText : toBase64Url(r.id),
    kind: r.kind,
    key: read ? r.keyText : toBase64Url(r.key),
    data: read ? r.dataText : toBase64Url(r.data),
  }));
  // WebCrypto, not the JavaScript SHA-256: an import hashes thousands of new lines in one write.
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", line));
  return { id: r.id, line, hash };
}

async function digest(data: Uint8Array<ArrayBuffer>): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

/**
 * Serialises a body as format 4: the header whose exact bytes the seal will cover, then the
 * binary record table (id, line size, line SHA-256 and name tag per record), the sealed index
 * line and the record lines. A record carried forward as read is written only after the lines
 * of its file have matched their header ({@link RecordLines.check}).
 *
 * @param body The body; `indexLine` (the sealed profile index) is required.
 * @param nameTags Each record's name tag ({@link NAME_TAG_BYTES} bytes), in `body.records` order;
 * undefined for a record read from a format-4 table that keeps the tag it was read with (compared
 * and copied in place: no view per record).
 * @returns The header line and what follows the seal line.
 * @throws {HecateError} `vault_integrity` when a record line carried forward was damaged or
 * altered.
 */
export async function serializeBody(
  body: VaultBody,
  nameTags: readonly (Uint8Array | undefined)[],
  carried?: CarriedRun,
): Promise<SerializedBody> {
  if (!body.indexLine) throw new Error("a format-4 body needs its profile index line");
  if (nameTags.length !== body.records.length) throw new Error("one name tag per record");
  // The leading run: its table entries and lines as one span (an add at 10,000 profiles: no
  // step per carried record); else the caller's records one by one.
  const lead = carried && carried.count > 0 ? leadingSpan(carried) : undefined;
  if (carried && carried.count > 0 && !lead) {
    throw new Error("a carried run must be a format-4 file's first records");
  }
  const regions = new Set<RecordLines>();
  for (const r of body.records) if (r instanceof ParsedRecord && r.region) regions.add(r.region);
  // A leading run that is all of its file's record lines, with no other record from that file:
  // its lines are checked against that file's `lines_sha256` as the part handed to the write,
  // and the same hash goes on over the lines after them for the new `lines_sha256` (one pass over
  // the carried megabytes instead of two; see `linesDigest` below). Else each file is checked
  // first.
  const whole = lead !== undefined && !regions.has(lead.region) &&
    lead.lineAt === lead.region.linesStart &&
    lead.lineAt + lead.lineSize + 1 === lead.region.bytes.length;
  if (lead && !whole) regions.add(lead.region);
  for (const region of regions) await region.check();
  // A format-4 record carried forward with the tag it was read with is copied as its table entry
  // and line, in runs: records that follow each other in the file they came from are one copy
  // of table bytes and one of line bytes (an add at 10,000 profiles: two copies, not 40,000).
  const records: (LineOut | CarriedSpan)[] = lead ? [lead] : [];
  let linesSize = lead ? lead.lineSize + 1 : 0;
  let freshSize = 0; // lines not carried as spans, written into one new buffer
  let count = lead?.count ?? 0;
  for (const [i, r] of body.records.entries()) {
    count++;
    const span = r instanceof ParsedRecord ? r.span : undefined;
    const tag = nameTags[i];
    if (span && (tag === undefined || (r as ParsedRecord).nameTagIs(tag) === true)) {
      records.push(span);
      linesSize += span.lineSize + 1;
    } else {
      const out = carriedLine(r) ?? await recordLine(r);
      records.push(out);
      linesSize += out.line.length + 1;
      freshSize += out.line.length + 1;
    }
  }
  const index = body.indexLine.bytes;
  // The table and index lines in one new buffer; the record lines as parts: carried runs as
  // views on the lines they were read from (a large vault's megabytes are not copied again
  // before the write), new lines in one buffer of their own.
  const tableSize = count * TABLE_ENTRY_BYTES;
  const head = new Uint8Array(tableSize + 1 + index.length + 1);
  const table = head.subarray(0, tableSize);
  head[tableSize] = 0x0a;
  head.set(index, tableSize + 1);
  head[tableSize + 1 + index.length] = 0x0a;
  const view = new DataView(head.buffer, 0, tableSize);
  const fresh = new Uint8Array(freshSize);
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let freshAt = 0;
  let freshFrom = -1; // where the new lines written since the last carried run start in `fresh`
  const endFresh = () => {
    if (freshFrom >= 0) parts.push(fresh.subarray(freshFrom, freshAt));
    freshFrom = -1;
  };
  let at = 0;
  // `entry`: the table entry (record) number in the new file; `i`: the position in `records`.
  for (let i = 0, entry = 0; i < records.length;) {
    const r = records[i]!;
    const off = entry * TABLE_ENTRY_BYTES;
    if ("region" in r) {
      // The longest run of entries and lines adjacent in the same source file.
      let j = i + 1;
      let entries = r.count ?? 1;
      let end = r.lineAt + r.lineSize + 1;
      for (; j < records.length; j++) {
        const n = records[j]!;
        if (
          !("region" in n) || n.region !== r.region ||
          n.tableAt !== r.tableAt + entries * TABLE_ENTRY_BYTES || n.lineAt !== end
        ) break;
        entries += n.count ?? 1;
        end = n.lineAt + n.lineSize + 1;
      }
      const src = r.region;
      table.set(
        src.table!.bytes.subarray(r.tableAt, r.tableAt + entries * TABLE_ENTRY_BYTES),
        off,
      );
      endFresh();
      parts.push(src.bytes.subarray(r.lineAt, end));
      at += end - r.lineAt;
      i = j;
      entry += entries;
      continue;
    }
    // Positions in `body.records` and `nameTags`: after the leading run's span, if any.
    const k = lead ? i - 1 : i;
    // A record keeping its tag but not carried as a span (its table not checked: unreachable
    // for a read record, whose table is checked before use) takes it from its entry.
    const tag = nameTags[k] ?? body.records[k]!.nameTag;
    if (
      !tag || r.id.length !== 16 || r.hash.length !== 32 || tag.length !== NAME_TAG_BYTES
    ) {
      throw new Error("malformed record table entry");
    }
    table.set(r.id, off);
    view.setUint32(off + 16, r.line.length);
    table.set(r.hash, off + 20);
    table.set(tag, off + 52);
    if (freshFrom < 0) freshFrom = freshAt;
    fresh.set(r.line, freshAt);
    fresh[freshAt + r.line.length] = 0x0a;
    freshAt += r.line.length + 1;
    at += r.line.length + 1;
    i++;
    entry++;
  }
  endFresh();
  if (at !== linesSize || freshAt !== freshSize) {
    throw new Error("record lines of another size than counted");
  }
  const bodyBytes = utf8(JSON.stringify({
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    vault_id: toBase64Url(body.vaultId),
    generation: body.generation,
    slots: body.slots.map(slotJson),
    records: count,
    table_sha256: await digest(table),
    index_size: index.length,
    index_sha256: await digest(index),
    lines_sha256: whole
      ? await linesDigest(parts, lead)
      : await digest(parts.length === 1 ? parts[0]! : joinParts(parts)),
    meta: toBase64Url(body.meta),
  }));
  return { bodyBytes, lines: [head, ...parts] };
}

/**
 * `lines_sha256` of new record lines that begin with all the record lines of the file `lead`
 * carries, in order: the SHA-256 state after those lines is checked against that file's
 * `lines_sha256` (else _tampered_, and nothing is written) and continued over the rest. The check
 * runs over the bytes about to be written (the first part is what the write copies to the file).
 *
 * @param lines The new record lines, as the parts to be written: the carried run first.
 * @param lead The carried run: all of its file's record lines, first in `lines`.
 * @returns The new `lines_sha256`, base64url.
 * @throws {HecateError} `vault_integrity` when the carried lines are not those the header of
 * their file vouches for.
 */
async function linesDigest(lines: readonly Uint8Array[], lead: CarriedSpan): Promise<string> {
  const first = lines[0];
  if (!first || first.length !== lead.lineSize + 1) throw new Error("the carried run comes first");
  // node:crypto for a hash that can be continued (WebCrypto's digest cannot); loaded only here.
  const { createHash } = await import("node:crypto");
  const carried = createHash("sha256").update(first);
  const rest = carried.copy();
  if (!timingSafeEqual(new Uint8Array(carried.digest()), lead.region.sha256)) {
    throw tampered("the record lines do not match the header (damaged or altered)");
  }
  for (const part of lines.slice(1)) rest.update(part);
  return toBase64Url(new Uint8Array(rest.digest()));
}

/**
 * Joins the header (or body) bytes, a seal and the record lines into the file layout.
 *
 * @param bodyBytes The header line {@link serializeBody} returned.
 * @param seal The seal over those bytes.
 * @param lines What follows the seal line, as {@link serializeBody} returned it (newlines
 * included).
 * @returns The whole file.
 */
export function assembleFile(
  bodyBytes: Uint8Array,
  seal: Seal,
  lines: readonly Uint8Array[] = [],
): Uint8Array<ArrayBuffer> {
  return joinParts([assembleHead(bodyBytes, seal), ...lines]);
}

/**
 * The header (or body) line and the seal line, each with its newline: the start of the file
 * layout, before the lines {@link serializeBody} returned. A writer can write these parts in turn
 * instead of joining them into one buffer (at 10,000 profiles a copy of 10 MiB).
 *
 * @param bodyBytes The header line {@link serializeBody} returned.
 * @param seal The seal over those bytes.
 * @returns The two lines.
 */
export function assembleHead(bodyBytes: Uint8Array, seal: Seal): Uint8Array<ArrayBuffer> {
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

/**
 * Joins parts of a file into one buffer.
 *
 * @param parts The parts, in order.
 * @returns The whole file.
 */
export function joinParts(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, l) => n + l.length, 0));
  let at = 0;
  for (const l of parts) {
    out.set(l, at);
    at += l.length;
  }
  return out;
}

/**
 * Format 4: checks the sealed index line against its SHA-256 in the header, before it is opened.
 *
 * @param line The index line as read.
 * @throws {HecateError} `vault_integrity` when it is not the line the header vouches for (damaged,
 * altered, or a line from another generation).
 */
export async function checkIndexLine(line: IndexLine): Promise<void> {
  if (!line.sha256) throw new Error("an index line to write has nothing to check");
  const got = new Uint8Array(await crypto.subtle.digest("SHA-256", line.bytes));
  if (!timingSafeEqual(got, line.sha256)) {
    throw tampered("the index line does not match the header (damaged or altered)");
  }
}

/**
 * Checks every format-3 record line against its hash in the header (and its shape), as reading
 * each record would: for a full check such as `doctor`, which unlocks nothing. Formats 1 and 2
 * have no record lines; their records are covered by the body checksum.
 *
 * @param body A parsed body.
 * @throws {HecateError} `vault_integrity` for the first line that does not match.
 */
export async function checkRecordLines(body: VaultBody): Promise<void> {
  await body.region?.checkTable();
  if (body.indexLine) await checkIndexLine(body.indexLine);
  for (const r of body.records) if (r instanceof ParsedRecord && r.line) void r.keyText;
  await body.region?.check();
}
