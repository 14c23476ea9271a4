/**
 * Opening a vault file with an API key: only the records in the key's scope, read-only. Pure: no
 * file system; the caller passes the clock.
 *
 * What this path checks: it has no root key, so it cannot verify the body MAC. It checks the
 * unkeyed checksum (accidental damage), opens its own slot (only the API key's secret does), and
 * then checks the whole body against the writer's Ed25519 signature, with the verifying key the
 * slot itself carries. Only then does it open the records in scope. So another key holder, who
 * has the same data keys but not the writer's signing key, cannot forge a record this key reads,
 * nor edit anything else in the body. See docs/SECURITY.md, "API keys".
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { fromUtf8, timingSafeEqual, toBase64Url } from "./encoding.ts";
import {
  type ApiKeyPayload,
  type ApiKeyPolicy,
  openApiKeySlot,
  openLegacyApiKeySlot,
  parseApiKey,
  type ParsedApiKey,
} from "./apikey.ts";
import { verifyEd25519 } from "./asymmetric.ts";
import {
  type ApiKeySlot,
  type LegacyApiKeySlot,
  loadRecordLine,
  loadTable,
  type ParsedVaultFile,
  parseSplit,
  type PositionedFile,
  readSplitHead,
  recordById,
  splitVaultFile,
} from "./format.ts";
import { openRecord, signedBodyMessage } from "./keyring.ts";
import { AuthenticationFailure } from "./primitives.ts";
import { checkChecksum, type JsonObject, recordSideKeyOf } from "./vault.ts";
import { recordKindOf } from "./record_index.ts";

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
  /** The key's zero-trust checks; absent for keys made before them. */
  policy?: ApiKeyPolicy;
  /** The records in scope that still exist. */
  records(): { id: string; value: JsonObject }[];
  /** The side key of a record in scope (see `UnlockedVault.recordSideKey`); else undefined. */
  recordSideKey(id: string): Promise<Uint8Array<ArrayBuffer> | undefined>;
  /**
   * The key material this session holds (the API key's secret and the data key of every record
   * in scope), for tests that check {@link ScopedVault.wipe}.
   */
  keyBuffers(): Uint8Array[];
  /**
   * Zeroes every key buffer and forgets the records' plaintext; afterwards no side key is
   * derived and no record is listed. Strings (the records' JSON values) cannot be wiped in a
   * garbage-collected runtime: they are only dropped (docs/SECURITY.md).
   */
  wipe(): void;
}

async function openSlot(
  key: ParsedApiKey,
  slot: ApiKeySlot | LegacyApiKeySlot,
  vaultId: Uint8Array<ArrayBuffer>,
): Promise<ApiKeyPayload> {
  try {
    return slot.kind === "apikey"
      ? await openApiKeySlot(key.secret, slot, vaultId)
      : await openLegacyApiKeySlot(key.secret, slot, vaultId);
  } catch (e) {
    if (e instanceof AuthenticationFailure) {
      throw new HecateError("auth_failed", "The API key does not open this vault", { cause: e });
    }
    throw e;
  }
}

/**
 * Checks the body against the writer's signature. A payload that names a signer demands one, in
 * any file version, so a forged body cannot escape the check by posing as a format-1 file; only
 * a payload sealed by a format-1 writer (no signer) reads a format-1 file unsigned, as before.
 */
async function checkWriter(parsed: ParsedVaultFile, payload: ApiKeyPayload): Promise<void> {
  if (parsed.body.version < 2 && payload.signer === null) return;
  const sig = parsed.seal.sig;
  if (
    payload.signer === null || sig === undefined ||
    !await verifyEd25519(payload.signer, sig, signedBodyMessage(parsed.bodyBytes))
  ) {
    throw new HecateError(
      "vault_integrity",
      "Vault failed authentication: the body is not signed by the vault's writer",
      { hint: "the file was altered; ask the vault owner to check it with the master password" },
    );
  }
}

function closedError(): HecateError {
  return new HecateError("usage", "This vault was closed: its keys are wiped");
}

/** Options for {@link openScoped}. */
export interface OpenScopedOptions {
  /** The current time, for the expiry check. */
  now: Date;
}

/**
 * Opens the records an API key may read.
 *
 * @param file The vault file: its bytes, or the file to read by position (then only the header,
 * the seal and the record lines in scope are read: docs/FORMAT.md, "Reading with an API key").
 * @param keyText The API key text.
 * @param options The clock.
 * @returns The scoped view.
 * @throws {HecateError} `auth_failed` for a malformed key or one that does not open its slot,
 * `key_revoked` when no slot has the key's id, `key_expired` past its expiry, `vault_integrity`
 * when the file is damaged or a record in scope was altered.
 */
export async function openScoped(
  file: Uint8Array<ArrayBuffer> | PositionedFile,
  keyText: string,
  options: OpenScopedOptions,
): Promise<ScopedVault> {
  const key = parseApiKey(keyText);
  const split = file instanceof Uint8Array ? splitVaultFile(file) : await readSplitHead(file);
  await checkChecksum(split);
  await loadTable(split); // format 4 read by position: the record table line
  const parsed = parseSplit(split);
  const { body } = parsed;
  const slot = body.slots.find((s): s is ApiKeySlot | LegacyApiKeySlot =>
    // Only API-key kinds: an age (or any later) slot under the same id is not this key's.
    (s.kind === "apikey" || s.kind === "apikey-legacy") && timingSafeEqual(s.id, key.slotId)
  );
  if (!slot) {
    throw new HecateError("key_revoked", "This API key is unknown or was revoked", {
      hint: "ask the vault owner for a new key ('hecate apikey create')",
    });
  }
  const payload = await openSlot(key, slot, body.vaultId);
  await checkWriter(parsed, payload);
  // Format 4: the table the signed header vouches for (the index line is not read here).
  await body.region?.checkTable();
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
  const sideKeys = new Map<string, () => Promise<Uint8Array<ArrayBuffer>>>();
  for (const s of payload.scope) {
    // The first record of the id, in file order. Formats 3 and 4: reading `data` checks the
    // record's line against its hash in the signed header (format 4: the table it vouches for).
    const entry = recordById(body, s.record);
    if (!entry) continue; // the profile was removed since the key was made
    await loadRecordLine(entry); // read by position: only after the header was authenticated
    let plain: Uint8Array;
    try {
      plain = await openRecord(s.key, entry.data, body.vaultId, entry.id, entry.kind);
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
    if (
      typeof value !== "object" || value === null ||
      recordKindOf(value as JsonObject) !== entry.kind
    ) {
      throw new HecateError("vault_integrity", "Vault failed authentication: a record in scope", {
        hint: "the file was altered or damaged; restore a previous generation or a backup",
      });
    }
    records.push({ id: s.record, value: value as JsonObject });
    sideKeys.set(s.record, () => recordSideKeyOf(s.key, body.vaultId, entry.id));
  }
  // Every data key of the payload (also those of records no longer in the file) and the secret.
  const held: Uint8Array[] = [key.secret, ...payload.scope.map((s) => s.key)];
  let wiped = false;
  return {
    id: toBase64Url(body.vaultId),
    generation: body.generation,
    keyId: toBase64Url(slot.id),
    keyName: payload.name,
    expires: payload.expires,
    ...(payload.policy ? { policy: payload.policy } : {}),
    records: () => records.map((r) => ({ id: r.id, value: structuredClone(r.value) })),
    recordSideKey: (id) => {
      if (wiped) return Promise.reject(closedError());
      return sideKeys.get(id)?.() ?? Promise.resolve(undefined);
    },
    keyBuffers: () => [...held],
    wipe: () => {
      wiped = true;
      for (const b of held) b.fill(0);
      records.length = 0;
      sideKeys.clear();
    },
  };
}
