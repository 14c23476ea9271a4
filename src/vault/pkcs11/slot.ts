/**
 * The PKCS#11 slot: the root key encrypted on a hardware token (AES-256-GCM under a key that is
 * made on the token and can never be read out), and opened again only by that token after its
 * PIN. The token work is in ./cryptoki.ts; this module maps its refusals onto Hecate's errors.
 * Imported only when a PKCS#11 slot is added or used (it needs `--allow-ffi`).
 *
 * @module
 */

import { HecateError } from "../../errors.ts";
import type { Pkcs11Slot } from "../format.ts";
import { pkcs11SlotAad } from "../keyring.ts";
import { KEY_BYTES, randomBytes, randomSlotId } from "../primitives.ts";
import { TokenError, withToken } from "./cryptoki.ts";

/** Where the token is and how to log in. */
export interface TokenAccess {
  /** Path of the PKCS#11 module (shared library). */
  module: string;
  /** The user PIN. Never logged, never in an error. */
  pin: string;
}

/** Hecate's error for a token's refusal: a wrong PIN or key is a failed credential. */
function asHecateError(e: unknown, token: string): unknown {
  if (!(e instanceof TokenError)) return e;
  switch (e.failure) {
    case "pin":
    case "decrypt":
      return new HecateError("auth_failed", e.message, { cause: e });
    case "pin_locked":
      return new HecateError("locked_out", e.message, {
        cause: e,
        hint: "the token itself refuses the PIN now; reset it with the token's own tools",
      });
    case "module":
      return new HecateError("no_credential", e.message, {
        cause: e,
        hint: "give the module with --pkcs11 PATH or HECATE_PKCS11_MODULE",
      });
    case "token":
      return new HecateError("no_credential", e.message, {
        cause: e,
        hint: `insert the token labelled "${token}", or unlock with the master password`,
      });
    default:
      return new HecateError("no_credential", e.message, { cause: e });
  }
}

/**
 * Encrypts the root key on the token, making the labelled AES key there first if the token has
 * none (sensitive, not extractable, kept on the token).
 *
 * @param root The root key.
 * @param vaultId The vault id.
 * @param access Module and PIN.
 * @param token The token's label.
 * @param keyLabel The key's label on the token.
 * @returns The new slot.
 * @throws {HecateError} `auth_failed` (wrong PIN), `no_credential` (module, token missing or
 * refusing), `locked_out` (the token locked its PIN).
 */
export function sealRootToToken(
  root: Uint8Array<ArrayBuffer>,
  vaultId: Uint8Array<ArrayBuffer>,
  access: TokenAccess,
  token: string,
  keyLabel: string,
): Pkcs11Slot {
  const id = randomSlotId();
  const iv = randomBytes(12);
  try {
    const wrapped = withToken(access.module, token, access.pin, (session) => {
      const key = session.findKey(keyLabel) ?? session.generateKey(keyLabel);
      return session.encrypt(key, iv, pkcs11SlotAad(vaultId, id, token, keyLabel), root);
    });
    if (wrapped.length !== KEY_BYTES + 16) {
      throw new TokenError("call", "The token returned a ciphertext of the wrong length");
    }
    return { id, kind: "pkcs11", token, key: keyLabel, iv, wrapped: new Uint8Array(wrapped) };
  } catch (e) {
    throw asHecateError(e, token);
  }
}

/**
 * Recovers the root key from a PKCS#11 slot with the token.
 *
 * @param slot The slot.
 * @param vaultId The vault id.
 * @param access Module and PIN.
 * @returns The root key.
 * @throws {HecateError} `auth_failed` (wrong PIN, or the token's key does not open the slot),
 * `no_credential` (module or token missing, no key of that label), `locked_out` (token's PIN
 * locked).
 */
export function openRootWithToken(
  slot: Pkcs11Slot,
  vaultId: Uint8Array<ArrayBuffer>,
  access: TokenAccess,
): Uint8Array<ArrayBuffer> {
  try {
    const root = withToken(access.module, slot.token, access.pin, (session) => {
      const key = session.findKey(slot.key);
      if (key === undefined) {
        throw new TokenError("key", `Token "${slot.token}" holds no key labelled "${slot.key}"`);
      }
      return session.decrypt(
        key,
        slot.iv,
        pkcs11SlotAad(vaultId, slot.id, slot.token, slot.key),
        slot.wrapped,
      );
    });
    if (root.length !== KEY_BYTES) {
      root.fill(0);
      throw new TokenError("decrypt", "The token's slot holds no root key");
    }
    const out = new Uint8Array(root);
    root.fill(0);
    return out;
  } catch (e) {
    throw asHecateError(e, slot.token);
  }
}
