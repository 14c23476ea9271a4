/**
 * Doctor check: a lock held by a hung process. Hecate's locks are `flock` locks on files that
 * always exist (`vault.lock`, `audit.lock`, `*.state.json.lock`, the unlock agent's
 * `agent/handover.lock`): the kernel drops one when its
 * holder dies, so a lock is never stale on disk, but a hung holder blocks every writer. Each lock
 * is tried for {@link HOLD_THRESHOLD_MS} (Hecate's writers hold one for milliseconds); one not
 * free by then is reported. Taking a free lock for an instant delays a writer by as much.
 *
 * A try that timed out stays queued in the kernel until the holder lets go; its descriptor is
 * closed at once, so the lock is dropped the moment it is granted (or when the process exits).
 *
 * @module
 */

import { type Finding, shellQuote } from "./finding.ts";

/** A lock not free within this long is reported. */
export const HOLD_THRESHOLD_MS = 1_500;

/** The lock files of a home. */
export const LOCK_FILES: readonly string[] = [
  "vault.lock",
  "audit.lock",
  "generation.state.json.lock",
  "lockout.state.json.lock",
  "totp.state.json.lock",
  "apikeys.state.json.lock",
  "agent/handover.lock",
];

/**
 * Whether a lock file's exclusive lock can be had within `ms`.
 *
 * @param path The lock file (a regular file).
 * @param ms How long to try.
 * @returns True when it was free (and has been released again).
 */
export async function lockIsFree(path: string, ms: number): Promise<boolean> {
  const f = await Deno.open(path, { read: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const got = f.lock(true).then(() => true, () => false);
    const late = new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms));
    return await Promise.race([got, late]);
  } finally {
    clearTimeout(timer);
    f.close(); // releases it, or drops the queued try as soon as it is granted
  }
}

/**
 * Reports each of the home's lock files not free within {@link HOLD_THRESHOLD_MS}. The locks are
 * tried one after another, so a healthy home costs a few milliseconds.
 *
 * @param home The home directory (it exists).
 * @param thresholdMs How long to try each. @default {HOLD_THRESHOLD_MS}
 * @returns Findings, each with the lock file's `path`.
 */
export async function checkLocks(
  home: string,
  thresholdMs = HOLD_THRESHOLD_MS,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const name of LOCK_FILES) {
    const path = `${home}/${name}`;
    try {
      // A link or anything odd is the permissions check's finding; never open through it.
      if (!(await Deno.lstat(path)).isFile) continue;
      if (await lockIsFree(path, thresholdMs)) continue;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    const q = shellQuote(path);
    findings.push({
      check: "locks",
      severity: "warn",
      path,
      message: `"${path}" has been locked for over ${thresholdMs / 1000} s: a hung process ` +
        `blocks every writer`,
      fix: `find the holder with 'fuser -v ${q}' (or 'lsof ${q}'); if it is hung, kill it ` +
        `(the kernel then drops the lock)`,
    });
  }
  return findings;
}
