/**
 * Opening a vault file with an API key: only the records in the key's scope, read-only. Pure: no
 * file system; the caller passes the clock.
 *
 * What this path checks, and what it cannot: it has no root key, so it cannot verify the body MAC.
 * It checks the unkeyed checksum (accidental damage), opens its own slot (AEAD under a key only
 * the API key yields, binding vault id and slot id) and opens each record in scope (AEAD under the
 * record's data key, binding vault id and record id). A deliberate edit of anything else in the
 * body (other slots, other records, the generation) goes unnoticed here; an edit of what this key
 * reads fails authentication. See docs/SECURITY.md, "API keys".
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { fromUtf8, timingSafeEqual, toBase64Url } from "./encoding.ts";
import { deriveSlotKey, openApiKeySlot, parseApiKey } from "./apikey.ts";
import { type ApiKeySlot, parseBody, splitVaultFile } from "./format.ts";
import { openRecord } from "./keyring.ts";
import { AuthenticationFailure } from "./primitives.ts";
import { checkChecksum, type JsonObject } from "./vault.ts";

/** A vault opened with an API key: the records in scope, decrypted. */
export interface ScopedVault {
  /** The vault id, base64url. */
  id: string;
  /** The vault file generation read. */
  generation: number;
  /** The key's slot id, base64url. */
  keyId: string;
  /** The key's name. */
  keyName: string;
  /** Expiry, ISO 8601, or null. */
  expires: string | null;
  /** The records in scope that still exist. */
  records(): { id: string; value: JsonObject }[];
}

/** Options for {@link openScoped}. */
export interface OpenScopedOptions {
  /** The current time, for the expiry check. */
  now: Date;
}

/**
 * Opens the records an API key may read.
 *
 * @param file The vault file bytes.
 * @param keyText The API key text.
 * @param options The clock.
 * @returns The scoped view.
 * @throws {HecateError} `auth_failed` for a malformed key or one that does not open its slot,
 * `key_revoked` when no slot has the key's id, `key_expired` past its expiry, `vault_integrity`
 * when the file is damaged or a record in scope was altered.
 */
export async function openScoped(
  file: Uint8Array<ArrayBuffer>,
  keyText: string,
  options: OpenScopedOptions,
): Promise<ScopedVault> {
  const key = parseApiKey(keyText);
  const split = splitVaultFile(file);
  await checkChecksum(split);
  const body = parseBody(split.bodyBytes);
  const slot = body.slots.find((s): s is ApiKeySlot =>
    s.kind === "apikey" && timingSafeEqual(s.id, key.slotId)
  );
  if (!slot) {
    throw new HecateError("key_revoked", "This API key is unknown or was revoked", {
      hint: "ask the vault owner for a new key ('hecate apikey create')",
    });
  }
  const slotKey = await deriveSlotKey(key.secret, slot.salt, body.vaultId, slot.id);
  let payload;
  try {
    payload = await openApiKeySlot(slotKey, slot, body.vaultId);
  } catch (e) {
    if (e instanceof AuthenticationFailure) {
      throw new HecateError("auth_failed", "The API key does not open this vault", { cause: e });
    }
    throw e;
  }
  if (payload.expires !== null && options.now.getTime() >= Date.parse(payload.expires)) {
    throw new HecateError(
      "key_expired",
      `The API key "${payload.name}" expired at ${payload.expires}`,
      {
        hint: "create a new key with 'hecate apikey create'",
      },
    );
  }
  const records: { id: string; value: JsonObject }[] = [];
  for (const s of payload.scope) {
    const entry = body.records.find((r) => toBase64Url(r.id) === s.record);
    if (!entry) continue; // the profile was removed since the key was made
    let plain: Uint8Array;
    try {
      plain = await openRecord(s.key, entry.data, body.vaultId, entry.id);
    } catch (e) {
      throw new HecateError("vault_integrity", "Vault failed authentication: a record in scope", {
        cause: e,
        hint: "the file was altered or damaged; restore a previous generation or a backup",
      });
    }
    let value: unknown;
    try {
      value = JSON.parse(fromUtf8(plain));
    } catch (e) {
      throw new HecateError("vault_integrity", "A record in scope is not valid JSON", { cause: e });
    }
    records.push({ id: s.record, value: value as JsonObject });
  }
  return {
    id: toBase64Url(body.vaultId),
    generation: body.generation,
    keyId: toBase64Url(slot.id),
    keyName: payload.name,
    expires: payload.expires,
    records: () => records.map((r) => ({ id: r.id, value: structuredClone(r.value) })),
  };
}
