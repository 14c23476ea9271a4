/**
 * A circuit breaker per profile: after a run of connection failures it stops sending work to a
 * server that is down (calls fail at once with `circuit_open`), and after a cool-down lets a
 * limited number of trial calls through to see whether the server is back.
 *
 * States: `closed` (normal), `open` (refusing until the cool-down ends), `half-open` (trial
 * calls in flight; one success closes the circuit, one failure opens it again).
 *
 * @module
 */

import { HecateError } from "../errors.ts";

/**
 * The breaker's state.
 *
 * @example
 * ```ts ignore
 * if (pool.breakerState === "open") console.log("billing is down; not trying");
 * ```
 */
export type BreakerState = "closed" | "open" | "half-open";

/**
 * Options for {@link CircuitBreaker}.
 *
 * @example
 * ```ts ignore
 * vault.breaker("billing", { failureThreshold: 3, coolDownMs: 30_000 });
 * ```
 */
export interface BreakerOptions {
  /** Consecutive failures that open the circuit. @default {5} */
  failureThreshold?: number;
  /** Milliseconds the circuit stays open before trial calls are let through. @default {10000} */
  coolDownMs?: number;
  /** Trial calls allowed at once while half-open. @default {1} */
  halfOpenMaxCalls?: number;
  /** Clock in milliseconds, injectable for tests. @default {Date.now} */
  now?: () => number;
}

/**
 * A snapshot of a breaker for the caller.
 *
 * @example
 * ```ts ignore
 * const { state, failures, openedAt } = vault.breaker("billing").snapshot();
 * ```
 */
export interface BreakerSnapshot {
  /** Current state. */
  state: BreakerState;
  /** Consecutive failures counted while closed. */
  failures: number;
  /** When the circuit last opened (ms since the epoch), if it ever did. */
  openedAt: number | undefined;
}

/**
 * A circuit breaker. Record the outcome of every guarded call with {@link CircuitBreaker.success}
 * or {@link CircuitBreaker.failure} after {@link CircuitBreaker.enter} let it through.
 *
 * @example Guard a call
 * ```ts
 * import { CircuitBreaker } from "./breaker.ts";
 * const breaker = new CircuitBreaker("billing", { failureThreshold: 2, coolDownMs: 1000 });
 * breaker.enter(); // throws HecateError("circuit_open") while open
 * breaker.failure();
 * breaker.enter();
 * breaker.failure();
 * console.log(breaker.state); // "open"
 * ```
 */
export class CircuitBreaker {
  /** The profile this breaker guards. */
  readonly name: string;
  #threshold = 5;
  #coolDown = 10_000;
  #halfOpenMax = 1;
  #now: () => number = Date.now;
  #state: BreakerState = "closed";
  #failures = 0;
  #openedAt: number | undefined;
  #trials = 0;

  /**
   * Creates a closed breaker.
   *
   * @param name The profile name (for messages).
   * @param options Threshold, cool-down, trial calls and clock.
   */
  constructor(name: string, options: BreakerOptions = {}) {
    this.name = name;
    this.configure(options);
  }

  /**
   * Changes the settings given; the state is kept.
   *
   * @param options Settings to change.
   * @throws {HecateError} `usage` for a threshold below 1 or a negative cool-down.
   */
  configure(options: BreakerOptions): void {
    const threshold = options.failureThreshold ?? this.#threshold;
    const coolDown = options.coolDownMs ?? this.#coolDown;
    const halfOpenMax = options.halfOpenMaxCalls ?? this.#halfOpenMax;
    if (!Number.isInteger(threshold) || threshold < 1) {
      throw new HecateError("usage", "The breaker's failure threshold must be a positive integer");
    }
    if (!(coolDown >= 0)) {
      throw new HecateError("usage", "The breaker's cool-down must not be negative");
    }
    if (!Number.isInteger(halfOpenMax) || halfOpenMax < 1) {
      throw new HecateError("usage", "The breaker's half-open calls must be a positive integer");
    }
    this.#threshold = threshold;
    this.#coolDown = coolDown;
    this.#halfOpenMax = halfOpenMax;
    this.#now = options.now ?? this.#now;
  }

  /** The current state; an open circuit whose cool-down has ended reads as `half-open`. */
  get state(): BreakerState {
    if (this.#state === "open" && this.#now() - (this.#openedAt ?? 0) >= this.#coolDown) {
      this.#state = "half-open";
      this.#trials = 0;
    }
    return this.#state;
  }

  /** State, failure count and when it last opened. */
  snapshot(): BreakerSnapshot {
    return { state: this.state, failures: this.#failures, openedAt: this.#openedAt };
  }

  /**
   * Asks to make a call.
   *
   * @throws {HecateError} `circuit_open` while open, or while half-open with all trial calls
   * taken.
   */
  enter(): void {
    const state = this.state;
    if (state === "closed") return;
    if (state === "half-open" && this.#trials < this.#halfOpenMax) {
      this.#trials++;
      return;
    }
    const wait = Math.max(0, this.#coolDown - (this.#now() - (this.#openedAt ?? 0)));
    throw new HecateError(
      "circuit_open",
      `Profile "${this.name}" is failing: calls are refused for now (circuit open)`,
      { hint: `retry in ${Math.ceil(wait / 1000)} s, or check that the server is up` },
    );
  }

  /** Records a successful call: closes the circuit. */
  success(): void {
    this.#state = "closed";
    this.#failures = 0;
    this.#trials = 0;
  }

  /** Records a failed call: opens the circuit at the threshold, or at once when half-open. */
  failure(): void {
    if (this.#state === "half-open" || ++this.#failures >= this.#threshold) {
      this.#state = "open";
      this.#openedAt = this.#now();
      this.#trials = 0;
    }
  }

  /** Gives back a trial slot without an outcome (the call was cancelled before it ran). */
  release(): void {
    if (this.#state === "half-open" && this.#trials > 0) this.#trials--;
  }
}
