/**
 * Opening a vault with a hardware token (a PKCS#11 slot): which slot a token opens, and the
 * unlock through it. Loaded by src/api/open.ts only on that path, so nothing else loads the FFI
 * code behind it.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { parseSplit, parseVaultFile, type Pkcs11Slot } from "../vault/format.ts";
import { ListingFile } from "../vault/listing.ts";
import { openRootWithToken } from "../vault/pkcs11/slot.ts";
import { UnlockedVault, type UnlockSource } from "../vault/vault.ts";
import type { Pkcs11UnlockOptions } from "./open.ts";

/**
 * The PKCS#11 slot to try: the one for the token labelled `token`, or the only one. Read from
 * the file before it is authenticated, only to choose: the unlock then checks everything.
 *
 * @param bytes The vault file, or a listing's head (./listing.ts).
 * @param token The token label asked for, if any.
 * @returns The slot.
 * @throws {HecateError} `no_credential` when the vault has no slot for that token (or none at
 * all), `usage` when several slots fit and no token label was given, `vault_integrity`.
 */
export function pickPkcs11Slot(
  bytes: UnlockSource,
  token: string | undefined,
): Pkcs11Slot {
  const parsed = bytes instanceof ListingFile ? parseSplit(bytes.split) : parseVaultFile(bytes);
  const slots = parsed.body.slots.filter((s): s is Pkcs11Slot =>
    s.kind === "pkcs11" && (token === undefined || s.token === token)
  );
  if (slots.length === 0) {
    throw new HecateError(
      "no_credential",
      token === undefined
        ? "This vault has no PKCS#11 slot"
        : `This vault has no PKCS#11 slot for token "${token}"`,
      { hint: "add one with 'hecate slot add pkcs11', or unlock with the master password" },
    );
  }
  if (slots.length > 1) {
    const tokens = new Set(slots.map((s) => s.token));
    if (tokens.size > 1) {
      throw new HecateError("usage", "This vault has PKCS#11 slots for several tokens", {
        hint: "name the token with --pkcs11-token LABEL or HECATE_PKCS11_TOKEN",
      });
    }
  }
  // Several slots on one token (added again after a rotate dropped none): the newest is last.
  return slots[slots.length - 1]!;
}

/**
 * Unlocks with a PKCS#11 slot: the token decrypts the root key, then the file is checked under
 * it as for the password.
 *
 * @param bytes The vault file, or a listing's head.
 * @param slot The slot ({@link pickPkcs11Slot}).
 * @param options Module and PIN.
 * @returns The unlocked state.
 * @throws {HecateError} `auth_failed` (wrong PIN, or the token's key does not open the slot),
 * `no_credential` (module or token missing), `locked_out` (the token locked its PIN),
 * `vault_integrity`.
 */
export async function unlockWithToken(
  bytes: UnlockSource,
  slot: Pkcs11Slot,
  options: Pkcs11UnlockOptions,
): Promise<UnlockedVault> {
  return await UnlockedVault.unlockWithSlot(
    bytes,
    (body) => {
      const same = body.slots.find((s): s is Pkcs11Slot =>
        s.kind === "pkcs11" && s.id.every((b, i) => b === slot.id[i])
      );
      if (!same) throw new HecateError("vault_integrity", "The vault changed while unlocking");
      return Promise.resolve(
        openRootWithToken(same, body.vaultId, { module: options.module, pin: options.pin }),
      );
    },
  );
}
