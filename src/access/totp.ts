/**
 * TOTP second factor (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of tolerance
 * either side) through the `otpauth` library, plus one-time recovery codes and the replay guard.
 *
 * Replay: each accepted code's time step is remembered per secret in `totp.state.json` in the
 * home (written under a lock); a code whose step is not later than the last accepted one is
 * refused, so every code is accepted at most once. This needs no vault write (an API key cannot
 * write the vault). Limit: whoever can delete that file (write access to the home) can replay a
 * code within its 90-second window.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { timingSafeEqual, toHex, utf8 } from "../vault/encoding.ts";
import { randomBytes, sha256 } from "../vault/primitives.ts";
import { updateState } from "./state_file.ts";

/** File name of the replay guard in the home directory. */
export const TOTP_STATE_FILE = "totp.state.json";
/** Seconds per step. */
export const TOTP_PERIOD = 30;
/** Digits per code. */
export const TOTP_DIGITS = 6;

/** A TOTP setup as stored (vault meta for the vault, the record for a profile). */
export interface TotpConfig {
  /** The shared secret, base32 (RFC 4648). */
  secret: string;
  /** SHA-256 (hex) of each unused recovery code. */
  recovery: string[];
  /** When it was enabled, ISO 8601. */
  created: string;
}

/**
 * Makes a new random 160-bit TOTP secret (the RFC 4226 recommended length).
 *
 * @returns The secret, base32.
 */
export async function newTotpSecret(): Promise<string> {
  const { Secret } = await import("otpauth");
  return new Secret({ size: 20 }).base32;
}

async function totpFor(secret: string, label = "vault", issuer = "Hecate") {
  const { Secret, TOTP } = await import("otpauth");
  return new TOTP({
    issuer,
    label,
    algorithm: "SHA1",
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD,
    secret: Secret.fromBase32(secret),
  });
}

/**
 * The `otpauth://` URI for authenticator apps.
 *
 * @param secret The secret, base32.
 * @param label The account label (e.g. `vault` or the profile name).
 * @param issuer The issuer shown by the app.
 * @returns The URI (it contains the secret: print it once, at setup).
 */
export async function totpUri(secret: string, label: string, issuer = "Hecate"): Promise<string> {
  return (await totpFor(secret, label, issuer)).toString();
}

/**
 * The code for a time (for tests and for showing the current code nowhere else).
 *
 * @param secret The secret, base32.
 * @param now The time.
 * @returns The 6-digit code.
 */
export async function totpCode(secret: string, now: Date): Promise<string> {
  return (await totpFor(secret)).generate({ timestamp: now.getTime() });
}

/**
 * Checks a code against a secret at a time, with one step of tolerance.
 *
 * @param secret The secret, base32.
 * @param code The code typed.
 * @param now The time.
 * @returns The matched time step, or null.
 */
export async function matchTotp(secret: string, code: string, now: Date): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = (await totpFor(secret)).validate({
    token: code,
    timestamp: now.getTime(),
    window: 1,
  });
  return delta === null ? null : Math.floor(now.getTime() / 1000 / TOTP_PERIOD) + delta;
}

/**
 * Makes one-time recovery codes: 10 codes of 10 base32 characters (50 bits each).
 *
 * @returns The codes, as `xxxxx-xxxxx`.
 */
export function newRecoveryCodes(): string[] {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  return Array.from({ length: 10 }, () => {
    const b = randomBytes(10);
    const chars = Array.from(b, (x) => alphabet[x & 31]).join("");
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
}

/**
 * Hashes a recovery code for storage (codes have 50 random bits, so a plain SHA-256 suffices).
 *
 * @param code The code, any case, dashes optional.
 * @returns SHA-256, hex.
 */
export async function hashRecoveryCode(code: string): Promise<string> {
  return toHex(await sha256(utf8(code.trim().toLowerCase().replaceAll("-", ""))));
}

/** What {@link verifySecondFactor} accepted. */
export type SecondFactorResult =
  | { kind: "totp"; step: number }
  | { kind: "recovery"; remaining: string[]; spent: string };

/** Options for {@link verifySecondFactor}. */
export interface VerifySecondFactorOptions {
  /** The home directory (replay guard). */
  home: string;
  /** Which secret this is, for the replay guard: `vault` or `profile:<record id>`. */
  secretId: string;
  /** The current time. */
  now: Date;
  /** Whether a recovery code may be used (only when the vault can be rewritten to spend it). */
  allowRecovery: boolean;
}

function totpFailed(message: string): HecateError {
  return new HecateError("totp_failed", message, {
    hint: "give a current code from your authenticator with --totp or HECATE_TOTP",
  });
}

/**
 * Checks a one-time code or a recovery code. A TOTP code is accepted once: its step is stored in
 * the replay guard under a lock before this returns. A recovery code is only matched here; the
 * caller must remove `remaining`'s missing hash from the vault (spend it) before relying on it.
 *
 * @param config The stored setup.
 * @param code What the person gave.
 * @param options Home, secret id, clock, whether recovery codes are allowed.
 * @returns What was accepted.
 * @throws {HecateError} `totp_failed` for a wrong, replayed or disallowed code.
 */
export async function verifySecondFactor(
  config: TotpConfig,
  code: string,
  options: VerifySecondFactorOptions,
): Promise<SecondFactorResult> {
  const given = code.trim();
  if (/^\d{6}$/.test(given)) {
    const step = await matchTotp(config.secret, given, options.now);
    if (step === null) throw totpFailed("The one-time code is wrong or out of its time window");
    const fresh = await updateState(options.home, TOTP_STATE_FILE, (state) => {
      const last = typeof state[options.secretId] === "number"
        ? state[options.secretId] as number
        : -1;
      if (step <= last) return { write: false, result: false };
      state[options.secretId] = step;
      return { write: true, result: true };
    });
    if (!fresh) throw totpFailed("This one-time code was already used");
    return { kind: "totp", step };
  }
  if (!options.allowRecovery) {
    throw totpFailed("A recovery code can only be used with the master password");
  }
  const hash = await hashRecoveryCode(given);
  const want = utf8(hash);
  const hit = config.recovery.find((h) => timingSafeEqual(utf8(h), want));
  if (!hit) {
    throw totpFailed("The code is neither a valid one-time code nor an unused recovery code");
  }
  return { kind: "recovery", remaining: config.recovery.filter((h) => h !== hit), spent: hit };
}

/**
 * Spends a recovery code in the setup as it is now on disk: the caller reads the vault afresh
 * under its write lock and stores the result in the same locked write, so of two processes that
 * matched the same code only the first to take the lock spends it, and a code spent by another
 * process meanwhile is not put back.
 *
 * @param current The setup read afresh under the vault write lock (undefined: TOTP is off now).
 * @param spent The code's hash ({@link SecondFactorResult} `spent`).
 * @returns The setup without that hash.
 * @throws {HecateError} `totp_failed` when the hash is no longer there (spent meanwhile).
 */
export function spendRecoveryCode(current: TotpConfig | undefined, spent: string): TotpConfig {
  if (!current || !current.recovery.includes(spent)) {
    throw totpFailed("This recovery code was just used by another process");
  }
  return { ...current, recovery: current.recovery.filter((h) => h !== spent) };
}

/**
 * Reads a TOTP setup from a stored JSON value.
 *
 * @param v The stored value.
 * @returns The setup, or undefined when there is none.
 */
export function totpConfigOf(v: unknown): TotpConfig | undefined {
  const o = v as Partial<TotpConfig> | undefined;
  if (!o || typeof o !== "object" || typeof o.secret !== "string") return undefined;
  return {
    secret: o.secret,
    recovery: Array.isArray(o.recovery) ? o.recovery.filter((h) => typeof h === "string") : [],
    created: typeof o.created === "string" ? o.created : "",
  };
}
