/**
 * Backups from the library: verify and restore bundles without an open vault (the vault may be
 * the thing that was lost), and list them. Creating one needs an open vault: `vault.backup()`.
 *
 * @module
 */

import { type AuditSink, FileAuditLog } from "../audit/log.ts";
import {
  type BackupEntry,
  listBackups as listIn,
  type Progress,
  readBundleFile,
  restoreBackup as restoreIn,
  type RestoreResult,
  verifyBackup as verifyIn,
} from "../backup/backup.ts";
import type { BundleManifest } from "../backup/bundle.ts";
import { resolveHome } from "../vault/home.ts";
import { reasonOf } from "./util.ts";

export type { BackupEntry, BundleManifest, Progress, RestoreResult };

/**
 * Options for {@link verifyBackup} and {@link restoreBackup}.
 *
 * @example
 * ```ts ignore
 * await verifyBackup({ file: "/mnt/usb/hecate.hecate-backup", password, home: "/srv/hecate" });
 * ```
 */
export interface BackupFileOptions {
  /** The bundle file. */
  file: string;
  /** The master password the vault had when the bundle was made. */
  password: string;
  /** Home directory. @default {$HECATE_HOME or ~/.hecate} */
  home?: string | undefined;
  /** Progress reports for a terminal. */
  progress?: Progress | undefined;
  /** Audit sink. @default {the home's audit.jsonl} */
  audit?: AuditSink;
}

/**
 * What a verified bundle holds.
 *
 * @example
 * ```ts ignore
 * const { manifest, profiles } = await verifyBackup({ file, password });
 * console.log(manifest.created, profiles);
 * ```
 */
export interface BackupSummary {
  /** The manifest: time, reason, vault id, generation, files. */
  manifest: BundleManifest;
  /** Number of profiles in the vault inside. */
  profiles: number;
}

/**
 * Checks a bundle: it authenticates and the vault inside opens with the password.
 *
 * @param options The file and password.
 * @returns Its manifest and profile count.
 * @throws {HecateError} `auth_failed`, `vault_integrity`, `unsupported_version`, `usage` when
 * the file cannot be read.
 *
 * @example
 * ```ts ignore
 * const { manifest } = await verifyBackup({ file: "vault.hecate-backup", password });
 * console.log(manifest.created, manifest.generation);
 * ```
 */
export async function verifyBackup(options: BackupFileOptions): Promise<BackupSummary> {
  options.progress?.("verifying the bundle", 0, 1);
  const v = await verifyIn(await readBundleFile(options.file), options.password);
  options.progress?.("done", 1, 1);
  return { manifest: v.manifest, profiles: v.vault.records().length };
}

/**
 * Restores a bundle into the home directory (see `restoreBackup` in src/backup/backup.ts):
 * refuses a bundle that fails verification, keeps the current vault first, replaces the vault
 * file atomically under the vault lock. Audited as `backup.restore`.
 *
 * @param options The file, password and home.
 * @returns The restored generation and where the previous vault was kept.
 *
 * @example
 * ```ts ignore
 * await restoreBackup({ file: "/mnt/backups/vault.hecate-backup", password });
 * ```
 */
export async function restoreBackup(options: BackupFileOptions): Promise<RestoreResult> {
  const home = resolveHome({ home: options.home });
  const bytes = await readBundleFile(options.file);
  let result: RestoreResult;
  const audit = () => options.audit ?? new FileAuditLog(home);
  try {
    result = await restoreIn(home, bytes, options.password, { progress: options.progress });
  } catch (e) {
    await audit().append({
      event: "backup.restore",
      actor: { kind: "password" },
      outcome: "fail",
      reason: reasonOf(e),
    }).catch(() => {});
    throw e;
  }
  await audit().append({ event: "backup.restore", actor: { kind: "password" }, outcome: "ok" });
  return result;
}

/**
 * Lists bundles in `HOME/backups/`, oldest first (no password needed: names and sizes only).
 *
 * @param home Home directory. @default {$HECATE_HOME or ~/.hecate}
 * @returns The bundles.
 *
 * @example
 * ```ts ignore
 * const bundles = await listBackups("/srv/hecate");
 * console.log(bundles.at(-1)?.path);
 * ```
 */
export function listBackups(home?: string): Promise<BackupEntry[]> {
  return listIn(resolveHome({ home }));
}
