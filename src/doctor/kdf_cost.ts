/**
 * Doctor check: the master password's PBKDF2 cost against this machine. A small sample derivation
 * gives the speed here; the vault's iteration count gives the unlock time that follows, and the
 * count that would take the calibration target ({@link calibrateIterations}, 250 ms) is suggested
 * when the cost is far from it.
 *
 * @module
 */

import { MAX_CALIBRATED_ITERATIONS, MIN_KDF_ITERATIONS } from "../kdf.ts";
import { pbkdf2Sha256, randomBytes } from "../vault/primitives.ts";
import type { Finding } from "./finding.ts";

/** Iterations of the timing sample (a few tens of milliseconds). */
const SAMPLE = 50_000;
/** Unlock time the suggestion aims at, as `init` calibrates. */
const TARGET_MS = 250;
/** An unlock slower than this is reported. */
export const SLOW_MS = 3_000;
/** An unlock faster than this leaves room for a higher cost (reported as a note). */
export const FAST_MS = 60;

/**
 * Measures PBKDF2-HMAC-SHA256 here.
 *
 * @returns Milliseconds per iteration.
 */
export async function measurePbkdf2(): Promise<number> {
  const pw = randomBytes(16), salt = randomBytes(16);
  await pbkdf2Sha256(pw, salt, 5_000); // warm up
  const t0 = performance.now();
  await pbkdf2Sha256(pw, salt, SAMPLE);
  return Math.max(performance.now() - t0, 0.5) / SAMPLE;
}

function suggested(msPerIteration: number): number {
  const n = Math.round(TARGET_MS / msPerIteration / 10_000) * 10_000;
  return Math.min(Math.max(n, MIN_KDF_ITERATIONS), MAX_CALIBRATED_ITERATIONS);
}

/**
 * Judges the password slot's cost.
 *
 * @param iterations The slot's PBKDF2 iterations.
 * @param msPerIteration The speed here ({@link measurePbkdf2}).
 * @returns One finding.
 */
export function judgeKdfCost(iterations: number, msPerIteration: number): Finding {
  const ms = Math.round(iterations * msPerIteration);
  const cost = `${iterations.toLocaleString("en-US")} PBKDF2 iterations (about ${ms} ms per ` +
    `unlock on this machine)`;
  const better = suggested(msPerIteration);
  const fix = `hecate passwd --kdf-iterations ${better} (the same password may be given again)`;
  if (iterations < MIN_KDF_ITERATIONS) {
    return {
      check: "kdf",
      severity: "warn",
      message: `The master password uses ${cost}, below the floor of ` +
        `${MIN_KDF_ITERATIONS.toLocaleString("en-US")}: the next unlock with it raises the cost`,
      fix: `hecate server list (any unlock with the master password raises it), or ${fix}`,
    };
  }
  if (ms > SLOW_MS) {
    return {
      check: "kdf",
      severity: "warn",
      message: `The master password uses ${cost}: unlocking is slow here`,
      fix,
    };
  }
  if (ms < FAST_MS && better > iterations) {
    return {
      check: "kdf",
      severity: "info",
      message: `The master password uses ${cost}: this machine could afford ${better}`,
      fix,
    };
  }
  return { check: "kdf", severity: "info", message: `The master password uses ${cost}` };
}
