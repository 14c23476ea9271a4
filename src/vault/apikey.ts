/**
 * API-key slots: the key text, the key pair derived from it, and the sealed scope payload.
 * Pure: no file system and no clock (callers pass `now`).
 *
 * Key text: `hcx_<b64u(slot id, 8 bytes)>_<b64u(secret, 32 bytes)>`. The secret has full entropy,
 * so one HKDF step (no slow KDF) turns it into an X25519 private key, and the slot is sealed to
 * that key pair as age seals to a recipient (docs/FORMAT.md, "API-key slot"):
 *
 * ```text
 * k       = HKDF-SHA256(IKM = secret, salt = "", info = AAD2("apikey-x25519", vault_id, slot_id))
 * P       = X25519(k, 9)                     (kept only in the sealed meta, never in the clear)
 * epk     = X25519(e, 9) for a fresh random e, per sealing
 * K_slot  = HKDF-SHA256(IKM = X25519(e, P), salt = epk || P, info = AAD2("apikey-slot", vault_id, slot_id))
 * wrapped = SEAL(K_slot, utf8(JSON(payload)), AAD2("apikey-slot", vault_id, slot_id))
 * payload = {"name", "created", "expires", "scope": [{"record", "key"}], "signer"}
 * ```
 *
 * The writer re-seals with only `P`, so nothing a root-key holder keeps opens a slot sealed after
 * a `rotate`; `signer` is the writer's Ed25519 verifying key, so the key holder can check that the
 * body was written by the root-key side before it trusts a record. The payload carries the data
 * keys of the records in scope and nothing else.
 *
 * Format-1 ("legacy") slots, sealed under an HKDF slot key that the meta also kept, are still
 * read and re-sealed until a `rotate`.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { concatBytes, fromBase64Url, fromUtf8, toBase64Url, utf8 } from "./encoding.ts";
import type { ApiKeySlot, LegacyApiKeySlot } from "./format.ts";
import { associatedData, associatedDataV2 } from "./keyring.ts";
import { x25519, x25519PublicKey } from "./asymmetric.ts";
import {
  AuthenticationFailure,
  hkdfSha256,
  KEY_BYTES,
  open,
  randomBytes,
  seal,
} from "./primitives.ts";

/** The prefix every Hecate API key starts with, so scanners and people recognise one. */
export const API_KEY_PREFIX = "hcx_";
const KEY_TEXT = /^hcx_([A-Za-z0-9_-]{11})_([A-Za-z0-9_-]{43})$/;

/** One record an API key may open. */
export interface ScopeEntry {
  /** Record id, base64url. */
  record: string;
  /** The record's data key. */
  key: Uint8Array<ArrayBuffer>;
}

/**
 * Zero-trust checks a server applies to every request made with the key (the gateway; the CLI
 * records the host). Absent in payloads written before them: no check, today's behaviour.
 */
export interface ApiKeyPolicy {
  /** CIDR blocks the client address must be in (IPv4 or IPv6); absent: any address. */
  allowFrom?: string[];
  /** Pattern the User-Agent must match (`*` any run of characters); absent: any. */
  userAgent?: string;
  /** Token-bucket rate, `N/PERIOD` (e.g. `100/1m`); absent: no limit. */
  rate?: string;
  /**
   * Whether the key may hand raw credentials out (`run`, `env`, `vault.endpoint`). Absent (keys
   * made before this existed, or by the library without it): allowed, as before; `apikey create`
   * always writes it, false unless `--allow-credentials`.
   */
  credentials?: boolean;
  /**
   * Access level: `read` makes every database session the key opens read-only (gateway,
   * `hecate query`, the library; see docs/SECURITY.md for what each engine enforces); absent
   * (older keys): `write`, as before.
   */
  level?: "read" | "write";
}

/** What an API-key slot seals: authenticated by the key itself. */
export interface ApiKeyPayload {
  /** The key's name (unique in the vault). */
  name: string;
  /** Creation time, ISO 8601. */
  created: string;
  /** Expiry time, ISO 8601, or null for never. */
  expires: string | null;
  /** Records in scope with their data keys. */
  scope: ScopeEntry[];
  /** The writer's Ed25519 verifying key; null only in a payload a format-1 writer sealed. */
  signer: Uint8Array<ArrayBuffer> | null;
  /** The key's checks; absent in keys made before them. */
  policy?: ApiKeyPolicy | undefined;
}

/** The two parts of an API key. */
export interface ParsedApiKey {
  /** Slot id (8 bytes). */
  slotId: Uint8Array<ArrayBuffer>;
  /** The 256-bit secret. */
  secret: Uint8Array<ArrayBuffer>;
}

/**
 * Formats an API key for printing (once, at creation).
 *
 * @param key Slot id and secret.
 * @returns The key text.
 */
export function formatApiKey(key: ParsedApiKey): string {
  return `${API_KEY_PREFIX}${toBase64Url(key.slotId)}_${toBase64Url(key.secret)}`;
}

/**
 * Parses API key text (surrounding whitespace ignored).
 *
 * @param text The key text.
 * @returns Slot id and secret.
 * @throws {HecateError} `auth_failed` when the text is not a Hecate API key (never echoing it).
 */
export function parseApiKey(text: string): ParsedApiKey {
  const m = KEY_TEXT.exec(text.trim());
  if (m) {
    try {
      return { slotId: fromBase64Url(m[1]!), secret: fromBase64Url(m[2]!) };
    } catch {
      // fall through to the one error below
    }
  }
  throw new HecateError("auth_failed", "The API key is malformed", {
    hint: `an API key starts with "${API_KEY_PREFIX}"; check HECATE_API_KEY or --api-key-file`,
  });
}

/**
 * Makes a new random API key.
 *
 * @returns Slot id and secret.
 */
export function newApiKey(): ParsedApiKey {
  return { slotId: randomBytes(8), secret: randomBytes(KEY_BYTES) };
}

/**
 * Derives the X25519 private key of an API key (format 2).
 *
 * @param secret The 32-byte secret from the key text.
 * @param vaultId The vault id.
 * @param slotId The slot id.
 * @returns The private key seed.
 */
export function deriveApiKeyPrivate(
  secret: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return hkdfSha256(secret, new Uint8Array(), associatedDataV2("apikey-x25519", vaultId, slotId));
}

/**
 * The X25519 public key of an API key: what the vault's writer keeps (sealed) to re-seal the slot.
 *
 * @param secret The 32-byte secret from the key text.
 * @param vaultId The vault id.
 * @param slotId The slot id.
 * @returns The public key.
 */
export async function deriveApiKeyPublic(
  secret: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return await x25519PublicKey(await deriveApiKeyPrivate(secret, vaultId, slotId));
}

function slotAad(vaultId: Uint8Array, slotId: Uint8Array): Uint8Array<ArrayBuffer> {
  return associatedDataV2("apikey-slot", vaultId, slotId);
}

async function x25519SlotKey(
  shared: Uint8Array<ArrayBuffer>,
  epk: Uint8Array,
  recipient: Uint8Array,
  vaultId: Uint8Array,
  slotId: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  return await hkdfSha256(shared, concatBytes(epk, recipient), slotAad(vaultId, slotId));
}

function payloadJson(payload: ApiKeyPayload): Uint8Array<ArrayBuffer> {
  return utf8(JSON.stringify({
    name: payload.name,
    created: payload.created,
    expires: payload.expires,
    scope: payload.scope.map((s) => ({ record: s.record, key: toBase64Url(s.key) })),
    ...(payload.signer ? { signer: toBase64Url(payload.signer) } : {}),
    ...(payload.policy ? { policy: payload.policy } : {}),
  }));
}

/**
 * Seals a payload into a format-2 API-key slot, to the key's X25519 public key, under a fresh
 * ephemeral key pair.
 *
 * @param recipient The key's X25519 public key ({@link deriveApiKeyPublic}).
 * @param vaultId The vault id.
 * @param slotId The slot id.
 * @param payload Name, times, scope and signer.
 * @returns The slot.
 */
export async function sealApiKeySlot(
  recipient: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
  payload: ApiKeyPayload,
): Promise<ApiKeySlot> {
  const ephemeral = randomBytes(KEY_BYTES);
  const epk = await x25519PublicKey(ephemeral);
  const shared = await x25519(ephemeral, recipient);
  const key = await x25519SlotKey(shared, epk, recipient, vaultId, slotId);
  const wrapped = await seal(key, payloadJson(payload), slotAad(vaultId, slotId));
  return { id: slotId, kind: "apikey", epk, wrapped };
}

/**
 * Opens a format-2 API-key slot with the key's secret.
 *
 * @param secret The 32-byte secret from the key text.
 * @param slot The slot.
 * @param vaultId The vault id.
 * @returns The payload.
 * @throws {AuthenticationFailure} When the key does not open the slot.
 * @throws {HecateError} `vault_integrity` when an authenticated payload is malformed.
 */
export async function openApiKeySlot(
  secret: Uint8Array<ArrayBuffer>,
  slot: ApiKeySlot,
  vaultId: Uint8Array<ArrayBuffer>,
): Promise<ApiKeyPayload> {
  const k = await deriveApiKeyPrivate(secret, vaultId, slot.id);
  let shared: Uint8Array<ArrayBuffer> | undefined;
  let key: Uint8Array<ArrayBuffer> | undefined;
  let plain: Uint8Array | undefined;
  try {
    const recipient = await x25519PublicKey(k);
    shared = await x25519(k, slot.epk);
    key = await x25519SlotKey(shared, slot.epk, recipient, vaultId, slot.id);
    plain = await open(key, slot.wrapped, slotAad(vaultId, slot.id));
    const payload = parsePayload(plain);
    if (!payload.signer) throw badPayload(); // a format-2 writer always names itself
    return payload;
  } finally {
    // The private key, the shared secret, the slot key and the plaintext (data keys in base64)
    // are needed only here.
    for (const b of [k, shared, key, plain]) b?.fill(0);
  }
}

/**
 * Derives a format-1 slot key from the key's secret.
 *
 * @param secret The 32-byte secret from the key text.
 * @param salt The slot's salt.
 * @param vaultId The vault id.
 * @param slotId The slot id.
 * @returns The slot key.
 */
export function deriveLegacySlotKey(
  secret: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return hkdfSha256(secret, salt, associatedData("apikey-slot", vaultId, slotId));
}

/**
 * Seals a payload into a format-1 ("legacy") API-key slot under its HKDF slot key.
 *
 * @param slotKey The slot key ({@link deriveLegacySlotKey}).
 * @param salt The slot's salt.
 * @param vaultId The vault id.
 * @param slotId The slot id.
 * @param payload Name, times, scope and signer.
 * @returns The slot.
 */
export async function sealLegacyApiKeySlot(
  slotKey: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
  payload: ApiKeyPayload,
): Promise<LegacyApiKeySlot> {
  const wrapped = await seal(
    slotKey,
    payloadJson(payload),
    associatedData("apikey-slot", vaultId, slotId),
  );
  return { id: slotId, kind: "apikey-legacy", salt, wrapped };
}

/**
 * Opens a format-1 ("legacy") API-key slot with the key's secret.
 *
 * @param secret The 32-byte secret from the key text.
 * @param slot The slot.
 * @param vaultId The vault id.
 * @returns The payload.
 * @throws {AuthenticationFailure} When the key does not open the slot.
 * @throws {HecateError} `vault_integrity` when an authenticated payload is malformed.
 */
export async function openLegacyApiKeySlot(
  secret: Uint8Array<ArrayBuffer>,
  slot: LegacyApiKeySlot,
  vaultId: Uint8Array<ArrayBuffer>,
): Promise<ApiKeyPayload> {
  const slotKey = await deriveLegacySlotKey(secret, slot.salt, vaultId, slot.id);
  let plain: Uint8Array | undefined;
  try {
    plain = await open(slotKey, slot.wrapped, associatedData("apikey-slot", vaultId, slot.id));
    return parsePayload(plain);
  } finally {
    slotKey.fill(0);
    plain?.fill(0);
  }
}

function badPayload(): HecateError {
  return new HecateError("vault_integrity", "Vault failed authentication: API-key slot payload");
}

function keyBytes(v: unknown): Uint8Array<ArrayBuffer> {
  let key: Uint8Array<ArrayBuffer>;
  try {
    key = fromBase64Url(String(v));
  } catch {
    throw badPayload();
  }
  if (key.length !== KEY_BYTES) throw badPayload();
  return key;
}

function parsePayload(plain: Uint8Array): ApiKeyPayload {
  let v: unknown;
  try {
    v = JSON.parse(fromUtf8(plain));
  } catch {
    throw badPayload();
  }
  const o = v as Record<string, unknown>;
  if (
    typeof o !== "object" || o === null || typeof o.name !== "string" ||
    typeof o.created !== "string" || (o.expires !== null && typeof o.expires !== "string") ||
    !Array.isArray(o.scope)
  ) throw badPayload();
  const scope: ScopeEntry[] = [];
  for (const s of o.scope as unknown[]) {
    const e = s as Record<string, unknown>;
    if (typeof e !== "object" || e === null || typeof e.record !== "string") throw badPayload();
    scope.push({ record: e.record, key: keyBytes(e.key) });
  }
  return {
    name: o.name,
    created: o.created,
    expires: o.expires as string | null,
    scope,
    signer: o.signer === undefined ? null : keyBytes(o.signer),
    ...(o.policy === undefined ? {} : { policy: parsePolicy(o.policy) }),
  };
}

/**
 * Checks the shape of a sealed policy (authenticated, so a bad one is a broken writer).
 *
 * @param v The decoded JSON.
 * @returns The policy.
 * @throws {HecateError} `vault_integrity` when it is malformed.
 */
export function parsePolicy(v: unknown): ApiKeyPolicy {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw badPayload();
  const o = v as Record<string, unknown>;
  const out: ApiKeyPolicy = {};
  if (o.allowFrom !== undefined) {
    if (!Array.isArray(o.allowFrom) || !o.allowFrom.every((c) => typeof c === "string")) {
      throw badPayload();
    }
    out.allowFrom = [...o.allowFrom as string[]];
  }
  if (o.userAgent !== undefined) {
    if (typeof o.userAgent !== "string") throw badPayload();
    out.userAgent = o.userAgent;
  }
  if (o.rate !== undefined) {
    if (typeof o.rate !== "string") throw badPayload();
    out.rate = o.rate;
  }
  if (o.level !== undefined) {
    if (o.level !== "read" && o.level !== "write") throw badPayload();
    out.level = o.level;
  }
  if (o.credentials !== undefined) {
    if (typeof o.credentials !== "boolean") throw badPayload();
    out.credentials = o.credentials;
  }
  return out;
}

export { AuthenticationFailure };
