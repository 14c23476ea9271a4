/**
 * Typed errors with stable codes and exit codes.
 *
 * Every layer below the CLI throws a {@link HecateError}; `main.ts` is the only place that turns
 * one into text and an exit code. Messages never contain secrets: callers pass names, never values.
 *
 * @module
 */

/**
 * Exit codes that scripts can rely on. Documented in README.md and docs/CLI.md.
 *
 * @example
 * ```ts
 * import { ExitCode } from "./errors.ts";
 * console.log(ExitCode.PROFILE_NOT_FOUND); // 5
 * ```
 */
export const ExitCode = {
  /** The command did what was asked. */
  OK: 0,
  /** An unexpected failure inside Hecate (a bug). */
  INTERNAL: 1,
  /** The command line was wrong: unknown option, missing argument, conflicting flags. */
  USAGE: 2,
  /** The password (or other credential) did not unlock the vault. */
  AUTH_FAILED: 3,
  /** The vault file is damaged or was tampered with. */
  VAULT_INTEGRITY: 4,
  /** No profile of that name exists. */
  PROFILE_NOT_FOUND: 5,
  /** The database server could not be reached or refused the login. */
  CONNECTION_FAILED: 6,
  /** The server ran the statement and reported an error. */
  QUERY_FAILED: 7,
  /** No vault exists in the home directory. */
  VAULT_NOT_FOUND: 8,
  /** The vault file was written by a format version this build does not know. */
  UNSUPPORTED_VERSION: 9,
  /** `init` was asked to create a vault where one already exists, or a name is taken. */
  ALREADY_EXISTS: 10,
  /** The home directory or a vault file has unsafe ownership or permissions. */
  INSECURE_HOME: 11,
  /** The audit record could not be written, so nothing was released. */
  AUDIT_FAILED: 12,
  /** Too many failed attempts: further attempts are refused for a while. */
  LOCKED_OUT: 13,
  /** The API key has expired. */
  KEY_EXPIRED: 14,
  /** The API key was revoked or is unknown. */
  KEY_REVOKED: 15,
  /** A one-time code was required and missing, wrong, or already used. */
  TOTP_FAILED: 16,
  /** A profile definition is incomplete or invalid. */
  INVALID_PROFILE: 17,
  /** A secret reference (env:, file:, ...) could not be resolved. */
  SECRET_UNRESOLVED: 18,
  /** No credential was supplied and none can be asked for (no terminal). */
  NO_CREDENTIAL: 19,
  /** The audit trail failed verification. */
  AUDIT_TAMPERED: 20,
  /** An SSH server presented a host key that nothing (known_hosts, a pin) vouches for. */
  HOST_KEY_UNKNOWN: 21,
  /** An SSH server presented a host key other than the known or pinned one, or a revoked one. */
  HOST_KEY_CHANGED: 22,
  /** The profile's circuit breaker is open: recent connection failures, calls refused for now. */
  CIRCUIT_OPEN: 23,
  /** No pooled connection became free within the acquire timeout. */
  POOL_TIMEOUT: 24,
  /**
   * The vault file is older than one this home has already used (a kept generation or an old copy
   * put back), as the audit trail's record of written generations shows.
   */
  VAULT_ROLLED_BACK: 25,
  /** `hecate doctor` found warnings (and no errors). */
  DOCTOR_WARNINGS: 26,
  /** `hecate doctor` found at least one error. */
  DOCTOR_ERRORS: 27,
  /** The API key is not allowed to do this (e.g. `run`/`env` without `--allow-credentials`). */
  KEY_NOT_ALLOWED: 28,
} as const;

/**
 * One of the values of {@link ExitCode}.
 *
 * @example
 * ```ts
 * import { ExitCode, type ExitCodeValue } from "./errors.ts";
 * const code: ExitCodeValue = ExitCode.OK;
 * console.log(code);
 * ```
 */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/**
 * Stable machine-readable error codes, one per failure class.
 *
 * @example
 * ```ts
 * import type { ErrorCode } from "./errors.ts";
 * const code: ErrorCode = "circuit_open";
 * console.log(code);
 * ```
 */
export type ErrorCode =
  | "internal"
  | "usage"
  | "auth_failed"
  | "vault_integrity"
  | "profile_not_found"
  | "connection_failed"
  | "query_failed"
  | "vault_not_found"
  | "unsupported_version"
  | "already_exists"
  | "insecure_home"
  | "audit_failed"
  | "locked_out"
  | "key_expired"
  | "key_revoked"
  | "totp_failed"
  | "invalid_profile"
  | "secret_unresolved"
  | "no_credential"
  | "audit_tampered"
  | "host_key_unknown"
  | "host_key_changed"
  | "circuit_open"
  | "pool_timeout"
  | "vault_rolled_back"
  | "key_not_allowed";

const EXIT_BY_CODE: Record<ErrorCode, ExitCodeValue> = {
  internal: ExitCode.INTERNAL,
  usage: ExitCode.USAGE,
  auth_failed: ExitCode.AUTH_FAILED,
  vault_integrity: ExitCode.VAULT_INTEGRITY,
  profile_not_found: ExitCode.PROFILE_NOT_FOUND,
  connection_failed: ExitCode.CONNECTION_FAILED,
  query_failed: ExitCode.QUERY_FAILED,
  vault_not_found: ExitCode.VAULT_NOT_FOUND,
  unsupported_version: ExitCode.UNSUPPORTED_VERSION,
  already_exists: ExitCode.ALREADY_EXISTS,
  insecure_home: ExitCode.INSECURE_HOME,
  audit_failed: ExitCode.AUDIT_FAILED,
  locked_out: ExitCode.LOCKED_OUT,
  key_expired: ExitCode.KEY_EXPIRED,
  key_revoked: ExitCode.KEY_REVOKED,
  totp_failed: ExitCode.TOTP_FAILED,
  invalid_profile: ExitCode.INVALID_PROFILE,
  secret_unresolved: ExitCode.SECRET_UNRESOLVED,
  no_credential: ExitCode.NO_CREDENTIAL,
  audit_tampered: ExitCode.AUDIT_TAMPERED,
  host_key_unknown: ExitCode.HOST_KEY_UNKNOWN,
  host_key_changed: ExitCode.HOST_KEY_CHANGED,
  circuit_open: ExitCode.CIRCUIT_OPEN,
  pool_timeout: ExitCode.POOL_TIMEOUT,
  vault_rolled_back: ExitCode.VAULT_ROLLED_BACK,
  key_not_allowed: ExitCode.KEY_NOT_ALLOWED,
};

/** Options for {@link HecateError}. */
export interface HecateErrorOptions {
  /** The underlying error, kept for debugging; never printed by the CLI. */
  cause?: unknown;
  /** A line telling the user what to do next. */
  hint?: string;
  /**
   * The driver's own error code, when the failure came from a driver: a SQLSTATE (`57P01`), a
   * socket error (`ECONNREFUSED`), a MySQL or TDS code. Retry logic classifies by this field.
   */
  driverCode?: string | undefined;
}

/**
 * The one error type that crosses layer boundaries. `code` is stable and `exitCode` follows it.
 *
 * @example Branch on the code
 * ```ts
 * import { HecateError } from "./errors.ts";
 * try {
 *   throw new HecateError("auth_failed", "Wrong password");
 * } catch (e) {
 *   if (e instanceof HecateError && e.code === "auth_failed") console.log(e.exitCode); // 3
 * }
 * ```
 */
export class HecateError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** A line telling the user what to do next, if any. */
  readonly hint: string | undefined;
  /** The driver's error code (SQLSTATE, socket error code), if the failure came from a driver. */
  readonly driverCode: string | undefined;

  /**
   * Creates an error.
   *
   * @param code The failure class.
   * @param message One line, sentence case, no trailing period, no secret.
   * @param options Cause and hint.
   */
  constructor(code: ErrorCode, message: string, options: HecateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HecateError";
    this.code = code;
    this.hint = options.hint;
    this.driverCode = options.driverCode;
  }

  /** The process exit code for this failure. */
  get exitCode(): ExitCodeValue {
    return EXIT_BY_CODE[this.code];
  }
}

/**
 * Returns the exit code for an error code.
 *
 * @param code The error code.
 * @returns Its exit code.
 */
export function exitCodeFor(code: ErrorCode): ExitCodeValue {
  return EXIT_BY_CODE[code];
}
