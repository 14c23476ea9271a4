/**
 * `vault.slots`: the key slots of a vault (every way to recover its keys), listed by kind; the
 * age slots that let a teammate open the vault with their own age identity, and the PKCS#11 slots
 * that wrap the root key on a hardware token (opened with the token and its PIN). Adding and removing
 * need the master password and are audited as `slot.add` and `slot.remove`. A kind is described
 * by one entry of {@link SLOT_KINDS}; a kind without one is listed and removable as a plain slot.
 *
 * @module
 */

import { apiKeyLastUsed, forgetApiKey } from "../access/apikey_state.ts";
import { HecateError } from "../errors.ts";
import { checkAgeRecipient } from "../vault/age_slot.ts";
import { toBase64Url } from "../vault/encoding.ts";
import { validPkcs11Label } from "../vault/format.ts";
import type { VaultCore } from "./_core.ts";

/** How `slot list` and `slot remove` treat one slot kind. */
export interface SlotKind {
  /**
   * `never`: not removable here (the password slot); `apikey`: removed as `apikey revoke` does
   * (its profiles re-keyed); `slot`: the slot is deleted, and `rotate` cuts its holder off.
   */
  remove: "never" | "apikey" | "slot";
  /** What the `detail` of such a slot is, for the list's header (none: no detail). */
  detail?: string;
}

/** The slot kinds this build describes. */
export const SLOT_KINDS: Readonly<Record<string, SlotKind>> = {
  password: { remove: "never" },
  apikey: { remove: "apikey" },
  "apikey-legacy": { remove: "apikey" },
  age: { remove: "slot", detail: "recipient" },
  // Dropped by rotate (re-wrapping needs the token): see UnlockedVault.rotate.
  pkcs11: { remove: "slot", detail: "token and key labels" },
};

/** A kind's description ({@link SLOT_KINDS}), a plain removable slot when it has none. */
export function slotKind(kind: string): SlotKind {
  return SLOT_KINDS[kind] ?? { remove: "slot" };
}

/** A slot as listed: never key material. */
export interface SlotSummary {
  /** Slot id (base64url; not a secret). */
  id: string;
  /** `password`, `apikey`, `apikey-legacy`, `age`, ... */
  kind: string;
  /** The label (API keys: the key's name; the password slot: `master password`). */
  label: string | null;
  /** ISO time of creation, where recorded. */
  created: string | null;
  /** ISO time of the last successful unlock through it (informational), if any. */
  lastUsed: string | null;
  /** The kind's detail (age: the recipient; pkcs11: `token "T" key "K"`), if any. */
  detail: string | null;
}

/** Key under which the last password unlock is recorded in the last-used state. */
export const PASSWORD_USE_KEY = "password";

/** Labels: 1-64 printable characters, no control characters. */
const LABEL = /^[^\p{Cc}]{1,64}$/u;

/** Options for {@link VaultSlots.addPkcs11}. */
export interface AddPkcs11SlotOptions {
  /** Path of the PKCS#11 module (shared library). */
  module: string;
  /** The token's label. */
  token: string;
  /** The AES key's label on the token (made there when missing). @default {"hecate"} */
  keyLabel?: string | undefined;
  /** The token's user PIN. */
  pin: string;
  /** A label for the list. @default {"<token>/<key label>"} */
  label?: string | undefined;
}

function checkLabel(label: string): void {
  if (!LABEL.test(label)) {
    throw new HecateError("usage", "A slot label is 1-64 characters without control characters");
  }
}

/**
 * The slots of an open vault (`vault.slots`).
 *
 * @example
 * ```ts ignore
 * const id = await vault.slots.addAge("age1...", { label: "alice" });
 * console.log((await vault.slots.list()).map((s) => s.kind));
 * await vault.slots.remove(id);
 * await vault.keys.rotate(password); // the removed identity opens nothing written from now on
 * ```
 */
export class VaultSlots {
  readonly #core: VaultCore;

  /** @internal Reached as `vault.slots`. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  /**
   * Lists every slot: kind, id, label, creation, last use.
   *
   * @returns The slots, in header order.
   */
  async list(): Promise<SlotSummary[]> {
    const used = await apiKeyLastUsed(this.#core.home);
    return this.#core.unlocked().slotInfo().map((s) => ({
      id: s.id,
      kind: s.kind,
      label: s.label,
      created: s.created,
      lastUsed: used[s.kind === "password" ? PASSWORD_USE_KEY : s.id] ?? null,
      detail: s.detail,
    }));
  }

  /**
   * Adds an age slot: the root key wrapped to a teammate's `age1...` X25519 recipient, so their
   * identity file opens the vault (`hecate --identity FILE`).
   *
   * @param recipient The recipient, as `age-keygen` prints it.
   * @param options `label` for the list (default: the recipient's first characters).
   * @returns The new slot's id.
   * @throws {HecateError} `usage` (not an X25519 recipient, bad label), `already_exists`,
   * `no_credential` (not opened with the master password).
   */
  async addAge(recipient: string, options: { label?: string | undefined } = {}): Promise<string> {
    const core = this.#core;
    let id = "";
    const label = options.label ?? `${recipient.trim().slice(0, 12)}...`;
    await core.audited("slot.add", undefined, async () => {
      const checked = await checkAgeRecipient(recipient);
      checkLabel(label);
      await core.mutate(async (state) => {
        id = await state.addAgeSlot(checked, label, core.access.now());
      });
    }, () => ({
      kind: "age",
      label,
      ...(id ? { slot_id: id } : {}),
      ...(id ? { recipient: recipient.trim() } : {}), // only once it was checked and added
    }));
    return id;
  }

  /**
   * Adds a PKCS#11 slot: the token encrypts the root key with an AES-256 key that never leaves it
   * (made on the token when it has no key of that label), so the token and its PIN open the vault
   * (`hecate --pkcs11 MODULE`). The token work needs `--allow-ffi` (docs/SECURITY.md, "PKCS#11
   * token slot"). `rotate` drops such slots: re-wrapping the new root key needs the token.
   *
   * @param options Module, token label, key label, PIN, list label.
   * @returns The new slot's id.
   * @throws {HecateError} `usage` (bad label), `auth_failed` (wrong PIN), `no_credential` (module
   * or token missing, or not opened with the master password), `locked_out` (token PIN locked).
   */
  async addPkcs11(options: AddPkcs11SlotOptions): Promise<string> {
    const core = this.#core;
    const keyLabel = options.keyLabel ?? "hecate";
    const label = options.label ?? `${options.token}/${keyLabel}`;
    let id = "";
    await core.audited("slot.add", undefined, async () => {
      if (!validPkcs11Label(options.token, 32)) {
        throw new HecateError("usage", "A token label is 1-32 bytes without control characters");
      }
      if (!validPkcs11Label(keyLabel, 64)) {
        throw new HecateError("usage", "A key label is 1-64 bytes without control characters");
      }
      checkLabel(label);
      const { sealRootToToken } = await import("../vault/pkcs11/slot.ts");
      await core.mutate(async (state) => {
        const slot = await state.addPkcs11Slot(
          (root, vaultId) =>
            Promise.resolve(sealRootToToken(root, vaultId, options, options.token, keyLabel)),
          label,
          core.access.now(),
        );
        id = toBase64Url(slot.id);
      });
    }, () => ({
      kind: "pkcs11",
      label,
      ...(id ? { slot_id: id } : {}),
      token: options.token,
      key_label: keyLabel,
    }));
    return id;
  }

  /**
   * Removes a slot. An age or PKCS#11 slot's holder can still open copies of the vault file written before:
   * run `rotate` next, after which nothing they hold opens the vault as written from then on.
   * An API key's slot is removed as `apikey revoke` does (its profiles are re-keyed).
   *
   * @param id The slot id (from {@link list}).
   * @throws {HecateError} `usage` for an unknown id or the password slot, `no_credential` (not
   * opened with the master password).
   */
  async remove(id: string): Promise<void> {
    const core = this.#core;
    let kind = "";
    await core.audited("slot.remove", undefined, async () => {
      await core.mutate((state) => {
        const slot = state.slotInfo().find((s) => s.id === id);
        if (!slot) {
          throw new HecateError("usage", "No slot has that id", {
            hint: "list slots with 'hecate slot list'",
          });
        }
        kind = slot.kind;
        const how = slotKind(slot.kind).remove;
        if (how === "never") {
          throw new HecateError("usage", "The password slot cannot be removed", {
            hint: "change the master password with 'hecate passwd'",
          });
        }
        if (how === "apikey") state.removeApiKey(id);
        else state.removeSlot(id);
      });
    }, () => (kind ? { slot_id: id, kind } : {})); // an unknown id is not echoed into the trail
    await forgetApiKey(core.home, id).catch(() => {});
  }
}
