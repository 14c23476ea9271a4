/**
 * The backup bundle format (docs/FORMAT.md, "Backup bundle"): the vault file and the audit
 * trail files, encrypted and authenticated with AES-256-GCM under a key derived from the vault's
 * root key, with a copy of the vault's password slot in the header so that the master password
 * alone opens it. No file system here: bytes in, bytes out.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { concatBytes, fromUtf8, timingSafeEqual, toBase64Url, utf8 } from "../vault/encoding.ts";
import { MAX_PBKDF2_ITERATIONS, MIN_PBKDF2_ITERATIONS } from "../vault/format.ts";
import { associatedData, passwordBytes } from "../vault/keyring.ts";
import {
  AuthenticationFailure,
  hkdfSha256,
  KEY_BYTES,
  open,
  pbkdf2Sha256,
  randomBytes,
  seal,
  sha256,
} from "../vault/primitives.ts";
import type { UnlockedVault } from "../vault/vault.ts";
import { VAULT_FILE } from "../vault/store.ts";

/** The 8 bytes every bundle starts with. */
export const BUNDLE_MAGIC = "HECATEBK";
/** The bundle format version. */
export const BUNDLE_VERSION = 1;
/** HKDF label of the payload key. */
export const BUNDLE_LABEL = "hecate-backup/1 payload";
/** Bytes of the clear header (also the payload's associated data). */
export const HEADER_BYTES = 148;
/** The largest bundle accepted (the whole bundle is held in memory). */
export const MAX_BUNDLE_BYTES = 1024 * 1024 * 1024;

const WRAPPED_ROOT_BYTES = 12 + KEY_BYTES + 16;

/** One file carried by a bundle. */
export interface BundleFile {
  /** File name inside the home directory (no directories but `audit.segments/`). */
  name: string;
  /** Its bytes. */
  bytes: Uint8Array<ArrayBuffer>;
}

/**
 * The manifest stored (encrypted) at the start of the payload.
 *
 * @example
 * ```ts ignore
 * const { manifest } = await verifyBackup({ file, password });
 * console.log(manifest.files.map((f) => f.name)); // ["vault.hecate", "audit.jsonl"]
 * ```
 */
export interface BundleManifest {
  /** Always `hecate-backup`. */
  format: "hecate-backup";
  /** {@link BUNDLE_VERSION}. */
  version: number;
  /** UTC ISO-8601 time the bundle was made. */
  created: string;
  /** Why it was made: `manual`, `profile-remove`, `restore`, `import`, `export`, ... */
  reason: string;
  /** The vault id (base64url). */
  vaultId: string;
  /** The generation of the vault file inside. */
  generation: number;
  /** The files, in payload order, with sizes and SHA-256 (hex). */
  files: { name: string; size: number; sha256: string }[];
}

/** A bundle after authentication. */
export interface OpenedBundle {
  /** The manifest. */
  manifest: BundleManifest;
  /** The files. */
  files: BundleFile[];
}

function u32(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A file name in the home directory, or a closed audit segment in `audit.segments/`. */
const FILE_NAME = /^(?:audit\.segments\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Parsed clear header. */
interface Header {
  vaultId: Uint8Array<ArrayBuffer>;
  slotId: Uint8Array<ArrayBuffer>;
  salt: Uint8Array<ArrayBuffer>;
  iterations: number;
  wrapped: Uint8Array<ArrayBuffer>;
  bundleSalt: Uint8Array<ArrayBuffer>;
}

function encodeHeader(h: Header): Uint8Array<ArrayBuffer> {
  const out = concatBytes(
    utf8(BUNDLE_MAGIC),
    u32(BUNDLE_VERSION),
    h.vaultId,
    h.slotId,
    h.salt,
    u32(h.iterations),
    h.wrapped,
    h.bundleSalt,
  );
  if (out.length !== HEADER_BYTES) throw new RangeError("Bundle header has the wrong size");
  return out;
}

function damaged(what: string): HecateError {
  return new HecateError("vault_integrity", `Backup bundle is damaged: ${what}`);
}

function decodeHeader(bytes: Uint8Array<ArrayBuffer>): Header {
  if (bytes.length < HEADER_BYTES + 12 + 16) throw damaged("too short");
  if (bytes.length > MAX_BUNDLE_BYTES) throw damaged("too large");
  if (!timingSafeEqual(bytes.subarray(0, 8), utf8(BUNDLE_MAGIC))) {
    throw damaged("not a Hecate backup bundle");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8);
  if (version !== BUNDLE_VERSION) {
    throw new HecateError(
      "unsupported_version",
      `Backup bundle version ${version} is not supported`,
    );
  }
  let at = 12;
  const take = (n: number) => bytes.slice(at, at += n);
  const vaultId = take(16);
  const slotId = take(8);
  const salt = take(16);
  const iterations = view.getUint32(at);
  at += 4;
  // Bounded before any work: an altered count must not make us spin for hours.
  if (iterations < MIN_PBKDF2_ITERATIONS || iterations > MAX_PBKDF2_ITERATIONS) {
    throw damaged("implausible KDF iteration count");
  }
  return {
    vaultId,
    slotId,
    salt,
    iterations,
    wrapped: take(WRAPPED_ROOT_BYTES),
    bundleSalt: take(32),
  };
}

/**
 * Seals files into a bundle under the vault's root key.
 *
 * @param vault The unlocked vault whose file is inside (its password slot goes in the header).
 * @param files The vault file first, then the audit trail files.
 * @param meta Reason and generation for the manifest.
 * @returns The bundle bytes and its manifest.
 */
export async function sealBundle(
  vault: UnlockedVault,
  files: readonly BundleFile[],
  meta: { reason: string; generation: number; now?: Date },
): Promise<{ bytes: Uint8Array<ArrayBuffer>; manifest: BundleManifest }> {
  const { vaultId, slot } = vault.passwordSlotCopy();
  if (slot.wrapped.length !== WRAPPED_ROOT_BYTES) throw new RangeError("Unexpected slot size");
  for (const f of files) {
    if (!FILE_NAME.test(f.name)) throw new RangeError(`Bad bundle file name ${f.name}`);
  }
  const manifest: BundleManifest = {
    format: "hecate-backup",
    version: BUNDLE_VERSION,
    created: (meta.now ?? new Date()).toISOString(),
    reason: meta.reason,
    vaultId: toBase64Url(vaultId),
    generation: meta.generation,
    files: await Promise.all(
      files.map(async (f) => ({
        name: f.name,
        size: f.bytes.length,
        sha256: hex(await sha256(f.bytes)),
      })),
    ),
  };
  const manifestBytes = utf8(JSON.stringify(manifest));
  const payload = concatBytes(
    u32(manifestBytes.length),
    manifestBytes,
    ...files.map((f) => f.bytes),
  );
  const bundleSalt = randomBytes(32);
  const key = await vault.deriveExternalKey(bundleSalt, BUNDLE_LABEL);
  const header = encodeHeader({
    vaultId,
    slotId: slot.id,
    salt: slot.kdf.salt,
    iterations: slot.kdf.iterations,
    wrapped: slot.wrapped,
    bundleSalt,
  });
  // `seal` returns nonce || ciphertext || tag; the whole header is the associated data.
  return { bytes: concatBytes(header, await seal(key, payload, header)), manifest };
}

/**
 * Opens bundles with a master password, remembering the password-derived key per (salt,
 * iterations) so that checking several bundles of one vault costs one PBKDF2 run.
 */
export class BundleOpener {
  readonly #password: Uint8Array<ArrayBuffer>;
  readonly #keks = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();

  /** @param password The master password the vault had when the bundle was made. */
  constructor(password: string) {
    this.#password = passwordBytes(password);
  }

  #kek(salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<Uint8Array<ArrayBuffer>> {
    const id = `${toBase64Url(salt)}/${iterations}`;
    let k = this.#keks.get(id);
    if (!k) {
      k = pbkdf2Sha256(this.#password, salt, iterations);
      this.#keks.set(id, k);
    }
    return k;
  }

  /**
   * Authenticates and decrypts a bundle.
   *
   * @param bytes The bundle.
   * @returns Its manifest and files.
   * @throws {HecateError} `auth_failed` when the password does not open the slot copy (a wrong
   * password, or an altered slot), `vault_integrity` when anything else was altered,
   * `unsupported_version` for another bundle version.
   */
  async open(bytes: Uint8Array<ArrayBuffer>): Promise<OpenedBundle> {
    const h = decodeHeader(bytes);
    const header = bytes.slice(0, HEADER_BYTES);
    let root: Uint8Array<ArrayBuffer>;
    try {
      const kek = await this.#kek(h.salt, h.iterations);
      root = await open(kek, h.wrapped, associatedData("password-slot", h.vaultId, h.slotId));
    } catch (e) {
      if (!(e instanceof AuthenticationFailure)) throw e;
      throw new HecateError("auth_failed", "Wrong password for this backup bundle", {
        hint: "a bundle opens with the master password the vault had when the bundle was made",
      });
    }
    const key = await hkdfSha256(root, h.bundleSalt, utf8(BUNDLE_LABEL));
    let payload: Uint8Array<ArrayBuffer>;
    try {
      payload = await open(key, bytes.slice(HEADER_BYTES), header);
    } catch (e) {
      if (!(e instanceof AuthenticationFailure)) throw e;
      throw damaged("authentication failed");
    }
    return await parsePayload(payload, h.vaultId);
  }
}

/** The most files a bundle may list (the trail's segments plus the vault). */
const MAX_FILES = 100_000;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const REASON = /^[a-z0-9-]{1,64}$/;

/** Checks the manifest's shape: every field a reader uses has the type it expects. */
function checkManifest(m: unknown, vaultId: string): BundleManifest {
  if (typeof m !== "object" || m === null || Array.isArray(m)) throw damaged("manifest shape");
  const o = m as Record<string, unknown>;
  if (o.format !== "hecate-backup" || o.vaultId !== vaultId) {
    throw damaged("manifest does not match the header");
  }
  const int = (v: unknown, min: number) =>
    typeof v === "number" && Number.isSafeInteger(v) && v >= min;
  if (
    o.version !== BUNDLE_VERSION || typeof o.created !== "string" ||
    Number.isNaN(Date.parse(o.created)) || typeof o.reason !== "string" ||
    !REASON.test(o.reason) || !int(o.generation, 1) || !Array.isArray(o.files) ||
    o.files.length > MAX_FILES
  ) {
    throw damaged("manifest fields");
  }
  const names = new Set<string>();
  for (const f of o.files as unknown[]) {
    const e = f as Record<string, unknown> | null;
    if (
      typeof e !== "object" || e === null || typeof e.name !== "string" ||
      !FILE_NAME.test(e.name) || names.has(e.name) || !int(e.size, 0) ||
      typeof e.sha256 !== "string" || !SHA256_HEX.test(e.sha256)
    ) {
      throw damaged("file table");
    }
    names.add(e.name);
  }
  // A bundle without the vault file restores nothing usable: refuse it as damaged.
  if (!names.has(VAULT_FILE)) throw damaged("no vault file");
  return m as BundleManifest;
}

/**
 * Parses a decrypted payload: the manifest, then each file it lists, checked against its size
 * and SHA-256. Exported for the property-based tests; the payload is authenticated before this
 * runs, so a failure means a writer bug or a key holder's forgery, reported as damage.
 *
 * @param payload The decrypted payload.
 * @param vaultId The vault id from the header.
 * @returns The manifest and files.
 * @throws {HecateError} `vault_integrity` for anything malformed.
 */
export async function parsePayload(
  payload: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
): Promise<OpenedBundle> {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (payload.length < 4) throw damaged("payload too short");
  const mlen = view.getUint32(0);
  if (4 + mlen > payload.length) throw damaged("manifest length");
  let parsed: unknown;
  try {
    parsed = JSON.parse(fromUtf8(payload.subarray(4, 4 + mlen)));
  } catch {
    throw damaged("manifest is not JSON");
  }
  const manifest = checkManifest(parsed, toBase64Url(vaultId));
  const files: BundleFile[] = [];
  let at = 4 + mlen;
  for (const f of manifest.files) {
    if (at + f.size > payload.length) throw damaged("file table");
    const bytes = payload.slice(at, at += f.size);
    if (hex(await sha256(bytes)) !== f.sha256) throw damaged(`file ${f.name}`);
    files.push({ name: f.name, bytes });
  }
  if (at !== payload.length) throw damaged("trailing bytes");
  return { manifest, files };
}
