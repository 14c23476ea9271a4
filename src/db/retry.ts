/**
 * Retry with exponential backoff and full jitter, for transient failures only.
 *
 * Failures are classified by the driver's error code ({@link HecateError.driverCode}) and by
 * Hecate's own stable codes, never by message text. A statement is retried only when it cannot
 * have taken effect: the failure happened before it was sent (while connecting), or the caller
 * declared it idempotent. A write whose connection dropped after it was sent may have committed,
 * so it is never sent again.
 *
 * @module
 */

import { HecateError } from "../errors.ts";

/** SQLSTATEs and driver codes that mean "the connection or server is away for a moment". */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  // Socket errors (Node error codes, also used by mysql2 and tedious).
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "ECONNABORTED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  // PostgreSQL: admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections.
  "57P01",
  "57P02",
  "57P03",
  "53300",
  // MySQL (mysql2's names, which the native driver keeps): the server closed the connection;
  // too many connections.
  "PROTOCOL_CONNECTION_LOST",
  "ER_CON_COUNT_ERROR",
  // tedious: socket failure, connect timeout.
  "ESOCKET",
  "ETIMEOUT",
]);

/** Codes where the server refused the statement as a whole and rolled it back. */
const ROLLED_BACK_CODES: ReadonlySet<string> = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "ER_LOCK_DEADLOCK",
  "ER_LOCK_WAIT_TIMEOUT",
]);

/** Where a failure happened, which decides whether retrying is safe. */
export type FailurePhase = "connect" | "statement";

/**
 * Whether an error is transient: the same request may well succeed a moment later.
 *
 * @param e The error.
 * @returns True for connection-level failures (SQLSTATE class 08, 57P01-57P03, 53300, socket
 * errors, a connection lost mid-statement) and for serialization failures and deadlocks.
 *
 * @example Classify a refused connection
 * ```ts
 * import { HecateError } from "../errors.ts";
 * import { isTransient } from "./retry.ts";
 * const e = new HecateError("connection_failed", "Refused", { driverCode: "ECONNREFUSED" });
 * console.log(isTransient(e)); // true
 * ```
 */
export function isTransient(e: unknown): boolean {
  if (!(e instanceof HecateError)) return false;
  const code = e.driverCode;
  if (code !== undefined) {
    if (CONNECTION_CODES.has(code) || ROLLED_BACK_CODES.has(code)) return true;
    if (/^08[0-9A-Z]{3}$/.test(code)) return true; // SQLSTATE class 08: connection exception
    return false;
  }
  // A driver reports a transport failure without a code (e.g. the socket closed mid-statement)
  // as `connection_failed`; that is a lost connection, not a refused login or a bad profile.
  return e.code === "connection_failed";
}

/**
 * Whether an error means the connection itself is gone (it must not be reused), as opposed to a
 * statement the server refused on a healthy connection.
 *
 * @param e The error.
 * @returns True for lost connections and connection-level driver codes.
 */
export function isConnectionLost(e: unknown): boolean {
  if (!(e instanceof HecateError)) return false;
  const code = e.driverCode;
  if (code !== undefined && (CONNECTION_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) {
    return true;
  }
  return e.code === "connection_failed";
}

/**
 * Whether a failed attempt may be made again.
 *
 * @param e The error.
 * @param phase Where it happened.
 * @param idempotent Whether the caller declared the statement safe to run twice.
 * @returns True only for transient failures that cannot have changed data.
 */
export function isRetryable(e: unknown, phase: FailurePhase, idempotent: boolean): boolean {
  if (!isTransient(e)) return false;
  // Before the statement was sent nothing can have happened; after, only a statement the caller
  // declared idempotent may run again (it may have committed before the connection dropped).
  return phase === "connect" || idempotent;
}

/**
 * Options for {@link retry} and the pool's retry policy.
 *
 * @example
 * ```ts ignore
 * await vault.pool("billing", { retry: { attempts: 6, baseDelayMs: 50, maxDelayMs: 5000 } });
 * ```
 */
export interface RetryOptions {
  /** Attempts in all, the first included; 1 disables retrying. @default {4} */
  attempts?: number;
  /** Backoff base in milliseconds: the cap before jitter is `base * 2^n`. @default {100} */
  baseDelayMs?: number;
  /** Longest wait between attempts in milliseconds. @default {2000} */
  maxDelayMs?: number;
}

/** The retry policy with defaults filled in. */
export interface RetryPolicy {
  /** Attempts in all. */
  attempts: number;
  /** Backoff base in milliseconds. */
  baseDelayMs: number;
  /** Longest wait in milliseconds. */
  maxDelayMs: number;
}

/**
 * Fills in defaults and checks the values.
 *
 * @param options The caller's options.
 * @returns A complete policy.
 * @throws {HecateError} `usage` for a negative or non-integer value.
 */
export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  const p = {
    attempts: options.attempts ?? 4,
    baseDelayMs: options.baseDelayMs ?? 100,
    maxDelayMs: options.maxDelayMs ?? 2000,
  };
  if (!Number.isInteger(p.attempts) || p.attempts < 1) {
    throw new HecateError("usage", "Retry attempts must be a positive integer");
  }
  if (!(p.baseDelayMs >= 0) || !(p.maxDelayMs >= 0)) {
    throw new HecateError("usage", "Retry delays must not be negative");
  }
  return p;
}

/**
 * The wait before retry number `n` (0 for the first retry): "full jitter", a uniformly random
 * time between zero and `min(max, base * 2^n)`, so clients that failed together do not return
 * together.
 *
 * @param n Retry number, from 0.
 * @param policy The policy.
 * @param random A source of numbers in [0, 1). @default {Math.random}
 * @returns Milliseconds.
 */
export function backoffDelay(n: number, policy: RetryPolicy, random = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(n, 30));
  return Math.floor(random() * cap);
}

/** Options for one {@link retry} call. */
export interface RetryCallOptions extends RetryOptions {
  /** Where a failure of `fn` happens. @default {"connect"} */
  phase?: FailurePhase;
  /** Whether the statement may run twice. @default {false} */
  idempotent?: boolean;
  /** Give up rather than wait past this time (ms since the epoch). */
  deadline?: number;
  /** Called before each wait, e.g. to log. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `fn`, retrying transient failures with backoff (see {@link isRetryable}).
 *
 * @param fn The operation; called once per attempt.
 * @param options Policy, phase and idempotence.
 * @returns What `fn` returns.
 * @throws The last error when it is not retryable or the attempts are used up.
 *
 * @example Connect with retries
 * ```ts
 * import { retry } from "./retry.ts";
 * let calls = 0;
 * const v = await retry(() => Promise.resolve(++calls), { attempts: 3 });
 * console.log(v); // 1
 * ```
 */
export async function retry<T>(fn: () => Promise<T>, options: RetryCallOptions = {}): Promise<T> {
  const policy = retryPolicy(options);
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const again = attempt < policy.attempts &&
        isRetryable(e, options.phase ?? "connect", options.idempotent ?? false);
      if (!again) throw e;
      const delay = backoffDelay(attempt - 1, policy);
      if (options.deadline !== undefined && Date.now() + delay >= options.deadline) throw e;
      options.onRetry?.(e, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
