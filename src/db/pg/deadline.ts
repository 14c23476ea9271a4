/**
 * A cancellable timer that does not use the global `setTimeout`: in Deno 2.9 the first call of
 * `setTimeout` loads `node:timers` and with it the Node compatibility layer (about twenty
 * `ext:deno_node` modules), which the PostgreSQL driver's fast path must not pay for.
 * `AbortSignal.timeout` runs on Deno's own timers; once its listener is removed it no longer keeps
 * the process alive.
 *
 * @module
 */

/** A running timer. */
export interface Deadline {
  /** Resolves when the time is up (never, once cancelled). */
  readonly expired: Promise<void>;
  /** Stops waiting; the process may then exit before the time is up. */
  cancel(): void;
}

/**
 * Starts a timer.
 *
 * @param ms Milliseconds until {@link Deadline.expired} resolves.
 * @returns The timer.
 *
 * @example
 * ```ts
 * import { deadline } from "./deadline.ts";
 * const d = deadline(10);
 * await d.expired;
 * d.cancel();
 * ```
 */
export function deadline(ms: number): Deadline {
  const signal = AbortSignal.timeout(Math.max(0, Math.ceil(ms)));
  let onAbort = () => {};
  const expired = new Promise<void>((resolve) => {
    onAbort = () => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return { expired, cancel: () => signal.removeEventListener("abort", onAbort) };
}
