/**
 * `hecate doctor`: runs the checks of this directory over one home and collects their findings.
 * What needs no password runs always (permissions, temp files, locks, the vault file and the
 * rollback gate, KDF cost, the audit chain's continuity); with an unlock, also the profiles'
 * transport security, API-key expiry and the audit trail's full verification.
 *
 * @module
 */

import { snapshotTrail, type TrailSnapshot } from "../audit/verify.ts";
import type { Vault } from "../api/vault.ts";
import { HecateError } from "../errors.ts";
import { checkApiKeys } from "./api_keys.ts";
import { checkAuditVerified, checkChainContinuity, unreadableState } from "./audit_chain.ts";
import type { Finding } from "./finding.ts";
import { judgeKdfCost, measurePbkdf2 } from "./kdf_cost.ts";
import { checkLocks } from "./locks.ts";
import { checkPermissions } from "./permissions.ts";
import { checkTempFiles } from "./temp_files.ts";
import { checkTransport, type TransportProfile } from "./transport.ts";
import { checkVaultFile } from "./vault_file.ts";

/** Options for {@link runDoctor}. */
export interface DoctorOptions {
  /** The home directory. */
  home: string;
  /**
   * Unlocks the vault with the master password; absent to run only the checks that need none.
   * Errors other than a damaged or rolled-back vault (a wrong password, a lockout) propagate.
   */
  unlock?: (() => Promise<Vault>) | undefined;
  /** Why there is no unlock, for the note that says what was skipped. */
  skipped?: string | undefined;
  /** Current time. @default {new Date()} */
  now?: Date;
  /** PBKDF2 speed here, ms per iteration. @default {measurePbkdf2} */
  measureKdf?: () => Promise<number>;
  /** How long a lock may stay taken before it is reported, ms. @default {HOLD_THRESHOLD_MS} */
  lockThresholdMs?: number;
}

/** What a run found. */
export interface DoctorReport {
  /** The home directory checked. */
  home: string;
  /** Whether the checks that need the master password ran. */
  unlocked: boolean;
  /** Findings in check order. */
  findings: Finding[];
}

/** Unlock failures that are the doctor's to report, not to stop at. */
const REPORTED_UNLOCK_ERRORS = new Set([
  "vault_integrity",
  "vault_rolled_back",
  "insecure_home",
  "unsupported_version",
  "audit_failed",
  "audit_tampered",
]);

async function homeFinding(home: string): Promise<Finding | undefined> {
  try {
    const st = await Deno.stat(home);
    if (st.isDirectory) return undefined;
    return { check: "home", severity: "error", message: `Home "${home}" is not a directory` };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return {
      check: "home",
      severity: "error",
      message: `No Hecate home at "${home}"`,
      fix: "hecate init (or pass --home DIR / set HECATE_HOME)",
    };
  }
}

/**
 * Runs every check.
 *
 * @param options The home, the unlock and test hooks.
 * @returns The report.
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const { home } = options;
  const now = options.now ?? new Date();
  const missing = await homeFinding(home);
  if (missing) return { home, unlocked: false, findings: [missing] };
  const findings: Finding[] = [];
  const permissions = await checkPermissions(home);
  findings.push(...permissions);
  // Unlock refuses an unsafe home; that is reported above, not again as a failed unlock.
  const unsafeHome = permissions.some((f) => f.path === home && f.severity === "error");
  findings.push(...await checkTempFiles(home, now.getTime()));
  const lockFindings = await checkLocks(home, options.lockThresholdMs);
  findings.push(...lockFindings);
  // A hung holder of the audit lock would make the doctor wait too: skip what needs that lock.
  const auditBlocked = lockFindings.some((f) => f.path === `${home}/audit.lock`);

  const vaultFile = await checkVaultFile(home);
  findings.push(...vaultFile.findings);

  let snap: TrailSnapshot | undefined;
  const continuity: Finding[] = [];
  if (auditBlocked) {
    findings.push({
      check: "audit",
      severity: "info",
      message: "The audit trail was not checked: its lock is held (see above)",
    });
  } else {
    try {
      snap = await snapshotTrail(home);
      continuity.push(...await checkChainContinuity(snap));
    } catch (e) {
      const f = unreadableState(e);
      if (!f) throw e;
      continuity.push(f);
    }
  }

  let vault: Vault | undefined;
  // An unlock may wait on any of the locks (the audit record, the lockout counters, a KDF
  // upgrade's write): with one held, it is not tried.
  let skipped = options.skipped;
  if (options.unlock && lockFindings.length > 0) skipped = "a lock is held (see above)";
  else if (options.unlock && (!vaultFile.unlockable || unsafeHome)) {
    skipped = "the vault cannot be unlocked (see above)";
  }
  if (options.unlock && skipped === undefined) {
    try {
      vault = await options.unlock();
    } catch (e) {
      if (!(e instanceof HecateError) || !REPORTED_UNLOCK_ERRORS.has(e.code)) throw e;
      findings.push({
        check: "vault",
        severity: "error",
        message: `Unlock failed: ${e.message}`,
        ...(e.hint ? { fix: e.hint } : {}),
      });
    }
  }

  try {
    const iterations = vault ? vault.keys.kdfIterations : vaultFile.facts?.iterations;
    if (iterations !== undefined) {
      findings.push(judgeKdfCost(iterations, await (options.measureKdf ?? measurePbkdf2)()));
    }
    if (vault) {
      for (const p of vault.profiles.list()) {
        findings.push(
          ...checkTransport(await vault.profiles.show(p.name) as unknown as TransportProfile),
        );
      }
      findings.push(...checkApiKeys(await vault.apiKeys.list(), now));
      const a0 = vault.auditChainKey();
      if (a0 && snap) {
        findings.push(...await checkAuditVerified(home, a0, snap, vault));
      } else {
        findings.push(...continuity);
        if (!a0) {
          findings.push({
            check: "audit",
            severity: "warn",
            message: "The vault has no audit chain key: its trail cannot be verified",
          });
        }
      }
    } else {
      findings.push(...continuity);
      if (vaultFile.facts) {
        findings.push({
          check: "unlock",
          severity: "info",
          message: "Not checked without the master password: TLS and SSH of each profile, " +
            `API-key expiry, the audit trail's MACs${skipped ? ` (${skipped})` : ""}`,
          // Only a missing password source is the user's to fix by running it differently.
          ...(!options.unlock
            ? { fix: "hecate doctor with --password-stdin, HECATE_PASSWORD_FILE or on a terminal" }
            : {}),
        });
      }
    }
  } finally {
    await vault?.close();
  }
  return { home, unlocked: vault !== undefined, findings };
}
