/**
 * `vault.keys`: the master password and the keys under it (rotation, password change, KDF cost).
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { MIN_KDF_ITERATIONS } from "../kdf.ts";
import { UnlockedVault } from "../vault/vault.ts";
import type { VaultCore } from "./_core.ts";
import { storedPolicyOf, withKeysRotated } from "../policy/policy.ts";
import { syncPolicyCopy } from "../policy/overrides.ts";
import { keysDue } from "./policy.ts";

/**
 * Re-wraps the root key at a higher PBKDF2 cost, audited as `kdf.upgrade`. Used by `openVault`
 * when the vault's cost is below the current floor; not part of the library API.
 *
 * @param core The vault just unlocked with the password.
 * @param password The master password (just verified).
 * @param iterations The new cost.
 */
export async function upgradeKdf(
  core: VaultCore,
  password: string,
  iterations: number,
): Promise<void> {
  await core.audited("kdf.upgrade", undefined, async () => {
    await core.mutate((state) => state.setPassword(password, iterations));
  });
}

/**
 * Keys of an open vault (`vault.keys`); all need the master password. Audited as `rotate` and
 * `password.change`.
 *
 * @example
 * ```ts ignore
 * console.log(vault.keys.kdfIterations);
 * await vault.keys.changePassword(newPassword, { kdfIterations: 1_000_000 });
 * await vault.keys.rotate(newPassword);
 * ```
 */
export class VaultKeys {
  readonly #core: VaultCore;

  /** @internal Reached as `vault.keys`. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  /** PBKDF2 iterations of the password slot (master password only). */
  get kdfIterations(): number {
    return this.#core.unlocked().passwordIterations;
  }

  /**
   * Rotates every key: a new root key and new data keys, every record re-encrypted, every API-key
   * slot re-sealed for its scope (existing API keys keep working), every age slot re-made for its
   * recipient, every PKCS#11 slot dropped (it
   * wraps the old root key; add it again with the token), in one atomic replace of the file: an
   * interruption leaves the old vault or the new one.
   *
   * @param password The master password (checked against the vault before anything changes).
   * @throws {HecateError} `auth_failed` for a wrong password (nothing changes).
   */
  async rotate(password: string): Promise<void> {
    const core = this.#core;
    const before = core.unlocked();
    await core.audited("rotate", undefined, async () => {
      await core.mutate(async (state) => {
        const bytes = await core.store.read();
        // A wrong password here would lock the owner out of the rotated vault: check it first.
        // The check's own copy of the keys is wiped at once: only `state` goes on.
        (await UnlockedVault.unlock(bytes, password)).wipe();
        await state.rotate(password, Math.max(state.passwordIterations, MIN_KDF_ITERATIONS));
        state.meta = withKeysRotated(state.meta, core.access.now());
      });
    });
    // The state before holds only retired keys now (the old root key, what derives from it, the
    // old data keys and signing seed): the rotated state has its own, so they are zeroed at once.
    if (core.unlocked() !== before) before.wipe();
    await syncPolicyCopy(core.home, storedPolicyOf(core.unlocked().meta)).catch(() => {});
  }

  /**
   * When the policy's `keys.rotate-every` schedule is due, the time it fell due; else undefined.
   *
   * @returns ISO time, or undefined.
   */
  due(): string | undefined {
    return keysDue(this.#core, this.#core.access.now());
  }

  /**
   * Changes the master password: the root key is re-wrapped; records are untouched.
   *
   * @param password The new password.
   * @param options KDF cost for the new slot (at least the floor; default: the current cost).
   * @throws {HecateError} `usage` for a KDF cost below the floor.
   */
  async changePassword(password: string, options: { kdfIterations?: number } = {}): Promise<void> {
    await this.#core.audited("password.change", undefined, async () => {
      const iterations = options.kdfIterations ??
        Math.max(this.kdfIterations, MIN_KDF_ITERATIONS);
      if (iterations < MIN_KDF_ITERATIONS) {
        throw new HecateError("usage", `KDF iterations must be at least ${MIN_KDF_ITERATIONS}`);
      }
      await this.#core.mutate((state) => state.setPassword(password, iterations));
    });
  }
}
