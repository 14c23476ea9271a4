/**
 * Environment overrides of the stored policy, which may only tighten it, and the home's copy of
 * the policy (`policy.state.json`) for what must be known before the vault is unlocked (lockout,
 * audit failure mode) or on the API-key path, which cannot open the sealed meta.
 *
 * The copy is a convenience, not an authority: the sealed meta is. A password unlock compares the
 * two and rewrites the copy (with a warning) when they differ. Whoever can write the home can
 * loosen the copy, exactly as they can delete the lockout counters (docs/SECURITY.md, "Policy").
 *
 * @module
 */

import { type LockoutPolicy, parseLockoutPolicy } from "../access/lockout.ts";
import { readState, updateState } from "../access/state_file.ts";
import { formatDuration, resolvePolicy, type StoredPolicy, type VaultPolicy } from "./policy.ts";

/** File name of the copy in the home directory. */
export const POLICY_CACHE_FILE = "policy.state.json";

/** Writes a warning line on stderr (never a secret: overrides hold none). */
function stderrWarning(message: string): void {
  console.error(`hecate: warning: ${message}`);
}

/**
 * The stored policy as the home's copy has it, or undefined when there is none (a vault that
 * never set its policy, or a copy removed: then today's defaults and environment apply).
 *
 * @param home The home directory.
 * @returns The copy's stored policy.
 */
export async function readPolicyCopy(home: string): Promise<StoredPolicy | undefined> {
  let state;
  try {
    state = await readState(home, POLICY_CACHE_FILE);
  } catch {
    return undefined;
  }
  const p = state.policy as StoredPolicy | undefined;
  if (!p || typeof p !== "object" || typeof p.settings !== "object" || p.settings === null) {
    return undefined;
  }
  try {
    resolvePolicy(p); // a copy that does not parse is ignored, as a missing one is
  } catch {
    return undefined;
  }
  return p;
}

/**
 * Makes the home's copy equal to the sealed policy. Returns whether it had to change anything.
 *
 * @param home The home directory.
 * @param stored The sealed policy (undefined: the vault has none, the copy is removed).
 * @returns True when the copy differed.
 */
export async function syncPolicyCopy(
  home: string,
  stored: StoredPolicy | undefined,
): Promise<boolean> {
  const want = stored === undefined ? undefined : JSON.stringify(stored.settings);
  return await updateState(home, POLICY_CACHE_FILE, (state) => {
    const have = state.policy === undefined
      ? undefined
      : JSON.stringify((state.policy as StoredPolicy).settings);
    if (have === want) return { write: false, result: false };
    if (stored === undefined) delete state.policy;
    else state.policy = { v: stored.v, settings: stored.settings };
    return { write: true, result: true };
  });
}

/**
 * The lockout in effect: the stored policy's, tightened by `HECATE_LOCKOUT` (a smaller count, a
 * longer window or lock). A looser part of the variable (or `off`) is ignored with a warning.
 * Without a stored policy the variable applies as it always has (it may loosen the defaults).
 *
 * @param stored The stored policy, or undefined.
 * @param envText `HECATE_LOCKOUT` (or the library option).
 * @param warn Receives the warning.
 * @returns The lockout, or null when off.
 * @throws {HecateError} `usage` for a malformed variable.
 */
export function effectiveLockout(
  stored: StoredPolicy | undefined,
  envText: string | undefined,
  warn: (message: string) => void = stderrWarning,
): LockoutPolicy | null {
  const fromEnv = parseLockoutPolicy(envText);
  if (stored === undefined) return fromEnv;
  const p = resolvePolicy(stored);
  const base: LockoutPolicy = {
    max: p.lockoutAttempts,
    windowMs: p.lockoutWindowMs,
    lockMs: p.lockoutLockMs,
  };
  if (envText === undefined || envText.trim() === "") return base;
  if (fromEnv === null) {
    warn(
      "HECATE_LOCKOUT=off is ignored: the vault's policy sets a lockout (see 'hecate policy show')",
    );
    return base;
  }
  const out: LockoutPolicy = {
    max: Math.min(base.max, fromEnv.max),
    windowMs: Math.max(base.windowMs, fromEnv.windowMs),
    lockMs: Math.max(base.lockMs, fromEnv.lockMs),
  };
  if (
    out.max !== fromEnv.max || out.windowMs !== fromEnv.windowMs || out.lockMs !== fromEnv.lockMs
  ) {
    warn(
      `HECATE_LOCKOUT is looser than the vault's policy in part; using ${out.max}/${
        formatDuration(out.windowMs)
      }/${formatDuration(out.lockMs)}`,
    );
  }
  return out;
}

/**
 * The audit failure mode in effect: the stored policy's, unless `HECATE_AUDIT_FAILURE=closed`
 * tightens `warn`. `warn` over a stored `closed` is ignored with a warning. Without a stored
 * policy, undefined: the audit log reads the variable as it always has.
 *
 * @param stored The stored policy, or undefined.
 * @param envText `HECATE_AUDIT_FAILURE`.
 * @param warn Receives the warning.
 * @returns The mode, or undefined to leave it to the audit log.
 */
export function effectiveAuditFailure(
  stored: StoredPolicy | undefined,
  envText: string | undefined,
  warn: (message: string) => void = stderrWarning,
): "closed" | "warn" | undefined {
  if (stored === undefined) return undefined;
  const mode = resolvePolicy(stored).auditFailure;
  if (envText === "closed") return "closed";
  if (envText === "warn" && mode === "closed") {
    warn("HECATE_AUDIT_FAILURE=warn is ignored: the vault's policy fails closed");
  }
  return mode;
}

/**
 * The audit log options a home's policy copy asks for: `{ failure }` when a stored policy sets
 * the mode (after `HECATE_AUDIT_FAILURE` may tighten it), else none.
 *
 * @param home The home directory.
 * @returns Options for `FileAuditLog`.
 */
export async function policyAuditOptions(home: string): Promise<{ failure?: "closed" | "warn" }> {
  let env: string | undefined;
  try {
    env = Deno.env.get("HECATE_AUDIT_FAILURE");
  } catch {
    env = undefined;
  }
  const failure = effectiveAuditFailure(await readPolicyCopy(home), env);
  return failure ? { failure } : {};
}

/**
 * A limit asked for (console session, agent) checked against the policy's ceiling.
 *
 * @param asked The requested limit, ms.
 * @param ceiling The policy's ceiling, ms (0: none).
 * @returns The smaller.
 */
export function withinCeiling(asked: number, ceiling: number): number {
  return ceiling > 0 ? Math.min(asked, ceiling) : asked;
}

export type { VaultPolicy };
