/**
 * `vault.policy()` and its changes: the sealed security policy (src/policy/policy.ts), changed one
 * key at a time with the master password, each change audited as `policy.set` with the old and
 * new value (policy values are never secrets).
 *
 * @module
 */

import { totpConfigOf } from "../access/totp.ts";
import { HecateError } from "../errors.ts";
import { syncPolicyCopy } from "../policy/overrides.ts";
import {
  keysNextDue,
  parsePolicyValue,
  policyRows,
  storedPolicyOf,
  withKeysRotated,
  withPolicySetting,
} from "../policy/policy.ts";
import type { VaultCore } from "./_core.ts";

/** One key of the policy as `policy show` lists it. */
export interface PolicyRow {
  /** The dotted key. */
  key: string;
  /** Its value in effect, as text. */
  value: string;
  /** Whether it was set (else it is the default). */
  set: boolean;
}

/**
 * Every key with its value (master password only).
 *
 * @param core The open vault.
 * @returns The rows, and when the vault keys are next due for rotation (if scheduled).
 */
export function policySettings(core: VaultCore): { rows: PolicyRow[]; keysNextDue?: string } {
  const meta = core.unlocked().meta;
  const due = keysNextDue(meta);
  return { rows: policyRows(meta), ...(due ? { keysNextDue: due } : {}) };
}

/**
 * Sets one key (master password only): checked first, so an invalid value changes nothing and
 * is not audited; the change itself is audited as `policy.set` with key, old and new value.
 *
 * @param core The open vault.
 * @param key The dotted key.
 * @param value The value as typed.
 * @returns The old and new value as text.
 * @throws {HecateError} `usage` for an unknown key, an invalid value, or `totp.unlock on` while
 * the vault has no TOTP; `no_credential` with an API key.
 */
export async function setPolicy(
  core: VaultCore,
  key: string,
  value: string,
): Promise<{ old: string; now: string }> {
  core.unlocked();
  const typed = parsePolicyValue(key, value);
  if (key === "totp.unlock" && typed === true && !totpConfigOf(core.unlocked().meta.totp)) {
    throw new HecateError("usage", "totp.unlock on needs the vault's TOTP enabled first", {
      hint: "'hecate totp setup', then set the policy",
    });
  }
  let change = { old: "", now: "" };
  await core.audited("policy.set", undefined, async () => {
    await core.mutate((state) => {
      const next = withPolicySetting(state.meta, key, value);
      let meta = next.meta;
      // A new schedule counts from when it was set, not from an unknown past rotation.
      if (key === "keys.rotate-every" && !storedPolicyOf(meta)?.keysRotated) {
        meta = withKeysRotated(meta, core.access.now());
      }
      state.meta = meta;
      change = { old: next.old, now: next.now };
    });
    await syncPolicyCopy(core.home, storedPolicyOf(core.unlocked().meta));
  }, () => ({ key, old: change.old, new: change.now }));
  return change;
}

/**
 * Whether the vault keys are due for rotation at `now` under `keys.rotate-every`.
 *
 * @param core The open vault (master password).
 * @param now The time.
 * @returns The due time when due, else undefined.
 */
export function keysDue(core: VaultCore, now: Date): string | undefined {
  const due = keysNextDue(core.unlocked().meta);
  return due !== undefined && Date.parse(due) <= now.getTime() ? due : undefined;
}
