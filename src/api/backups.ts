/**
 * `vault.backups`: encrypted bundles of an open vault (manual and automatic) and how many
 * automatic ones are kept. Verifying, listing and restoring bundles need no open vault: see
 * src/api/backup.ts.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import {
  createBackup,
  type CreatedBackup,
  KEEP_META_KEY,
  type Progress,
  retentionOf,
} from "../backup/backup.ts";
import type { VaultCore } from "./_core.ts";

/**
 * Options for {@link VaultBackups.create}.
 *
 * @example
 * ```ts ignore
 * await vault.backups.create({ output: "/mnt/usb/hecate.hecate-backup" });
 * ```
 */
export interface VaultBackupOptions {
  /** Where to write the bundle. @default {a new file in HOME/backups/} */
  output?: string | undefined;
  /** Called with progress reports. */
  progress?: Progress | undefined;
  /** Why the bundle is made (recorded in its manifest). @default {"manual"} */
  reason?: "manual" | "export";
}

/**
 * Writes an automatic bundle (audited as `backup.create`); retention applies. Shared by
 * {@link VaultBackups.auto} and the parts whose operations destroy data (profile removal).
 *
 * @param core The open vault.
 * @param reason The operation, e.g. `rotate` (lower case letters, digits and `-`).
 * @returns The bundle written.
 */
export async function writeAutoBackup(core: VaultCore, reason: string): Promise<CreatedBackup> {
  if (!/^[a-z0-9-]{1,40}$/.test(reason)) {
    throw new HecateError("internal", "A backup reason is lower case letters, digits and '-'");
  }
  let made: CreatedBackup | undefined;
  await core.audited("backup.create", undefined, async () => {
    made = await createBackup(core.home, core.unlocked(), { reason, automatic: true });
  });
  return made!;
}

/**
 * Backups of an open vault (`vault.backups`); all need the master password.
 *
 * @example
 * ```ts ignore
 * const { path } = await vault.backups.create(); // HOME/backups/<time>-manual.hecate-backup
 * await vault.backups.auto("rotate"); // before a destructive operation
 * await vault.backups.setRetention(20);
 * ```
 */
export class VaultBackups {
  readonly #core: VaultCore;

  /** @internal Reached as `vault.backups`. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  /**
   * Writes an encrypted, authenticated bundle of the vault file and the audit trail (by default
   * to `HOME/backups/`). It opens with the master password the vault has now. Audited as
   * `backup.create`.
   *
   * @param options Output file, progress reports, reason.
   * @returns Where it was written, its size and manifest.
   *
   * @example
   * ```ts ignore
   * const { path } = await vault.backups.create({ output: "/mnt/usb/hecate.hecate-backup" });
   * ```
   */
  async create(options: VaultBackupOptions = {}): Promise<CreatedBackup> {
    const core = this.#core;
    let made: CreatedBackup | undefined;
    await core.audited("backup.create", undefined, async () => {
      made = await createBackup(core.home, core.unlocked(), {
        reason: options.reason ?? "manual",
        output: options.output,
        progress: options.progress,
      });
    });
    return made!;
  }

  /**
   * Writes an automatic bundle before a destructive operation; only the newest
   * {@link VaultBackups.retention} automatic bundles are kept. Removing a profile and an import
   * call it themselves; a restore keeps the current vault on its own.
   *
   * @param reason The operation, e.g. `rotate` (lower case letters, digits and `-`).
   * @returns The bundle written.
   *
   * @example
   * ```ts ignore
   * await vault.backups.auto("rotate");
   * ```
   */
  auto(reason: string): Promise<CreatedBackup> {
    return writeAutoBackup(this.#core, reason);
  }

  /** How many automatic bundles are kept (vault setting; default 10). */
  get retention(): number {
    return retentionOf(this.#core.unlocked());
  }

  /**
   * Sets how many automatic bundles are kept. Audited as `backup.retention`.
   *
   * @param keep At least 1.
   *
   * @example
   * ```ts ignore
   * await vault.backups.setRetention(20);
   * ```
   */
  async setRetention(keep: number): Promise<void> {
    if (!Number.isSafeInteger(keep) || keep < 1) {
      throw new HecateError("usage", "The number of backups to keep must be at least 1");
    }
    await this.#core.audited("backup.retention", undefined, async () => {
      await this.#core.mutate((state) => {
        state.meta = { ...state.meta, [KEEP_META_KEY]: keep };
      });
    });
  }
}
