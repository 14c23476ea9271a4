/**
 * The password KDF cost policy: never below the OWASP 2023 floor for PBKDF2-HMAC-SHA256, and
 * calibrated upward at `init` to a target unlock time on the machine that creates the vault.
 *
 * @module
 */

import { pbkdf2Sha256, randomBytes } from "./vault/primitives.ts";

/** The least PBKDF2-HMAC-SHA256 iteration count a new password slot gets (OWASP 2023). */
export const MIN_KDF_ITERATIONS = 600_000;
/** The most iterations calibration will choose, so a fast machine does not lock out a slow one. */
export const MAX_CALIBRATED_ITERATIONS = 5_000_000;

/** Options for {@link calibrateIterations}. */
export interface CalibrateOptions {
  /** Wanted derivation time in milliseconds. @default {250} */
  targetMs?: number;
}

/**
 * Measures PBKDF2 speed here and returns the iteration count that takes about `targetMs`,
 * rounded to 10,000 and kept between {@link MIN_KDF_ITERATIONS} and
 * {@link MAX_CALIBRATED_ITERATIONS}.
 *
 * @param options Target time.
 * @returns Iterations.
 */
export async function calibrateIterations(options: CalibrateOptions = {}): Promise<number> {
  const target = options.targetMs ?? 250;
  const probe = 100_000;
  const pw = randomBytes(16), salt = randomBytes(16);
  await pbkdf2Sha256(pw, salt, 10_000); // warm up
  const t0 = performance.now();
  await pbkdf2Sha256(pw, salt, probe);
  const ms = Math.max(performance.now() - t0, 1);
  const n = Math.round((probe * target) / ms / 10_000) * 10_000;
  return Math.min(Math.max(n, MIN_KDF_ITERATIONS), MAX_CALIBRATED_ITERATIONS);
}
