/**
 * API-key slots: the key text, the slot key derived from it, and the sealed scope payload.
 * Pure: no file system and no clock (callers pass `now`).
 *
 * Key text: `hcx_<b64u(slot id, 8 bytes)>_<b64u(secret, 32 bytes)>`. The secret has full entropy,
 * so one HKDF step (no slow KDF) turns it into the slot key:
 *
 * ```text
 * K_slot  = HKDF-SHA256(IKM = secret, salt = slot salt, info = AAD("apikey-slot", vault_id, slot_id))
 * wrapped = SEAL(K_slot, utf8(JSON(payload)), AAD("apikey-slot", vault_id, slot_id))
 * payload = {"name", "created", "expires" (ISO time or null), "scope": [{"record", "key"}]}
 * ```
 *
 * The payload carries the data keys of the records in scope and nothing else: whoever holds the
 * key can open exactly those records, because every other record is sealed under a data key the
 * payload does not contain (docs/FORMAT.md, "API-key slot").
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "./encoding.ts";
import type { ApiKeySlot } from "./format.ts";
import { associatedData } from "./keyring.ts";
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
 * Derives the slot key from the key's secret.
 *
 * @param secret The 32-byte secret from the key text.
 * @param salt The slot's salt.
 * @param vaultId The vault id.
 * @param slotId The slot id.
 * @returns The slot key.
 */
export function deriveSlotKey(
  secret: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return hkdfSha256(secret, salt, associatedData("apikey-slot", vaultId, slotId));
}

/**
 * Seals a payload into an API-key slot.
 *
 * @param slotKey The slot key ({@link deriveSlotKey}).
 * @param salt The slot's salt.
 * @param vaultId The vault id.
 * @param slotId The slot id.
 * @param payload Name, times and scope.
 * @returns The slot.
 */
export async function sealApiKeySlot(
  slotKey: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
  payload: ApiKeyPayload,
): Promise<ApiKeySlot> {
  const json = JSON.stringify({
    name: payload.name,
    created: payload.created,
    expires: payload.expires,
    scope: payload.scope.map((s) => ({ record: s.record, key: toBase64Url(s.key) })),
  });
  const wrapped = await seal(slotKey, utf8(json), associatedData("apikey-slot", vaultId, slotId));
  return { id: slotId, kind: "apikey", salt, wrapped };
}

function badPayload(): HecateError {
  return new HecateError("vault_integrity", "Vault failed authentication: API-key slot payload");
}

/**
 * Opens an API-key slot with the slot key.
 *
 * @param slotKey The slot key.
 * @param slot The slot.
 * @param vaultId The vault id.
 * @returns The payload.
 * @throws {AuthenticationFailure} When the key does not open the slot.
 * @throws {HecateError} `vault_integrity` when an authenticated payload is malformed.
 */
export async function openApiKeySlot(
  slotKey: Uint8Array<ArrayBuffer>,
  slot: ApiKeySlot,
  vaultId: Uint8Array<ArrayBuffer>,
): Promise<ApiKeyPayload> {
  const plain = await open(slotKey, slot.wrapped, associatedData("apikey-slot", vaultId, slot.id));
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
    let key: Uint8Array<ArrayBuffer>;
    try {
      key = fromBase64Url(String(e.key));
    } catch {
      throw badPayload();
    }
    if (key.length !== KEY_BYTES) throw badPayload();
    scope.push({ record: e.record, key });
  }
  return { name: o.name, created: o.created, expires: o.expires as string | null, scope };
}

export { AuthenticationFailure };
