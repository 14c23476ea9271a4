/**
 * Backups from the library: verify and restore bundles without an open vault (the vault may be
 * the thing that was lost), and list them. Creating one needs an open vault: `vault.backups.create()`.
 * Verify and restore are unlocks and go through the same guard as `openVault`: lockout (checked
 * and counted), the second factor, and an audit record of success and failure.
 *
 * @module
 */

import { Lockout } from "../access/lockout.ts";
import { effectiveLockout, policyAuditOptions, readPolicyCopy } from "../policy/overrides.ts";
import { totpConfigOf } from "../access/totp.ts";
import { lastVaultId } from "../access/vault_generation.ts";
import { type Actor, type AuditSink, FileAuditLog } from "../audit/log.ts";
import {
  type BackupEntry,
  type CurrentVault,
  listBackups as listIn,
  type Progress,
  readBundleFile,
  restoreBackup as restoreIn,
  type RestoreResult,
  type VerifiedBackup,
  verifyBackup as verifyIn,
} from "../backup/backup.ts";
import type { BundleManifest } from "../backup/bundle.ts";
import { HecateError } from "../errors.ts";
import { ensureHome, resolveHome } from "../vault/home.ts";
import { VaultStore } from "../vault/store.ts";
import type { UnlockedVault } from "../vault/vault.ts";
import {
  type AccessContext,
  type CodeSource,
  failureOf,
  guarded,
  requireSecondFactor,
} from "./access.ts";
import { openVaultWithState } from "./open.ts";
import { reasonOf } from "./util.ts";
import type { AuditEventName } from "../audit/events.ts";

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
  /**
   * The master password. For {@link verifyBackup}: the one the vault had when the bundle was
   * made. For {@link restoreBackup}: the current vault's (it opens the bundle too, unless
   * `bundlePassword` is given); without a current vault, the bundle's.
   */
  password: string;
  /** The bundle's password when it differs from the current one (restore only). */
  bundlePassword?: string | undefined;
  /**
   * The one-time code, or a function asked for one only when required: the current vault's
   * second factor on restore, the bundle vault's when there is no current vault or on verify.
   */
  totp?: string | CodeSource | undefined;
  /** Home directory. @default {$HECATE_HOME or ~/.hecate} */
  home?: string | undefined;
  /** Progress reports for a terminal. */
  progress?: Progress | undefined;
  /** Audit sink. @default {the home's audit.jsonl} */
  audit?: AuditSink;
  /** Lockout policy text (`5/15m`, `off`). @default {$HECATE_LOCKOUT, else 5/15m} */
  lockout?: string | undefined;
  /** Clock, injectable for tests. @default {() => new Date()} */
  now?: () => Date;
}

/**
 * Options for {@link restoreBackup}.
 *
 * @example
 * ```ts ignore
 * await restoreBackup({ file: "other.hecate-backup", password, foreign: true });
 * ```
 */
export interface RestoreBackupOptions extends BackupFileOptions {
  /** Accept a bundle of another vault (another vault id) than the home's. @default {false} */
  foreign?: boolean | undefined;
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

const PASSWORD_ACTOR: Actor = { kind: "password" };

/** The access state of a password attempt on this home (lockout subject `password`). */
async function passwordAccess(
  home: string,
  options: BackupFileOptions,
  audit: AuditSink,
): Promise<AccessContext> {
  const now = options.now ?? (() => new Date());
  const totp = options.totp;
  // The home's copy of the vault's policy, as for an unlock (docs/SECURITY.md, "Policy").
  const copy = await readPolicyCopy(home);
  return {
    actor: PASSWORD_ACTOR,
    subject: "password",
    lockout: new Lockout(
      home,
      effectiveLockout(copy, options.lockout ?? Deno.env.get("HECATE_LOCKOUT")),
      now,
    ),
    audit,
    home,
    now,
    code: typeof totp === "function" ? totp : () => Promise.resolve(totp),
  };
}

/**
 * Opens a bundle with a password as an unlock of the vault inside: under lockout (a wrong
 * password is counted; a locked-out subject is refused before any work), then that vault's second
 * factor when it has one. Failures are audited as `event`.
 */
async function openGuarded(
  ctx: AccessContext,
  event: AuditEventName,
  bytes: Uint8Array<ArrayBuffer>,
  password: string,
  secondFactor: "required" | "required, recovery allowed" | "none",
): Promise<VerifiedBackup> {
  const verified = await guarded(
    ctx,
    event,
    () => verifyIn(bytes, password),
    failureOf("auth_failed"),
  );
  const totp = secondFactor !== "none" ? totpConfigOf(verified.vault.meta.totp) : undefined;
  if (totp) {
    // A recovery code only where it is spent (in the vault a restore writes), never on verify.
    const recovery = secondFactor === "required, recovery allowed";
    const ok = await requireSecondFactor(
      ctx,
      totp,
      "vault",
      "the vault in the backup",
      event,
      recovery,
    );
    // A recovery code spent here stays spent in the vault this bundle becomes.
    if (ok.kind === "recovery") {
      verified.vault.meta = { ...verified.vault.meta, totp: { ...totp, recovery: ok.remaining } };
    }
  }
  return verified;
}

/**
 * Checks a bundle: it authenticates and the vault inside opens with the password (and its one-time
 * code when that vault has TOTP on). This is an unlock of the vault inside: a locked-out home
 * refuses it, a wrong password counts toward lockout, and success and failure are audited as
 * `backup.verify` in the home's trail (a trail that cannot be written only warns: nothing is
 * released).
 *
 * @param options The file, password, code and home.
 * @returns Its manifest and profile count.
 * @throws {HecateError} `auth_failed`, `locked_out`, `totp_failed`, `vault_integrity`,
 * `unsupported_version`, `usage` when the file cannot be read.
 *
 * @example
 * ```ts ignore
 * const { manifest } = await verifyBackup({ file: "vault.hecate-backup", password });
 * console.log(manifest.created, manifest.generation);
 * ```
 */
export async function verifyBackup(options: BackupFileOptions): Promise<BackupSummary> {
  const home = resolveHome({ home: options.home });
  await ensureHome(home);
  const audit = options.audit ?? new FileAuditLog(home, { failure: "warn" });
  const ctx = await passwordAccess(home, options, audit);
  options.progress?.("verifying the bundle", 0, 1);
  let v: VerifiedBackup;
  try {
    const bytes = await readBundleFile(options.file);
    v = await openGuarded(ctx, "backup.verify", bytes, options.password, "required");
  } catch (e) {
    if (e instanceof HecateError && e.code === "usage") {
      await audit.append({
        event: "backup.verify",
        actor: PASSWORD_ACTOR,
        outcome: "fail",
        reason: e.code,
      })
        .catch(() => {});
    }
    throw e;
  }
  // No lockout.succeeded(): a bundle's (possibly old) password must not clear the count of
  // failures against the current one; only a complete unlock of the current vault does.
  await audit.append({
    event: "backup.verify",
    actor: PASSWORD_ACTOR,
    outcome: "ok",
    detail: { vault: v.manifest.vaultId, generation: v.manifest.generation },
  });
  options.progress?.("done", 1, 1);
  return {
    manifest: v.manifest,
    profiles: v.vault.summaries().filter((r) => r.summary.kind !== "secret").length,
  };
}

/**
 * Unlocks the current vault for a restore, through the very unlock `openVault` does (lockout,
 * second factor, rollback gate, audit). A file that is missing, damaged or of an unknown version
 * is no current vault: the restore then keeps its bytes and needs the bundle's credentials only.
 */
async function unlockCurrent(
  home: string,
  options: RestoreBackupOptions,
  audit: AuditSink,
): Promise<CurrentVault | undefined> {
  if (!(await new VaultStore(home).exists())) return undefined;
  try {
    const opened = await openVaultWithState({
      home,
      password: options.password,
      totp: options.totp,
      audit,
      lockout: options.lockout,
      ...(options.now ? { now: options.now } : {}),
    });
    return { state: opened.state as UnlockedVault, password: options.password };
  } catch (e) {
    if (e instanceof HecateError && DAMAGED.includes(e.code)) return undefined;
    throw e;
  }
}

/** Errors that say the current vault file cannot be read at all (not a refused credential). */
const DAMAGED: readonly string[] = ["vault_integrity", "unsupported_version", "vault_not_found"];

/**
 * Restores a bundle into the home directory. With a current vault, it must first be unlocked by
 * its owner exactly as `openVault` does (current password, its one-time code when TOTP is on,
 * lockout, rollback gate, audited); then the bundle is opened under lockout (with
 * `bundlePassword`, else the same password). Without one, the bundle's password and its vault's
 * one-time code are required. A bundle of another vault than the home's is refused unless
 * `foreign`. The restored vault keeps the current vault's second factor and audit chain key and
 * opens with the current password (see `restoreBackup` in src/backup/backup.ts). Audited as
 * `backup.restore` (success and every failure), after a `vault.write` record.
 *
 * @param options The file, passwords, code, home.
 * @returns The restored generation and where the previous vault was kept.
 * @throws {HecateError} `auth_failed`, `locked_out`, `totp_failed`, `vault_rolled_back`,
 * `vault_integrity`, `unsupported_version`, `usage` (unreadable file, or a foreign bundle
 * without `foreign`), `audit_failed`.
 *
 * @example
 * ```ts ignore
 * await restoreBackup({ file: "/mnt/backups/vault.hecate-backup", password });
 * ```
 */
export async function restoreBackup(options: RestoreBackupOptions): Promise<RestoreResult> {
  const home = resolveHome({ home: options.home });
  await ensureHome(home);
  const audit = options.audit ?? new FileAuditLog(home, await policyAuditOptions(home));
  const ctx = await passwordAccess(home, options, audit);
  const fail = (e: unknown) =>
    audit.append({
      event: "backup.restore",
      actor: PASSWORD_ACTOR,
      outcome: "fail",
      reason: reasonOf(e),
    })
      .catch(() => {});
  let current: CurrentVault | undefined;
  let verified: VerifiedBackup;
  let audited = false; // the guarded steps audit their own failures
  try {
    const bytes = await readBundleFile(options.file);
    audited = true;
    current = await unlockCurrent(home, options, audit);
    options.progress?.("verifying the bundle", 0, 3);
    verified = await openGuarded(
      ctx,
      "backup.restore",
      bytes,
      options.bundlePassword ?? options.password,
      current === undefined ? "required, recovery allowed" : "none",
    );
    // The count is not cleared here: the bundle's password may be an old one (see verify).
    audited = false;
    const homeVault = current?.state.id ?? await lastVaultId(home);
    if (homeVault !== undefined && verified.vault.id !== homeVault && !options.foreign) {
      throw new HecateError(
        "usage",
        "This bundle holds another vault than this home's (another vault id)",
        { hint: "pass --foreign (library: foreign: true) to replace this home's vault with it" },
      );
    }
  } catch (e) {
    if (!audited) await fail(e);
    throw e;
  }
  let result: RestoreResult;
  try {
    result = await restoreIn(home, verified, {
      current,
      audit,
      actor: PASSWORD_ACTOR,
      progress: options.progress,
    });
  } catch (e) {
    await fail(e);
    throw e;
  }
  await audit.append({
    event: "backup.restore",
    actor: PASSWORD_ACTOR,
    outcome: "ok",
    detail: {
      vault: verified.vault.id,
      generation: result.generation,
      bundle_created: verified.manifest.created,
      bundle_generation: verified.manifest.generation,
      ...(result.newChain ? { new_chain: true } : {}),
    },
  });
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
