/**
 * `vault.pkcs11`: slots that wrap the root key on a hardware token (PKCS#11), so the token and its
 * PIN open the vault as the master password does. Adding and removing are audited as `slot.add`
 * and `slot.remove`; an unlock through a slot is audited as `unlock` with actor `pkcs11`.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { toBase64Url } from "../vault/encoding.ts";
import { validPkcs11Label } from "../vault/format.ts";
import type { VaultCore } from "./_core.ts";

/** A PKCS#11 slot as listed. */
export interface Pkcs11SlotSummary {
  /** Slot id, base64url. */
  id: string;
  /** The token's label. */
  token: string;
  /** The label of the AES key on the token. */
  key: string;
}

/** Options for {@link VaultPkcs11Slots.add}. */
export interface AddPkcs11SlotOptions {
  /** Path of the PKCS#11 module (shared library). */
  module: string;
  /** The token's label. */
  token: string;
  /** The AES key's label on the token (made there when missing). @default {"hecate"} */
  keyLabel?: string | undefined;
  /** The token's user PIN. */
  pin: string;
}

/**
 * The PKCS#11 slots of an open vault (`vault.pkcs11`); changing them needs the master password.
 * The token work needs `--allow-ffi` (docs/SECURITY.md, "PKCS#11 slot").
 *
 * @example
 * ```ts ignore
 * const id = await vault.pkcs11.add({ module: "/usr/lib/softhsm/libsofthsm2.so", token: "t1", pin });
 * console.log(vault.pkcs11.list());
 * await vault.pkcs11.remove(id);
 * ```
 */
export class VaultPkcs11Slots {
  readonly #core: VaultCore;

  /** @internal Reached as `vault.pkcs11`. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  #needPassword(): void {
    if (this.#core.access.actor.kind !== "password") {
      throw new HecateError(
        "no_credential",
        "Changing the vault's slots needs the master password",
      );
    }
  }

  /**
   * Lists the PKCS#11 slots.
   *
   * @returns Id, token label and key label of each, in slot order.
   */
  list(): Pkcs11SlotSummary[] {
    return this.#core.unlocked().pkcs11Slots().map((s) => ({
      id: toBase64Url(s.id),
      token: s.token,
      key: s.key,
    }));
  }

  /**
   * Adds a slot: the token encrypts the root key with an AES-256 key that never leaves it (made on
   * the token when it has no key of that label).
   *
   * @param options Module, token label, key label, PIN.
   * @returns The new slot's id.
   * @throws {HecateError} `usage` (bad label), `auth_failed` (wrong PIN), `no_credential` (module
   * or token missing, or not opened with the master password), `locked_out` (token PIN locked).
   */
  async add(options: AddPkcs11SlotOptions): Promise<string> {
    const core = this.#core;
    const keyLabel = options.keyLabel ?? "hecate";
    let id = "";
    await core.audited("slot.add", undefined, async () => {
      this.#needPassword();
      if (!validPkcs11Label(options.token, 32)) {
        throw new HecateError("usage", "A token label is 1-32 bytes without control characters");
      }
      if (!validPkcs11Label(keyLabel, 64)) {
        throw new HecateError("usage", "A key label is 1-64 bytes without control characters");
      }
      const { sealRootToToken } = await import("../vault/pkcs11/slot.ts");
      await core.mutate(async (state) => {
        const slot = await state.addRootSlot((root, vaultId) =>
          Promise.resolve(
            sealRootToToken(root, vaultId, options, options.token, keyLabel),
          )
        );
        id = toBase64Url(slot.id);
      });
    }, () => ({ kind: "pkcs11", slot: id, token: options.token, key_label: keyLabel }));
    return id;
  }

  /**
   * Removes a PKCS#11 slot. The root key stays, so a copy of the file from before still opens
   * with the token: rotate (`vault.keys.rotate`) to cut it off.
   *
   * @param id The slot id.
   * @throws {HecateError} `usage` when there is no PKCS#11 slot with that id.
   */
  async remove(id: string): Promise<void> {
    const core = this.#core;
    let token = "";
    await core.audited("slot.remove", undefined, async () => {
      this.#needPassword();
      await core.mutate((state) => {
        const slot = state.removeRootSlot(id);
        if (!slot) {
          throw new HecateError("usage", `No PKCS#11 slot has the id "${id}"`, {
            hint: "list them with 'hecate slot list'",
          });
        }
        token = slot.token;
      });
    }, () => ({ kind: "pkcs11", slot: id, token }));
  }
}
