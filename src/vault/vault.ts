/**
 * An unlocked vault held in memory: create one, unlock one from file bytes, read and change its
 * records, and serialise it back. Pure: no file system, no clock, no prompts. The storage layer
 * (`store.ts`) decides when to read and write; this module decides what the bytes are.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import {
  concatBytes,
  fromBase64Url,
  fromUtf8,
  timingSafeEqual,
  toBase64Url,
  utf8,
} from "./encoding.ts";
import {
  type ApiKeyPolicy,
  deriveApiKeyPublic,
  formatApiKey,
  newApiKey,
  sealApiKeySlot,
  sealLegacyApiKeySlot,
} from "./apikey.ts";
import { openAgeSlot, sealAgeSlot } from "./age_slot.ts";
import {
  newSigningKeyPair,
  signEd25519,
  type SigningKeyPair,
  verifyEd25519,
} from "./asymmetric.ts";
import {
  type AgeSlot,
  assembleHead,
  checkIndexLine,
  FORMAT_VERSION,
  hasDuplicateIds,
  hasNameTag,
  joinParts,
  nameTagIs,
  type ParsedVaultFile,
  parseSplit,
  type PasswordSlot,
  type Pkcs11Slot,
  type PositionedFile,
  type RecordEntry,
  recordIdIs,
  recordIdText,
  recordIdTexts,
  recordIdTextsAre,
  type RecordKind,
  serializeBody,
  type Slot,
  type SplitVaultFile,
  splitVaultFile,
  type VaultBody,
} from "./format.ts";
import {
  type DerivedKeys,
  deriveKeys,
  macBody,
  openIndex,
  openMeta,
  openRecord,
  sealIndex,
  sealMeta,
  sealRecord,
  signedBodyMessage,
  unwrapDataKey,
  unwrapRootWithPassword,
  wrapDataKey,
  wrapRootWithPassword,
} from "./keyring.ts";
import {
  AuthenticationFailure,
  hkdfSha256,
  KEY_BYTES,
  randomBytes,
  randomSlotId,
  sha256,
} from "./primitives.ts";
import { ListingFile } from "./listing.ts";
import { NameTagger } from "./name_tag.ts";
import {
  INDEX_META,
  matchesSummary,
  recordKindOf,
  recordSummary,
  summaryKindOf,
} from "./record_index.ts";

/** A JSON object stored in a record or in the meta blob. */
export type JsonObject = { [key: string]: unknown };

/** The meta member holding what the root-key side knows about each API key. */
const APIKEYS_META = "apikeys";
/**
 * Up to this many ids are looked up by scanning the records (each compared in place in the
 * table); more build the id map (see #findByIds).
 */
const FEW_IDS = 64;
/** The meta member holding each age (and other added) slot's label and creation time. */
const SLOTS_META = "slots";
/** The meta member holding the writer's Ed25519 key pair (format 2). */
const SIGNER_META = "signer";

/** An API key as the master-password holder sees it (never the key text). */
export interface ApiKeyInfo {
  /** Slot id, base64url (also the middle part of the key text). */
  id: string;
  /** Name, unique in the vault. */
  name: string;
  /** Creation time, ISO 8601. */
  created: string;
  /** Expiry, ISO 8601, or null for never. */
  expires: string | null;
  /** Record ids in scope. */
  scope: string[];
  /** Zero-trust checks; absent for keys made before them. */
  policy?: ApiKeyPolicy;
}

interface ApiKeyMeta extends ApiKeyInfo {
  /**
   * Format 2: the key's X25519 public key, so the root-key side can re-seal the slot without
   * being able to open it. Kept only here (sealed), so no other key holder can seal to it.
   */
  publicKey?: string;
  /** Format 1 ("legacy") slots: the HKDF slot key itself, which also opens the slot. */
  slotKey?: string;
}

/** Options for {@link UnlockedVault.addApiKey}. */
export interface AddApiKeyOptions {
  /** Unique name. */
  name: string;
  /** Record ids the key may open. */
  scope: string[];
  /** Creation time (the caller's clock). */
  created: Date;
  /** Expiry, or null for never. */
  expires: Date | null;
  /** Zero-trust checks; none when absent. */
  policy?: ApiKeyPolicy | undefined;
}

/** A key slot as {@link UnlockedVault.slotInfo} lists it (never key material). */
export interface SlotInfo {
  /** Slot id, base64url. */
  id: string;
  /** Slot kind as stored (`password`, `apikey`, `apikey-legacy`, `age`, ...). */
  kind: string;
  /** The label given when the slot was added (API keys: their name), if any. */
  label: string | null;
  /** Creation time, ISO 8601, where recorded. */
  created: string | null;
  /**
   * What identifies the holder outside the vault (an age slot: its `age1...` recipient; a PKCS#11
   * slot: its token and key labels).
   */
  detail: string | null;
}

/** Options for {@link UnlockedVault.create}. */
export interface CreateVaultOptions {
  /** PBKDF2 iterations for the password slot. */
  iterations: number;
}

/**
 * One record. Records read from a file with an index are opened only when used: the MAC (or the
 * writer's signature) has already authenticated every ciphertext, through the whole body (formats
 * 1, 2) or through each record line's hash in the header (format 3, checked when the line is
 * first read; src/vault/format.ts), so opening is only about getting the plaintext.
 */
interface LiveRecord {
  id: Uint8Array<ArrayBuffer>;
  /** `id` in base64url. */
  key: string;
  /** The data key; undefined until needed (unwrapped from `entry`). */
  dataKey: Uint8Array<ArrayBuffer> | undefined;
  /** The plaintext; undefined until opened. */
  value: JsonObject | undefined;
  /**
   * Its index entry ({@link recordSummary} of the value); undefined until the profile index is
   * read (format 4 reads it only when a caller needs summaries).
   */
  summary: JsonObject | undefined;
  /** The sealed entry as last read or written; undefined once the value or data key changed. */
  entry: RecordEntry | undefined;
  /** Gets a fresh data key at the next serialize (re-keyed while possibly unopened). */
  rekey: boolean;
  /**
   * The entry as read from the file, kept after `entry` is cleared: a record given a new value
   * before it was ever opened still unwraps its (unchanged) data key from here.
   */
  readonly read?: RecordEntry;
}

/**
 * A {@link LiveRecord} read from a file: its id is decoded from the entry when the record is used
 * (a format-3 table's ids are decoded on demand). A class, not an object literal with a getter,
 * so 10,000 of them share one shape.
 */
class ReadRecord implements LiveRecord {
  readonly read: RecordEntry;
  /** Its position among the records of the file read: its entry's in the profile index. */
  readonly position: number;
  #key: string | undefined;
  dataKey: Uint8Array<ArrayBuffer> | undefined = undefined;
  value: JsonObject | undefined = undefined;
  summary: JsonObject | undefined = undefined;
  entry: RecordEntry | undefined;
  rekey = false;

  constructor(entry: RecordEntry, position: number) {
    this.read = entry;
    this.entry = entry;
    this.position = position;
  }

  /** The id's text, made when first used (a format-4 table's ids are encoded on demand). */
  get key(): string {
    return this.#key ??= recordIdText(this.read);
  }

  get id(): Uint8Array<ArrayBuffer> {
    return this.read.id;
  }
}

/** Whether a slot is an API key's (of either format), the kinds API-key methods look at. */
function isApiKeySlot(s: Slot): boolean {
  return s.kind === "apikey" || s.kind === "apikey-legacy";
}

function integrity(what: string, cause?: unknown): HecateError {
  return new HecateError("vault_integrity", `Vault failed authentication: ${what}`, {
    cause,
    hint: "the file was altered or damaged; restore a previous generation or a backup",
  });
}

/** Byte equality, four bytes a step where the buffers allow it (a vault file can be megabytes). */
/** Bytes up to and including the seal line's newline (the second), or 0 when there is none. */
function headLength(file: Uint8Array): number {
  const first = file.indexOf(0x0a);
  const second = first < 0 ? -1 : file.indexOf(0x0a, first + 1);
  return second < 0 ? 0 : second + 1;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let i = 0;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const n = Math.floor(a.length / 4);
    const x = new Uint32Array(a.buffer, a.byteOffset, n);
    const y = new Uint32Array(b.buffer, b.byteOffset, n);
    for (; i < n; i++) if (x[i] !== y[i]) return false;
    i = n * 4;
  }
  for (; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function parseJsonObject(bytes: Uint8Array, what: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(fromUtf8(bytes));
  } catch (e) {
    throw integrity(`${what} is not valid JSON`, e);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw integrity(`${what} is not a JSON object`);
  }
  return v as JsonObject;
}

/**
 * Checks the unkeyed checksum of a parsed file. It catches accidental damage before any key is
 * derived, so that a flipped bit reads as "damaged" rather than "wrong password". It is no
 * defence against a deliberate edit: the keyed MAC is.
 *
 * @param parsed The split file.
 * @throws {HecateError} `vault_integrity` on mismatch.
 */
export async function checkChecksum(
  parsed: Pick<SplitVaultFile, "bodyBytes" | "seal">,
): Promise<void> {
  if (!timingSafeEqual(await sha256(parsed.bodyBytes), parsed.seal.sha256)) {
    throw new HecateError("vault_integrity", "Vault file is damaged: checksum mismatch", {
      hint: "restore a previous generation or a backup",
    });
  }
}

/**
 * A vault file to unlock: its bytes, or what a listing reads of it by position (the header, the
 * table and the index line: ./listing.ts).
 */
export type UnlockSource = Uint8Array<ArrayBuffer> | ListingFile;

/**
 * Splits, checksums and parses a file this module owns (a private copy: not copied again), or
 * the head a listing read: the same checks, in the same order, on the lines it holds.
 */
async function checkedFile(file: UnlockSource): Promise<ParsedVaultFile> {
  const split = file instanceof ListingFile ? file.split : splitVaultFile(file, true);
  await checkChecksum(split);
  const parsed = parseSplit(split);
  // Format 4: the record table is used (ids, lines, name tags) only once it matches the header.
  await parsed.body.region?.checkTable();
  return parsed;
}

/**
 * The profile index entries in record order (entry i is the summary of the file's record i), read
 * when first needed (memoised).
 */
type IndexSource = () => readonly JsonObject[];

/**
 * Checks a format-5 index's entries against the records of the file they came with: an array of
 * exactly one object per record, entry i for record i (docs/FORMAT.md, "Index line"). Returned as
 * they are: no keyed object of 10,000 members to parse, and no ids to compare.
 */
function checkedIndexArray(entries: unknown, body: VaultBody): JsonObject[] {
  if (!Array.isArray(entries) || entries.length !== body.records.length) {
    throw integrity("the profile index does not match the records");
  }
  for (let i = 0; i < entries.length; i++) {
    const summary: unknown = entries[i];
    if (typeof summary !== "object" || summary === null || Array.isArray(summary)) {
      throw integrity("the profile index does not match the records");
    }
  }
  return entries as JsonObject[];
}

/**
 * Checks index entries keyed by record id (the meta member of formats 1 to 3, the index line of
 * format 4) against the records of the file they came with: exactly one object entry
 * per record id and no other (docs/FORMAT.md, "Reading" step 5), and returns them in record order.
 * A writer of this module stores them in record order, so the member names are first compared
 * with the ids in order (one encoding of all ids, one string compare); any other order is looked
 * up by id.
 */
function checkedIndex(entries: Record<string, JsonObject>, body: VaultBody): JsonObject[] {
  const records = body.records;
  // JSON.parse keeps one member per name, so as many names as records, each a record's id (ids
  // are distinct: checked at unlock), means one entry per record and none other.
  const names = Object.keys(entries);
  if (names.length !== records.length) {
    throw integrity("the profile index does not match the records");
  }
  // In order, the names are the ids (own members: from Object.keys); else each id is looked up
  // (an own member only). Read by name, not with Object.values: several times slower on an
  // object of 10,000 members.
  const ids = recordIdTextsAre(body, names) ? names : recordIdTexts(body);
  const out: JsonObject[] = new Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const summary: unknown = ids === names || Object.hasOwn(entries, id) ? entries[id] : undefined;
    if (typeof summary !== "object" || summary === null || Array.isArray(summary)) {
      throw integrity("the profile index does not match the records");
    }
    out[i] = summary as JsonObject;
  }
  return out;
}

/**
 * The verified plaintext of a format-4 index line behind an index source (checked against the
 * header and opened with AES-GCM at unlock), with the generation it was sealed for and the
 * number of records of its file: a write that only adds records extends it instead of parsing
 * and serialising 10,000 entries again (see {@link extendedIndex}).
 */
const indexPlaintexts = new WeakMap<
  IndexSource,
  { plain: Uint8Array; generation: number; records: number }
>();

/**
 * The index plaintext of the next generation when the records are the file's, unchanged and in
 * order, followed by new ones: the old entries' text kept, the new entries appended. Undefined
 * when the plaintext is not exactly `{"generation":G,"entries":[...]}` as this module writes
 * format 5 (then the caller parses and serialises the whole index; a format-4 index, keyed by id,
 * is so rewritten as format 5 on the first write).
 */
function extendedIndex(
  old: { plain: Uint8Array; generation: number },
  generation: number,
  added: readonly JsonObject[],
): Uint8Array<ArrayBuffer> | undefined {
  const head = utf8(`{"generation":${old.generation},"entries":[`);
  const { plain } = old;
  const n = plain.length;
  // "]}": 0x5d 0x7d.
  if (n < head.length + 2 || plain[n - 1] !== 0x7d || plain[n - 2] !== 0x5d) return undefined;
  for (let i = 0; i < head.length; i++) if (plain[i] !== head[i]) return undefined;
  const entries = plain.subarray(head.length, n - 2);
  let more = added.map((summary) => JSON.stringify(summary)).join(",");
  if (more && entries.length > 0) more = "," + more;
  return concatBytes(
    utf8(`{"generation":${generation},"entries":[`),
    entries,
    utf8(more + "]}"),
  );
}

/** Memoises an index source, so a reload() from the same verification shares its result. */
function memo(load: IndexSource): IndexSource {
  let entries: readonly JsonObject[] | undefined;
  return () => entries ??= load();
}

function signerOf(meta: JsonObject): SigningKeyPair | undefined {
  const m = meta[SIGNER_META] as { seed?: unknown; public?: unknown } | undefined;
  if (typeof m !== "object" || m === null) return undefined;
  try {
    const seed = fromBase64Url(String(m.seed));
    const publicKey = fromBase64Url(String(m.public));
    if (seed.length !== KEY_BYTES || publicKey.length !== KEY_BYTES) return undefined;
    return { seed, publicKey };
  } catch {
    return undefined;
  }
}

function withSigner(meta: JsonObject, signer: SigningKeyPair): JsonObject {
  return {
    ...meta,
    [SIGNER_META]: { seed: toBase64Url(signer.seed), public: toBase64Url(signer.publicKey) },
  };
}

/** The meta as callers see it: without the signing key and the profile index, kept apart. */
function withoutSigner(meta: JsonObject): JsonObject {
  const { [SIGNER_META]: _signer, [INDEX_META]: _index, ...rest } = meta;
  return rest;
}

/**
 * The index entries of a meta read from a file, or undefined when the file has no index for this
 * generation: none (written before the index), or one left behind by a writer that does not keep it
 * (an older build keeps the member as it found it while the records change; its generation then
 * lags behind the body's).
 *
 * @param keyed Whether the entries are an object keyed by record id (formats 1 to 4) rather than
 * an array in record order (format 5); the other shape is malformed.
 */
function indexOf(
  meta: JsonObject,
  generation: number,
  keyed = true,
): Record<string, JsonObject> | unknown[] | undefined {
  const index = meta[INDEX_META] as { generation?: unknown; entries?: unknown } | undefined;
  if (index === undefined) return undefined;
  const entries = index?.entries;
  if (
    typeof index !== "object" || index === null || typeof index.generation !== "number" ||
    typeof entries !== "object" || entries === null || Array.isArray(entries) === keyed
  ) {
    throw integrity("the profile index is malformed");
  }
  return index.generation === generation ? entries as Record<string, JsonObject> : undefined;
}

/**
 * The decrypted state of one vault. Obtain one with {@link UnlockedVault.create} or
 * {@link UnlockedVault.unlock}; change it; call {@link UnlockedVault.serialize} to get the new file.
 */
export class UnlockedVault {
  #root: Uint8Array<ArrayBuffer>;
  #keys: DerivedKeys;
  #vaultId: Uint8Array<ArrayBuffer>;
  #generation: number;
  #slots: Slot[];
  #records: LiveRecord[];
  /** The same records by base64url id; built when first used (see #byId). */
  #byIdMap: Map<string, LiveRecord> | undefined;
  #meta: JsonObject;
  /** Whether the file read carried the profile index. */
  #indexed: boolean;
  /** The profile index of the file read, not yet given to the records (see #summariesReady). */
  #index: IndexSource | undefined;
  /** The record {@link recordIdByName} found last (see #get). */
  #found: LiveRecord | undefined;
  /** Computes name tags under the current keys (format 4); made when first needed. */
  #tagger: NameTagger | undefined;
  /**
   * Format 4: the records of the file this state was built from, in file order (their table
   * checked), so a write can carry the leading unchanged ones as one run.
   */
  #fileRecords: readonly RecordEntry[] | undefined;
  /** The file this state was read from, as verified (see {@link reload}). */
  #read:
    | {
      file: Uint8Array<ArrayBuffer>;
      parsed: ParsedVaultFile;
      root: Uint8Array<ArrayBuffer>;
      keys: DerivedKeys;
      meta: JsonObject;
      index: IndexSource;
    }
    | undefined;
  /** The writer's signing key, kept in the sealed meta but out of {@link meta}'s view. */
  #signer: SigningKeyPair | undefined;
  /** Set by {@link wipe}: the keys are zeros now, so nothing may be opened or written. */
  #wiped = false;
  /**
   * Read for a listing (./listing.ts): the record lines were never read, so no record is opened
   * and nothing is written from this state ({@link reload} first, as a write does).
   */
  #listing = false;

  /**
   * The key buffers this state holds (root, derived, data keys, signing seed), for
   * {@link wipe} and for the test that reads them after close. Not part of the library API.
   *
   * @returns The buffers, possibly with repeats.
   */
  keyBuffers(): Uint8Array[] {
    const k = this.#keys;
    const out: Uint8Array[] = [this.#root, k.wrap, k.mac, k.meta, k.tag];
    if (this.#read) {
      const r = this.#read.keys;
      out.push(this.#read.root, r.wrap, r.mac, r.meta, r.tag);
    }
    if (this.#signer) out.push(this.#signer.seed);
    for (const r of this.#records) if (r.dataKey) out.push(r.dataKey);
    return out;
  }

  /**
   * Zeroes every key buffer this state holds ({@link keyBuffers}) and refuses any later use that
   * needs a key, so a closed vault can neither open a record nor write a file under zero keys.
   * States this one was reloaded from share its root buffer, which is zeroed with it.
   */
  wipe(): void {
    for (const b of this.keyBuffers()) b.fill(0);
    this.#tagger?.wipe();
    for (const r of this.#records) r.dataKey = undefined;
    this.#wiped = true;
  }

  /**
   * A record by id: the one a lookup by name just found without building the id map (which
   * encodes every id), else from the map.
   */
  #get(id: string): LiveRecord | undefined {
    const hit = this.#found;
    if (hit && hit.key === id && this.#records.includes(hit)) return hit;
    return this.#byId.get(id);
  }

  /** The records by id, built on first use: a lookup by name needs no id of the others. */
  get #byId(): Map<string, LiveRecord> {
    return this.#byIdMap ??= new Map(this.#records.map((r) => [r.key, r]));
  }

  #live(): void {
    if (this.#wiped) {
      throw new HecateError("usage", "This vault was closed: its keys are wiped", {
        hint: "open it again",
      });
    }
  }

  /** Refuses a use that needs the record lines in a state read for a listing (a bug if reached). */
  #withLines(): void {
    if (this.#listing) {
      throw new Error("a vault read for a listing has no record lines (reload it first)");
    }
  }

  /** Whether this state was read for a listing: it lists, and opens and writes nothing. */
  get listingOnly(): boolean {
    return this.#listing;
  }

  private constructor(
    root: Uint8Array<ArrayBuffer>,
    keys: DerivedKeys,
    vaultId: Uint8Array<ArrayBuffer>,
    generation: number,
    slots: Slot[],
    records: LiveRecord[],
    meta: JsonObject,
  ) {
    this.#signer = signerOf(meta);
    this.#indexed = false;
    this.#index = undefined;
    this.#tagger = undefined;
    this.#found = undefined;
    this.#read = undefined;
    this.#fileRecords = undefined;
    meta = withoutSigner(meta);
    this.#root = root;
    this.#keys = keys;
    this.#vaultId = vaultId;
    this.#generation = generation;
    this.#slots = slots;
    this.#records = records;
    this.#byIdMap = undefined;
    this.#meta = meta;
  }

  /**
   * Creates a new empty vault with a random root key and one password slot.
   *
   * @param password The master password.
   * @param options KDF cost.
   * @returns The new vault (not yet written anywhere).
   */
  static async create(password: string, options: CreateVaultOptions): Promise<UnlockedVault> {
    const root = randomBytes(KEY_BYTES);
    const vaultId = randomBytes(16);
    const keys = await deriveKeys(root, vaultId);
    const vault = new UnlockedVault(root, keys, vaultId, 0, [], [], {});
    vault.#slots = [await vault.#passwordSlot(password, options.iterations)];
    return vault;
  }

  /**
   * Unlocks a vault file with the master password, checking the checksum, the password slot, the
   * MAC, the meta and the writer's signature (over the body, or the header of format 3), in that
   * order. Records are opened when used
   * (each must match the profile index); a file without a current index has every record opened
   * here, as before the index (docs/FORMAT.md, "Reading" step 5).
   *
   * @param caller The vault file bytes (copied: the caller may reuse its buffer), or a listing's
   * head ({@link ListingFile}: the state then lists, and refuses to open records or be written).
   * @param options `owned`: the caller never changes `caller` afterwards (it is then not copied).
   * @param password The master password.
   * @returns The unlocked vault.
   * @throws {HecateError} `auth_failed` on a wrong password, `vault_integrity` when anything was
   * altered, `unsupported_version` for another format version.
   */
  static async unlock(
    caller: UnlockSource,
    password: string,
    options: { owned?: boolean } = {},
  ): Promise<UnlockedVault> {
    // One private copy, shared by the parse (records read lazily) and reload()'s comparison: the
    // caller may change its buffer afterwards, unless it gives the buffer up (a fresh read).
    const file = options.owned || caller instanceof ListingFile ? caller : caller.slice();
    const parsed = await checkedFile(file);
    const slot = UnlockedVault.#passwordSlotOf(parsed.body);
    let root: Uint8Array<ArrayBuffer>;
    try {
      root = await unwrapRootWithPassword(
        slot.wrapped,
        password,
        slot.kdf.salt,
        slot.kdf.iterations,
        parsed.body.vaultId,
        slot.id,
      );
    } catch (e) {
      if (e instanceof AuthenticationFailure) {
        throw new HecateError("auth_failed", "Wrong password for this vault", { cause: e });
      }
      throw e;
    }
    return UnlockedVault.#fromRoot(parsed, root, file);
  }

  /**
   * Unlocks a vault file with an age identity: the age slot whose recipient is one of the
   * identities' recipients opens the root key, then every check of {@link unlock} after the
   * password slot applies (MAC, meta, signature).
   *
   * @param file The vault file bytes (owned: not copied), or a listing's head (as for
   * {@link unlock}).
   * @param identities `AGE-SECRET-KEY-1...` identities with their recipients.
   * @returns The unlocked vault and the slot that opened it.
   * @throws {HecateError} `auth_failed` when no age slot is for these identities or the slot does
   * not open, `vault_integrity` when anything was altered, `unsupported_version`.
   */
  static async unlockWithAge(
    file: UnlockSource,
    identities: readonly { identity: string; recipient: string }[],
  ): Promise<{ vault: UnlockedVault; slot: AgeSlot }> {
    const parsed = await checkedFile(file);
    const ages = parsed.body.slots.filter((s): s is AgeSlot => s.kind === "age");
    for (const { identity, recipient } of identities) {
      const slot = ages.find((s) => s.recipient === recipient);
      if (!slot) continue;
      let root: Uint8Array<ArrayBuffer>;
      try {
        root = await openAgeSlot(slot, identity, parsed.body.vaultId);
      } catch (e) {
        if (e instanceof AuthenticationFailure) {
          throw new HecateError("auth_failed", "The age identity does not open this vault", {
            cause: e,
          });
        }
        throw e;
      }
      return { vault: await UnlockedVault.#fromRoot(parsed, root, file), slot };
    }
    throw new HecateError("auth_failed", "No age slot of this vault is for this identity", {
      hint: "the vault owner adds one with 'hecate slot add age RECIPIENT'",
    });
  }

  /**
   * Re-reads a vault file with a root key already known (e.g. after taking the write lock), so a
   * writer always applies its change to the newest contents.
   *
   * @param file The vault file bytes.
   * @returns The vault as the file has it now.
   * @throws {HecateError} `vault_integrity` if the file no longer authenticates under this root key
   * (altered, or rotated by another process).
   */
  async reload(file: Uint8Array<ArrayBuffer>): Promise<UnlockedVault> {
    this.#live();
    const read = this.#read;
    if (read && read.root === this.#root && sameBytes(read.file, file)) {
      // The very bytes this vault verified (no other writer since): build a fresh state from
      // that verification instead of repeating it over the whole file.
      return UnlockedVault.#build(
        read.parsed,
        read.root,
        read.keys,
        structuredClone(read.meta),
        read.index,
        read.file,
      );
    }
    file = file.slice(); // a private copy, as in unlock()
    const parsed = await checkedFile(file);
    if (!timingSafeEqual(parsed.body.vaultId, this.#vaultId)) {
      throw integrity("the vault file was replaced by another vault");
    }
    return UnlockedVault.#fromRoot(parsed, this.#root, file);
  }

  /**
   * As {@link reload}, for a writer under the vault lock: when the file on disk has the size and
   * the exact header and seal lines of the one this state verified, the state is built from that
   * verification without reading the rest (at 10,000 profiles, 10 MiB read and compared per
   * write). The header vouches for everything after the seal line by SHA-256 (format 4: the
   * table and index lines, checked at unlock, and the record lines, checked by the write before
   * any is carried), so a file with the same header either is that file or has a damaged tail;
   * then this state's own verified lines are the ones written, never the damaged ones. Anything
   * else (another writer, another format, a different size) takes the full {@link reload}.
   *
   * @param source The vault file: `openPositioned` for the header, `read` for the full path.
   * @returns The vault as the file has it now.
   * @throws {HecateError} As {@link reload}, and what `source` throws.
   */
  async reloadCurrent(source: {
    openPositioned(): Promise<PositionedFile & { close(): void }>;
    read(): Promise<Uint8Array<ArrayBuffer>>;
  }): Promise<UnlockedVault> {
    this.#live();
    const read = this.#read;
    const head = read && read.root === this.#root && read.parsed.body.indexLine
      ? headLength(read.file)
      : 0;
    if (read && head > 0) {
      const file = await source.openPositioned();
      let same = false;
      try {
        same = file.size === read.file.length &&
          sameBytes(await file.readAt(0, head), read.file.subarray(0, head));
      } finally {
        file.close();
      }
      if (same) {
        return UnlockedVault.#build(
          read.parsed,
          read.root,
          read.keys,
          structuredClone(read.meta),
          read.index,
          read.file,
        );
      }
    }
    return await this.reload(await source.read());
  }

  /**
   * Unlocks a vault file through a slot other than the password's (a PKCS#11 token): the file is
   * checked as for {@link unlock}, then `openRoot` recovers the root key from the parsed header,
   * then the MAC, meta and signature are checked under that key.
   *
   * @param file The vault file bytes (owned: not copied), or a listing's head (as for
   * {@link unlock}).
   * @param openRoot Recovers the root key from the header (throws the credential's own errors).
   * @returns The unlocked vault.
   * @throws {HecateError} What `openRoot` throws, `vault_integrity`, `unsupported_version`.
   */
  static async unlockWithSlot(
    file: UnlockSource,
    openRoot: (body: VaultBody) => Promise<Uint8Array<ArrayBuffer>>,
  ): Promise<UnlockedVault> {
    const parsed = await checkedFile(file);
    const root = await openRoot(parsed.body);
    if (root.length !== KEY_BYTES) {
      root.fill(0);
      throw integrity("a slot holds a root key of the wrong length");
    }
    // A slot opened with another key would fail the MAC here: never a vault under a wrong root.
    return UnlockedVault.#fromRoot(parsed, root, file);
  }

  static #passwordSlotOf(body: VaultBody): PasswordSlot {
    const slots = body.slots.filter((s): s is PasswordSlot => s.kind === "password");
    if (slots.length !== 1) throw integrity("the vault must have exactly one password slot");
    return slots[0]!;
  }

  static async #fromRoot(
    parsed: ParsedVaultFile,
    root: Uint8Array<ArrayBuffer>,
    file: UnlockSource,
  ): Promise<UnlockedVault> {
    const { body } = parsed;
    const keys = await deriveKeys(root, body.vaultId);
    if (!timingSafeEqual(await macBody(keys.mac, parsed.bodyBytes), parsed.seal.mac)) {
      throw integrity("the body MAC does not match");
    }
    if (hasDuplicateIds(body)) throw integrity("duplicate id");
    let meta: JsonObject;
    try {
      meta = parseJsonObject(await openMeta(keys.meta, body.meta, body.vaultId), "meta");
    } catch (e) {
      if (e instanceof AuthenticationFailure) throw integrity("meta blob", e);
      throw e;
    }
    const signer = signerOf(meta);
    if (body.version >= 2) {
      // API-key readers trust the body through this signature alone: check it here too, so a
      // file the password accepts is never one they refuse.
      if (
        !signer ||
        !await verifyEd25519(
          signer.publicKey,
          parsed.seal.sig!,
          signedBodyMessage(parsed.bodyBytes),
        )
      ) throw integrity("the writer's signature does not match");
    }
    let index: IndexSource | undefined;
    if (body.indexLine) {
      // Format 4: the index line, checked against the header and opened now (a few milliseconds
      // of native work at 10,000 profiles); its JSON is parsed only when summaries are needed.
      await checkIndexLine(body.indexLine);
      let plain: Uint8Array<ArrayBuffer>;
      try {
        plain = await openIndex(keys.meta, body.indexLine.bytes, body.vaultId, body.generation);
      } catch (e) {
        if (e instanceof AuthenticationFailure) throw integrity("the profile index", e);
        throw e;
      }
      const keyed = body.version === 4;
      index = memo(() => {
        const line = parseJsonObject(plain, "the profile index");
        const entries = indexOf({ [INDEX_META]: line }, body.generation, keyed);
        if (!entries) throw integrity("the profile index is for another generation");
        return keyed
          ? checkedIndex(entries as Record<string, JsonObject>, body)
          : checkedIndexArray(entries, body);
      });
      indexPlaintexts.set(index, {
        plain,
        generation: body.generation,
        records: body.records.length,
      });
    } else {
      const entries = indexOf(meta, body.generation);
      if (entries) {
        const summaries = checkedIndex(entries as Record<string, JsonObject>, body);
        index = () => summaries;
      }
    }
    return await UnlockedVault.#build(parsed, root, keys, meta, index, file);
  }

  /** The state of a verified file (steps 1-6 of docs/FORMAT.md "Reading" passed). */
  static async #build(
    parsed: ParsedVaultFile,
    root: Uint8Array<ArrayBuffer>,
    keys: DerivedKeys,
    meta: JsonObject,
    index: IndexSource | undefined,
    file: UnlockSource,
  ): Promise<UnlockedVault> {
    const { body } = parsed;
    const listing = file instanceof ListingFile;
    // A listing's head has no record line: nothing to open without the index (format 4 has one).
    if (listing && !index) throw new Error("a listing read a file without an index line");
    // The index entries become the records' summaries (when first needed), which are replaced,
    // never changed in place: they can be shared with a later reload() (cloning 10,000 of them is
    // the slow part).
    const { [INDEX_META]: _index, ...rest } = meta;
    const verifiedMeta = index && !listing ? structuredClone(rest) : undefined;
    const records: LiveRecord[] = body.records.map((entry, i) => new ReadRecord(entry, i));
    if (!index) {
      // No current index (a file from before it, or last written by a build that does not keep
      // it): open every record now, as every reader did then; the next write stores the index.
      for (const [i, r] of records.entries()) {
        await UnlockedVault.#open(keys, body.vaultId, r, i);
        r.summary = recordSummary(r.value!);
      }
    }
    const vault = new UnlockedVault(
      root,
      keys,
      body.vaultId,
      body.generation,
      [...body.slots], // this state's own list: reload() may build another from the same parse
      records,
      meta,
    );
    vault.#indexed = index !== undefined;
    vault.#index = index;
    vault.#listing = listing;
    if (body.region?.table && body.region.tableChecked && !listing) {
      vault.#fileRecords = body.records;
    }
    // Kept for reload(): only with an index, where building opens no record. Not for a listing:
    // its next reload() reads and checks the whole file.
    // `file` is this module's private copy (unlock, reload), never the caller's buffer.
    if (index && verifiedMeta && !(file instanceof ListingFile)) {
      vault.#read = { file, parsed, root, keys, meta: verifiedMeta, index };
    }
    return vault;
  }

  /** Unwraps a record's data key under `keys` if not done yet. */
  static async #dataKey(
    keys: DerivedKeys,
    vaultId: Uint8Array<ArrayBuffer>,
    r: LiveRecord,
    i: number,
  ): Promise<Uint8Array<ArrayBuffer>> {
    if (r.dataKey) return r.dataKey;
    try {
      const sealed = r.entry ?? r.read;
      if (!sealed) throw integrity(`record ${i} has no data key`); // unreachable: new ones do
      return r.dataKey = await unwrapDataKey(keys.wrap, sealed.key, vaultId, r.id);
    } catch (e) {
      if (e instanceof AuthenticationFailure) throw integrity(`record ${i}`, e);
      throw e;
    }
  }

  /**
   * Opens a record read from the file. With an index, the plaintext must match its index entry:
   * both were sealed by the same writer, so a mismatch means a faulty or hostile writer.
   */
  static async #open(
    keys: DerivedKeys,
    vaultId: Uint8Array<ArrayBuffer>,
    r: LiveRecord,
    i: number,
    checkIndex = false,
    tagger?: NameTagger,
  ): Promise<JsonObject> {
    if (r.value) return r.value;
    const dataKey = await UnlockedVault.#dataKey(keys, vaultId, r, i);
    let plain: Uint8Array;
    try {
      plain = await openRecord(dataKey, r.entry!.data, vaultId, r.id, r.entry!.kind);
    } catch (e) {
      if (e instanceof AuthenticationFailure) throw integrity(`record ${i}`, e);
      throw e;
    }
    const value = parseJsonObject(plain, `record ${i}`);
    // The kind is bound by the seal; a plaintext claiming the other kind is a faulty writer's.
    if (recordKindOf(value) !== r.entry!.kind) throw integrity(`record ${i} is not of its kind`);
    if (checkIndex && r.summary !== undefined && !matchesSummary(value, r.summary)) {
      throw integrity(`record ${i} does not match the profile index`);
    }
    // Format 4: the name the record holds must be the one its table entry's tag was made from,
    // since a lookup by name may have found it by that tag alone.
    const tag = r.entry === r.read ? r.read?.nameTag : undefined;
    if (
      checkIndex && tagger && tag &&
      !timingSafeEqual(tagger.tag(value.name, recordKindOf(value)), tag)
    ) {
      throw integrity(`record ${i} does not match its name tag`);
    }
    return r.value = value;
  }

  #openRecord(r: LiveRecord): Promise<JsonObject> {
    this.#withLines();
    return UnlockedVault.#open(
      this.#keys,
      this.#vaultId,
      r,
      this.#records.indexOf(r),
      true,
      this.#nameTagger(),
    );
  }

  /** The name tagger of the current keys. */
  #nameTagger(): NameTagger {
    return this.#tagger ??= new NameTagger(this.#keys.tag);
  }

  /**
   * Gives every record read from the file its summary from the profile index, reading the index
   * if not done yet (format 4 reads it only here). A record opened before then must match its
   * entry, as one opened after.
   *
   * @param collect When given, every record's summary of `kind` (all kinds when undefined) is
   * also pushed onto `out`, in file order, in the same pass (a listing's one loop, not two).
   * @returns Whether `collect` was filled (false when the index was read before: nothing to do).
   * @throws {HecateError} `vault_integrity` when the index is malformed or does not match.
   */
  #summariesReady(
    collect?: { kind: RecordKind | undefined; out: Readonly<JsonObject>[] },
  ): boolean {
    const load = this.#index;
    if (!load) return false;
    const entries = load();
    const records = this.#records;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      let summary = r.summary; // a record changed in this session has its own
      if (summary === undefined) {
        // Only records read from the file lack a summary; the index is in that file's order.
        summary = r instanceof ReadRecord ? entries[r.position] : undefined;
        if (!summary) throw new Error(`record ${i} has no index entry`); // unreachable
        if (r.value && !matchesSummary(r.value, summary)) {
          throw integrity(`record ${i} does not match the profile index`);
        }
        r.summary = summary;
      }
      if (collect && (collect.kind === undefined || summaryKindOf(summary) === collect.kind)) {
        collect.out.push(summary);
      }
    }
    this.#index = undefined;
    return true;
  }

  async #passwordSlot(password: string, iterations: number): Promise<PasswordSlot> {
    const id = randomSlotId();
    const salt = randomBytes(16);
    const wrapped = await wrapRootWithPassword(
      this.#root,
      password,
      salt,
      iterations,
      this.#vaultId,
      id,
    );
    return { id, kind: "password", kdf: { alg: "pbkdf2-sha256", iterations, salt }, wrapped };
  }

  /** The vault id, base64url. Stable for the life of the vault. */
  get id(): string {
    return toBase64Url(this.#vaultId);
  }

  /** How many times the file has been written; goes up by one per save. */
  get generation(): number {
    return this.#generation;
  }

  /** PBKDF2 iterations of the password slot. */
  get passwordIterations(): number {
    return UnlockedVault.#passwordSlotOf(this.#bodyShape()).kdf.iterations;
  }

  #bodyShape(): VaultBody {
    return {
      version: FORMAT_VERSION,
      vaultId: this.#vaultId,
      generation: this.#generation,
      slots: this.#slots,
      records: [],
      meta: new Uint8Array(),
    };
  }

  /**
   * Lists records as id and a deep copy of the stored value, opening every record not opened yet
   * (a cost in the number of records: prefer {@link summaries} and {@link record}).
   *
   * @returns One entry per record, in file order.
   * @throws {HecateError} `vault_integrity` when a record does not open or does not match the
   * profile index.
   */
  async records(): Promise<{ id: string; value: JsonObject }[]> {
    const out: { id: string; value: JsonObject }[] = [];
    for (const r of this.#records) {
      out.push({ id: r.key, value: structuredClone(await this.#openRecord(r)) });
    }
    return out;
  }

  /**
   * One record's value (a deep copy), opening only that record.
   *
   * @param id The record id.
   * @returns The value.
   * @throws {HecateError} `profile_not_found` when `id` names no record, `vault_integrity` when it
   * does not open or does not match the profile index.
   */
  async record(id: string): Promise<JsonObject> {
    this.#live();
    const r = this.#get(id);
    if (!r) throw new HecateError("profile_not_found", "No such record");
    return structuredClone(await this.#openRecord(r));
  }

  /**
   * A key for values kept outside the vault file on a record's behalf (the offline secret cache):
   * derived from the record's data key, so whoever can open the record (the master password, an
   * API key with it in scope) can derive it, and nobody else.
   *
   * @param id The record id.
   * @returns 32 bytes, or undefined for an unknown record.
   */
  async recordSideKey(id: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const r = this.#get(id);
    if (!r) return undefined;
    return await recordSideKeyOf(await this.#dataKeyOf(r), this.#vaultId, r.id);
  }

  /**
   * The profile index, without opening any record: each record's id and summary (name and the
   * fields `server list` shows; see {@link recordSummary}). The summaries are the vault's own
   * (not copied, which would cost more than the rest of a listing): callers must not change them.
   *
   * @returns One entry per record, in file order.
   */
  summaries(): { id: string; summary: Readonly<JsonObject> }[] {
    this.#summariesReady();
    return this.#records.map((r) => ({ id: r.key, summary: r.summary! }));
  }

  /**
   * As {@link summaries}, the summaries alone, in file order: a listing needs no id (each a
   * string made from the table) and no object per record around its summary.
   *
   * @param kind Only the records of this kind (all when omitted).
   * @returns One summary per record, the vault's own objects: callers must not change them.
   */
  summaryValues(kind?: RecordKind): Readonly<JsonObject>[] {
    const out: Readonly<JsonObject>[] = [];
    if (this.#summariesReady({ kind, out })) return out;
    const records = this.#records;
    for (let i = 0; i < records.length; i++) {
      const summary = records[i]!.summary!;
      if (kind === undefined || summaryKindOf(summary) === kind) out.push(summary);
    }
    return out;
  }

  /**
   * The id of the first record of a kind whose index entry has this name (profiles and stored
   * secrets have separate names; format 4, before the index is read: whose name tag is this kind
   * and name's).
   *
   * @param name The profile (or secret) name.
   * @param kind `profile` (the default) or `secret`.
   * @returns The record id, or undefined.
   * @throws {HecateError} `usage` when the vault was closed (its tag key wiped).
   */
  recordIdByName(name: string, kind: RecordKind = "profile"): string | undefined {
    const named = (summary: Readonly<JsonObject>) =>
      summary.name === name && summaryKindOf(summary) === kind;
    if (this.#index) {
      this.#live(); // the tag key: a closed vault has zeros there
      // Format 4, index not read: records read from the file are found by their name tags, which
      // bind the kind (the record must then match its tag and kind when opened); those changed
      // since, by their summaries.
      const want = this.#nameTagger().tag(name, kind);
      this.#found = this.#records.find((r) => {
        if (r.summary !== undefined) return named(r.summary);
        const hit = r.read ? nameTagIs(r.read, want) : undefined;
        return hit ?? named(this.#summaryOf(r));
      });
      return this.#found?.key;
    }
    this.#found = this.#records.find((r) => named(r.summary!));
    return this.#found?.key;
  }

  /**
   * The summary of the first profile named `name`, when known without reading the profile index
   * (format 4 reads it only for listings and writes): a record changed in this session, or any
   * once the index was read. For hints only (e.g. which driver to preload).
   *
   * @param name The profile name.
   * @returns The summary, or undefined when not at hand.
   */
  peekSummary(name: string): Readonly<JsonObject> | undefined {
    const named = (summary: Readonly<JsonObject> | undefined) =>
      summary !== undefined && summary.name === name && summaryKindOf(summary) === "profile";
    // Format 4 before the index is read: only records with a summary of their own are at hand.
    return this.#records.find((r) => named(r.summary))?.summary;
  }

  /** A record's summary, reading the profile index if needed. */
  #summaryOf(r: LiveRecord): JsonObject {
    if (r.summary === undefined) this.#summariesReady();
    return r.summary!;
  }

  /**
   * Whether this vault was read from a file with a current profile index (records opened on
   * demand); false for a file without one, whose records were all opened at unlock.
   */
  get indexed(): boolean {
    return this.#indexed;
  }

  /**
   * Adds a record or replaces the value of an existing one (keeping its data key, so scoped key
   * slots that wrap it stay valid).
   *
   * @param value The JSON object to store.
   * @param id The record to replace; omitted to add a new record.
   * @returns The record id.
   * @throws {HecateError} `profile_not_found` when `id` names no record.
   */
  putRecord(value: JsonObject, id?: string): string {
    const copy = structuredClone(value);
    if (id === undefined) {
      const rid = randomBytes(16);
      const rec: LiveRecord = {
        id: rid,
        key: toBase64Url(rid),
        dataKey: randomBytes(KEY_BYTES),
        value: copy,
        summary: recordSummary(copy),
        entry: undefined,
        rekey: false,
      };
      this.#records.push(rec);
      // Into the map only if one was built: building it maps every record (10,000 ids encoded).
      this.#byIdMap?.set(rec.key, rec);
      return rec.key;
    }
    const rec = this.#byId.get(id);
    if (!rec) throw new HecateError("profile_not_found", "No such record");
    rec.value = copy;
    rec.summary = recordSummary(copy);
    rec.entry = undefined;
    return id;
  }

  /**
   * Removes a record.
   *
   * @param id The record id.
   * @returns Whether a record was removed.
   */
  deleteRecord(id: string): boolean {
    const rec = this.#byId.get(id);
    if (!rec) return false;
    this.#byId.delete(id);
    this.#records.splice(this.#records.indexOf(rec), 1);
    return true;
  }

  /** A deep copy of the vault-level meta object. */
  get meta(): JsonObject {
    return structuredClone(this.#meta);
  }

  /** Replaces the vault-level meta object (the writer's signing key is kept apart from it). */
  set meta(value: JsonObject) {
    this.#meta = withoutSigner(structuredClone(value));
  }

  #apiKeyMeta(): Record<string, ApiKeyMeta> {
    const m = this.#meta[APIKEYS_META];
    return typeof m === "object" && m !== null ? m as Record<string, ApiKeyMeta> : {};
  }

  /**
   * Lists the API keys (as recorded in the meta; never the key text).
   *
   * @returns One entry per key, in slot order.
   */
  apiKeys(): ApiKeyInfo[] {
    const meta = this.#apiKeyMeta();
    return this.#slots.filter(isApiKeySlot).flatMap((s) => {
      const m = meta[toBase64Url(s.id)];
      return m
        ? [{
          id: m.id,
          name: m.name,
          created: m.created,
          expires: m.expires,
          scope: [...m.scope],
          ...(m.policy ? { policy: structuredClone(m.policy) } : {}),
        }]
        : [];
    });
  }

  /** The PKCS#11 slots, in slot order (copies; the header holds nothing secret about them). */
  pkcs11Slots(): Pkcs11Slot[] {
    return this.#slots.filter((s): s is Pkcs11Slot => s.kind === "pkcs11").map((s) => ({ ...s }));
  }

  /**
   * Adds a PKCS#11 slot. `make` is given the root key and the vault id and returns the slot (the
   * token wraps the root key); the root key is not kept by it. Label and creation time go into the
   * sealed meta, as an age slot's do.
   *
   * @param make Wraps the root key on the token.
   * @param label A label for `slot list`.
   * @param created Creation time.
   * @returns The slot added.
   */
  async addPkcs11Slot(
    make: (root: Uint8Array<ArrayBuffer>, vaultId: Uint8Array<ArrayBuffer>) => Promise<Pkcs11Slot>,
    label: string,
    created: Date,
  ): Promise<Pkcs11Slot> {
    this.#live();
    const slot = await make(this.#root, this.#vaultId);
    this.#slots.push(slot);
    const id = toBase64Url(slot.id);
    this.#meta = {
      ...this.#meta,
      [SLOTS_META]: { ...this.#slotMeta(), [id]: { label, created: created.toISOString() } },
    };
    return slot;
  }

  /**
   * Adds an API-key slot wrapping the data keys of `scope`, and returns the key text. The text is
   * not stored anywhere: the caller prints it once.
   *
   * @param options Name, scope, creation and expiry times.
   * @returns The API key text.
   * @throws {HecateError} `already_exists` for a taken name, `profile_not_found` for an unknown
   * record id.
   */
  async addApiKey(options: AddApiKeyOptions): Promise<string> {
    if (this.apiKeys().some((k) => k.name === options.name)) {
      throw new HecateError("already_exists", `An API key named "${options.name}" already exists`);
    }
    for (const id of options.scope) {
      if (!this.#byId.has(id)) {
        throw new HecateError("profile_not_found", "No such record");
      }
    }
    const key = newApiKey();
    const publicKey = await deriveApiKeyPublic(key.secret, this.#vaultId, key.slotId);
    const id = toBase64Url(key.slotId);
    const entry: ApiKeyMeta = {
      id,
      name: options.name,
      created: options.created.toISOString(),
      expires: options.expires ? options.expires.toISOString() : null,
      scope: [...new Set(options.scope)],
      ...(options.policy ? { policy: structuredClone(options.policy) } : {}),
      publicKey: toBase64Url(publicKey),
    };
    this.#meta = { ...this.#meta, [APIKEYS_META]: { ...this.#apiKeyMeta(), [id]: entry } };
    // The real payload is sealed at serialize time, from the data keys current then.
    this.#slots.push({
      id: key.slotId,
      kind: "apikey",
      epk: new Uint8Array(32),
      wrapped: new Uint8Array(),
    });
    return formatApiKey(key);
  }

  /**
   * Removes an API-key slot and re-keys every record it covered, so the removed key opens
   * nothing written from now on. Other keys covering those records get the new data keys when
   * the vault is serialised.
   *
   * @param id The slot id.
   * @returns Whether a slot was removed.
   */
  removeApiKey(id: string): boolean {
    const meta = this.#apiKeyMeta();
    const entry = meta[id];
    const before = this.#slots.length;
    this.#slots = this.#slots.filter((s) => !(isApiKeySlot(s) && toBase64Url(s.id) === id));
    if (!entry && before === this.#slots.length) return false;
    const { [id]: _removed, ...rest } = meta;
    this.#meta = { ...this.#meta, [APIKEYS_META]: rest };
    for (const recordId of entry?.scope ?? []) this.rekeyRecord(recordId);
    return true;
  }

  /**
   * Gives a record a fresh data key (it is re-sealed at the next serialize).
   *
   * @param id The record id.
   * @returns Whether the record exists.
   */
  rekeyRecord(id: string): boolean {
    const rec = this.#byId.get(id);
    if (!rec) return false;
    rec.rekey = true;
    return true;
  }

  #slotMeta(): Record<string, { label?: unknown; created?: unknown }> {
    const m = this.#meta[SLOTS_META];
    return typeof m === "object" && m !== null && !Array.isArray(m)
      ? m as Record<string, { label?: unknown; created?: unknown }>
      : {};
  }

  /**
   * Every key slot: id, kind, label and creation time where the vault records them.
   *
   * @returns One entry per slot, in header order.
   */
  slotInfo(): SlotInfo[] {
    const keys = new Map(this.apiKeys().map((k) => [k.id, k]));
    const meta = this.#slotMeta();
    return this.#slots.map((s) => {
      const id = toBase64Url(s.id);
      const key = keys.get(id);
      const m = meta[id];
      const str = (v: unknown) => typeof v === "string" ? v : null;
      return {
        id,
        kind: s.kind,
        label: key ? key.name : s.kind === "password" ? "master password" : str(m?.label),
        created: key ? key.created : str(m?.created),
        detail: s.kind === "age"
          ? s.recipient
          : s.kind === "pkcs11"
          ? `token "${s.token}" key "${s.key}"`
          : null,
      };
    });
  }

  /**
   * Adds an age slot: the root key wrapped to a teammate's `age1...` recipient.
   *
   * @param recipient A checked X25519 recipient (`checkAgeRecipient`).
   * @param label A label for `slot list`.
   * @param created Creation time.
   * @returns The new slot's id, base64url.
   * @throws {HecateError} `already_exists` when the recipient already has a slot.
   */
  async addAgeSlot(recipient: string, label: string, created: Date): Promise<string> {
    this.#live();
    if (this.#slots.some((s) => s.kind === "age" && s.recipient === recipient)) {
      throw new HecateError("already_exists", "This age recipient already has a slot", {
        hint: "list slots with 'hecate slot list'",
      });
    }
    const slot = await sealAgeSlot(this.#root, recipient, this.#vaultId, randomSlotId());
    const id = toBase64Url(slot.id);
    this.#slots.push(slot);
    this.#meta = {
      ...this.#meta,
      [SLOTS_META]: { ...this.#slotMeta(), [id]: { label, created: created.toISOString() } },
    };
    return id;
  }

  /**
   * Removes a slot that is neither the password slot nor an API key's (API keys go through
   * {@link removeApiKey}, which also re-keys their records). The removed slot's holder can still
   * open the root key of files written before: `rotate` is what cuts them off.
   *
   * @param id The slot id, base64url.
   * @returns Whether a slot was removed.
   */
  removeSlot(id: string): boolean {
    const before = this.#slots.length;
    this.#slots = this.#slots.filter((s) =>
      s.kind === "password" || s.kind === "apikey" || s.kind === "apikey-legacy" ||
      toBase64Url(s.id) !== id
    );
    if (before === this.#slots.length) return false;
    const { [id]: _removed, ...rest } = this.#slotMeta();
    this.#meta = { ...this.#meta, [SLOTS_META]: rest };
    return true;
  }

  /**
   * The API keys made by a format-1 writer. Their slot keys are kept in the meta, so whoever holds
   * any root key this vault ever had can open them: {@link rotate} refuses to carry them over.
   *
   * @returns One entry per such key.
   */
  legacyApiKeys(): ApiKeyInfo[] {
    const legacy = new Set(
      this.#slots.filter((s) => s.kind === "apikey-legacy").map((s) => toBase64Url(s.id)),
    );
    return this.apiKeys().filter((k) => legacy.has(k.id));
  }

  /**
   * Rotates every key below the password: a new root key (so new wrap, MAC and meta keys), new
   * data keys for every record, a new signing key, and a new password slot. API-key slots are
   * re-sealed to their keys' public keys with the new data keys and signer, and age slots re-made
   * for their recipients under the new root key, so existing API keys and teammates keep working
   * while nothing derivable from the old root key opens what is written now. The vault id stays
   * (API keys are bound to it). PKCS#11 slots are dropped (with their labels): they hold the old
   * root key and only their token could wrap the new one (add them again with the token).
   *
   * @param password The master password for the new slot.
   * @param iterations PBKDF2 iterations for the new slot.
   * @throws {HecateError} `usage` while format-1 API keys remain ({@link legacyApiKeys}): their
   * slot keys are known to every old root key, so they must be revoked (and re-created) first.
   */
  async rotate(password: string, iterations: number): Promise<void> {
    const legacy = this.legacyApiKeys();
    if (legacy.length > 0) {
      throw new HecateError(
        "usage",
        `Cannot rotate while API keys made before vault format 2 remain: ${
          legacy.map((k) => `"${k.name}"`).join(", ")
        }`,
        {
          hint:
            "their slot keys are known to the old root key: create replacements with 'hecate apikey create', revoke these with 'hecate apikey revoke NAME', then rotate",
        },
      );
    }
    // Every record is re-sealed under the new keys: open them all with the old ones first.
    for (const r of this.#records) await this.#openRecord(r);
    this.#root = randomBytes(KEY_BYTES);
    this.#keys = await deriveKeys(this.#root, this.#vaultId);
    // Tags are recomputed under the new key (every record is re-sealed); the old pads are zeroed.
    this.#tagger?.wipe();
    this.#tagger = undefined;
    for (const r of this.#records) r.rekey = true;
    this.#signer = await newSigningKeyPair();
    // Age slots get the new root key, each under a new slot key; removed ones are gone already.
    // PKCS#11 slots are dropped: re-wrapping needs the token, and a slot left holding the old
    // root key would fail the new MAC (vault_integrity) when the token opened it.
    const slots: Slot[] = [];
    const dropped: string[] = [];
    for (const s of this.#slots) {
      if (s.kind === "pkcs11") {
        dropped.push(toBase64Url(s.id));
        continue;
      }
      slots.push(
        s.kind === "age" ? await sealAgeSlot(this.#root, s.recipient, this.#vaultId, s.id) : s,
      );
    }
    this.#slots = slots;
    if (dropped.length > 0) {
      const meta = { ...this.#slotMeta() };
      for (const id of dropped) delete meta[id];
      this.#meta = { ...this.#meta, [SLOTS_META]: meta };
    }
    await this.setPassword(password, iterations);
  }

  async #scopeKeys(
    scope: string[],
    found: Map<string, LiveRecord>,
  ): Promise<{ record: string; key: Uint8Array<ArrayBuffer> }[]> {
    const out: { record: string; key: Uint8Array<ArrayBuffer> }[] = [];
    for (const record of scope) {
      const rec = found.get(record);
      if (rec) out.push({ record, key: await this.#dataKeyOf(rec) });
    }
    return out;
  }

  /**
   * Records by id, for a few ids (API-key scopes, re-sealed on every write): found by comparing
   * each read record's id in the table in place, without the id map, whose building encodes
   * every id (10,000 at 10,000 profiles). Many ids, or a map already built: the map.
   */
  #findByIds(ids: Iterable<string>): Map<string, LiveRecord> {
    const out = new Map<string, LiveRecord>();
    const wanted = new Map<string, Uint8Array>();
    for (const id of ids) {
      let bytes: Uint8Array;
      try {
        bytes = fromBase64Url(id);
      } catch {
        continue; // names no record
      }
      if (bytes.length === 16) wanted.set(id, bytes);
    }
    if (this.#byIdMap || wanted.size > FEW_IDS) {
      for (const id of wanted.keys()) {
        const rec = this.#byId.get(id);
        if (rec) out.set(id, rec);
      }
      return out;
    }
    for (const r of this.#records) {
      if (out.size === wanted.size) break;
      for (const [id, bytes] of wanted) {
        // A record of a format-4 table: its id compared in place; any other: its id text.
        const hit = r.read ? recordIdIs(r.read, bytes) : undefined;
        if ((hit ?? r.key === id) && !out.has(id)) out.set(id, r);
      }
    }
    return out;
  }

  #dataKeyOf(r: LiveRecord): Promise<Uint8Array<ArrayBuffer>> {
    this.#live();
    this.#withLines();
    return UnlockedVault.#dataKey(this.#keys, this.#vaultId, r, this.#records.indexOf(r));
  }

  async #sealApiKeySlots(signer: Uint8Array<ArrayBuffer>): Promise<Slot[]> {
    const meta = this.#apiKeyMeta();
    // The records of every scope, found in one pass.
    const found = this.#findByIds(
      this.#slots.flatMap((s) =>
        s.kind === "password" || s.kind === "pkcs11" ? [] : meta[toBase64Url(s.id)]?.scope ?? []
      ),
    );
    const out: Slot[] = [];
    for (const s of this.#slots) {
      const m = s.kind === "password" || s.kind === "pkcs11" ? undefined : meta[toBase64Url(s.id)];
      if (s.kind === "password" || s.kind === "pkcs11" || !m) {
        out.push(s);
        continue;
      }
      const payload = {
        name: m.name,
        created: m.created,
        expires: m.expires,
        scope: await this.#scopeKeys(m.scope, found),
        signer,
        ...(m.policy ? { policy: m.policy } : {}),
      };
      if (s.kind === "apikey" && m.publicKey) {
        out.push(await sealApiKeySlot(fromBase64Url(m.publicKey), this.#vaultId, s.id, payload));
      } else if (s.kind === "apikey-legacy" && m.slotKey) {
        const slotKey = fromBase64Url(m.slotKey);
        out.push(await sealLegacyApiKeySlot(slotKey, s.salt, this.#vaultId, s.id, payload));
      } else {
        out.push(s);
      }
    }
    return out;
  }

  /**
   * Re-wraps the root key under a new password (new salt, new slot id). Records are untouched.
   *
   * @param password The new master password.
   * @param iterations PBKDF2 iterations for the new slot.
   */
  async setPassword(password: string, iterations: number): Promise<void> {
    const slot = await this.#passwordSlot(password, iterations);
    this.#slots = [slot, ...this.#slots.filter((s) => s.kind !== "password")];
  }

  /**
   * When the index of the file read was not parsed yet and this state's records are that file's
   * records, none opened or changed, in their order, followed only by new ones: the verified old
   * plaintext and the new records' entries, for {@link extendedIndex}. The old entries are then
   * carried forward as their text, as unchanged record lines are (an add at 10,000 profiles
   * neither parses nor serialises them). Anything else (a record removed, changed or opened):
   * undefined, and the index is read and written whole.
   */
  #extendedIndexInput():
    | {
      old: { plain: Uint8Array; generation: number };
      added: JsonObject[];
    }
    | undefined {
    const old = this.#index && indexPlaintexts.get(this.#index);
    if (!old || this.#records.length < old.records) return undefined;
    for (let i = 0; i < old.records; i++) {
      const r = this.#records[i]!;
      if (
        !r.read || r.entry !== r.read || r.summary !== undefined || r.value !== undefined ||
        r.rekey
      ) return undefined;
    }
    const added: JsonObject[] = [];
    for (let i = old.records; i < this.#records.length; i++) {
      const r = this.#records[i]!;
      if (r.read || r.summary === undefined) return undefined;
      added.push(r.summary);
    }
    return { old, added };
  }

  /** Every record's index entry in record order (summaries ready): format 5's `entries`. */
  #indexEntries(): JsonObject[] {
    return this.#records.map((r) => r.summary!);
  }

  /**
   * Produces the next file: generation plus one, changed records re-sealed, body MAC and checksum.
   * The in-memory generation advances only when the caller commits (see {@link markSaved}).
   *
   * @returns The file bytes and the generation they carry.
   */
  async serialize(): Promise<{ bytes: Uint8Array<ArrayBuffer>; generation: number }> {
    const { parts, generation } = await this.serializeParts();
    return { bytes: joinParts(parts), generation };
  }

  /**
   * As {@link serialize}, the file in parts to be written in turn (the header and seal lines,
   * then the rest), not joined into one buffer: a large vault's file is not copied once more.
   *
   * @returns The parts, in file order, and the generation they carry.
   */
  async serializeParts(): Promise<{ parts: Uint8Array[]; generation: number }> {
    this.#live();
    this.#withLines();
    const extended = this.#extendedIndexInput();
    if (!extended) this.#summariesReady();
    const tagger = this.#nameTagger();
    // The leading records that are the file's first ones, unchanged and in order: handed over as
    // a count and copied as one run (an add at 10,000 profiles makes no step per carried record).
    const source = this.#fileRecords;
    let lead = 0;
    if (source) {
      const n = Math.min(source.length, this.#records.length);
      while (lead < n) {
        const r = this.#records[lead]!;
        if (r.read !== source[lead] || r.entry !== r.read || r.rekey) break;
        lead++;
      }
    }
    const records: RecordEntry[] = [];
    const nameTags: (Uint8Array | undefined)[] = [];
    for (let i = lead; i < this.#records.length; i++) {
      const r = this.#records[i]!;
      if (r.rekey) {
        await this.#openRecord(r); // with the data key it has now
        const retired = r.dataKey; // this state's own copy: nothing else holds it
        r.dataKey = randomBytes(KEY_BYTES);
        retired?.fill(0);
        r.entry = undefined;
        r.rekey = false;
      }
      // Only changed records are sealed again; the others keep their bytes.
      if (!r.entry) {
        const dataKey = await this.#dataKeyOf(r);
        const value = await this.#openRecord(r);
        r.entry = {
          id: r.id,
          kind: recordKindOf(value),
          key: await wrapDataKey(this.#keys.wrap, dataKey, this.#vaultId, r.id),
          data: await sealRecord(
            dataKey,
            utf8(JSON.stringify(value)),
            this.#vaultId,
            r.id,
            recordKindOf(value),
          ),
        };
      }
      records.push(r.entry);
      // An unchanged record keeps the tag it was read with (same name, same root key): undefined
      // tells serializeBody to copy it from the table, with no view made per record.
      nameTags.push(
        r.entry === r.read && hasNameTag(r.entry)
          ? undefined
          : tagger.tag(r.summary!.name, summaryKindOf(r.summary!)),
      );
    }
    const generation = this.#generation + 1;
    let indexPlain = extended && extendedIndex(extended.old, generation, extended.added);
    if (!indexPlain) {
      this.#summariesReady();
      indexPlain = utf8(JSON.stringify({ generation, entries: this.#indexEntries() }));
    }
    // A format-1 vault gets its signing key on its first format-2 write.
    const signer = this.#signer ??= await newSigningKeyPair();
    // API-key slots are re-sealed on every write from the data keys current now, so re-keying a
    // record (revoke, rotate) can never leave a remaining key with a stale data key.
    this.#slots = await this.#sealApiKeySlots(signer.publicKey);
    const { bodyBytes, lines } = await serializeBody(
      {
        version: FORMAT_VERSION,
        vaultId: this.#vaultId,
        generation,
        slots: this.#slots,
        records,
        // Format 4: the index is its own line, out of the header the seal covers.
        meta: await sealMeta(
          this.#keys.meta,
          utf8(JSON.stringify(withSigner(this.#meta, signer))),
          this.#vaultId,
        ),
        indexLine: {
          bytes: await sealIndex(
            this.#keys.meta,
            indexPlain,
            this.#vaultId,
            generation,
          ),
        },
      },
      nameTags,
      source && lead > 0 ? { records: source, count: lead } : undefined,
    );
    const seal = {
      sha256: await sha256(bodyBytes),
      mac: await macBody(this.#keys.mac, bodyBytes),
      sig: await signEd25519(signer.seed, signedBodyMessage(bodyBytes)),
    };
    return { parts: [assembleHead(bodyBytes, seal), ...lines], generation };
  }

  // Hooks for formats outside the vault file (backup bundles, src/backup/): the key is derived
  // from the root key under the caller's own label, so the root key itself never leaves.

  /** The vault id and the password slot as stored, for a bundle header. */
  passwordSlotCopy(): { vaultId: Uint8Array<ArrayBuffer>; slot: PasswordSlot } {
    return {
      vaultId: this.#vaultId,
      slot: UnlockedVault.#passwordSlotOf(this.#bodyShape()),
    };
  }

  /**
   * HKDF-SHA256 of the root key with a salt and a label naming the purpose.
   *
   * @param salt Salt bytes.
   * @param label A label that no other use of the root key shares.
   * @returns A 32-byte key.
   */
  deriveExternalKey(
    salt: Uint8Array<ArrayBuffer>,
    label: string,
  ): Promise<Uint8Array<ArrayBuffer>> {
    return hkdfSha256(this.#root, salt, utf8(label));
  }

  /**
   * Records that the bytes from {@link serialize} were durably written.
   *
   * @param generation The generation that was written.
   */
  markSaved(generation: number): void {
    this.#generation = generation;
  }
}

/**
 * Derives the side key of a record (see {@link UnlockedVault.recordSideKey}) from its data key.
 *
 * @param dataKey The record's data key.
 * @param vaultId The vault id.
 * @param recordId The record id.
 * @returns 32 bytes.
 */
export function recordSideKeyOf(
  dataKey: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  recordId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return hkdfSha256(dataKey, concatBytes(vaultId, recordId), utf8("hecate-vault/2 side"));
}
