/**
 * A connection pool for one profile: at most `max` connections, at least `min` kept open, idle
 * ones closed after `idleTimeoutMs`, a bounded wait for a free one, a health check (ping) before
 * reusing a connection that sat idle, retried connects for transient failures, a circuit breaker
 * in front of the server, and a drain on close.
 *
 * The pool knows nothing of SQL: it hands out anything that can `ping()` and `close()`.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import type { CircuitBreaker } from "./breaker.ts";
import { isConnectionLost, isTransient, retry, type RetryOptions, retryPolicy } from "./retry.ts";

/** What the pool manages. */
export interface Poolable {
  /** A round trip proving the connection works. */
  ping(): Promise<unknown>;
  /** Closes the connection. */
  close(): Promise<void>;
}

/**
 * Options for a pool.
 *
 * @example
 * ```ts ignore
 * await using pool = await vault.pool("billing", { min: 1, max: 8, idleTimeoutMs: 60_000 });
 * ```
 */
export interface PoolOptions {
  /** Connections kept open even when idle. @default {0} */
  min?: number;
  /** Connections open at most, in use or idle. @default {10} */
  max?: number;
  /** An idle connection above `min` is closed after this many milliseconds. @default {30000} */
  idleTimeoutMs?: number;
  /** How long `acquire` waits for a connection, connecting included. @default {10000} */
  acquireTimeoutMs?: number;
  /**
   * A connection idle at least this long is pinged before it is handed out, and replaced if the
   * ping fails; 0 pings on every reuse. The default skips the ping for a connection released
   * moments ago (as HikariCP does) so busy pools pay no extra round trip. @default {500}
   */
  healthCheckAfterMs?: number;
  /** Retry policy for connecting (and for statements marked idempotent). */
  retry?: RetryOptions;
}

/**
 * Counts of a pool's connections.
 *
 * @example
 * ```ts ignore
 * const { total, idle, inUse, waiting } = pool.stats();
 * ```
 */
export interface PoolStats {
  /** Connections open (idle + in use) or being opened. */
  total: number;
  /** Idle connections. */
  idle: number;
  /** Connections handed out. */
  inUse: number;
  /** Callers waiting for a connection. */
  waiting: number;
}

/** How long closing one connection may take before the pool stops waiting for it. */
const CLOSE_WAIT_MS = 2000;

/**
 * Closes a connection without letting a hung close (a driver waiting for an `end` event from a
 * socket that is already gone) stall the pool.
 */
async function closeQuietly(conn: Poolable): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    conn.close().catch(() => {}),
    new Promise<void>((r) => timer = setTimeout(r, CLOSE_WAIT_MS)),
  ]);
  clearTimeout(timer);
}

/** Pings, failing when no answer comes within `ms` (a half-open socket may never answer). */
async function pingWithin(conn: Poolable, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      conn.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("ping timed out")), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface IdleEntry<C> {
  conn: C;
  since: number;
}

interface Waiter<C> {
  resolve: (entry: IdleEntry<C> | null) => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * A pool of connections made by `create`.
 *
 * @example Borrow a connection
 * ```ts ignore
 * const pool = new Pool("billing", () => openConnection(), { max: 4 });
 * const conn = await pool.acquire();
 * try {
 *   await conn.ping();
 * } finally {
 *   pool.release(conn);
 * }
 * await pool.close();
 * ```
 */
export class Pool<C extends Poolable> {
  /** The profile name, for messages. */
  readonly name: string;
  readonly #create: () => Promise<C>;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #min: number;
  readonly #max: number;
  readonly #idleTimeout: number;
  readonly #acquireTimeout: number;
  readonly #healthAfter: number;
  readonly #retry: RetryOptions;
  #idle: IdleEntry<C>[] = [];
  #busy = new Set<C>();
  #opening = 0;
  #waiters: Waiter<C>[] = [];
  #closed = false;
  #drained: (() => void) | undefined;
  readonly #sweeper: ReturnType<typeof setInterval>;

  /**
   * @param name Profile name.
   * @param create Opens one connection.
   * @param options Limits and timeouts.
   * @param breaker The profile's circuit breaker, if any.
   * @throws {HecateError} `usage` for inconsistent limits.
   */
  constructor(
    name: string,
    create: () => Promise<C>,
    options: PoolOptions = {},
    breaker?: CircuitBreaker,
  ) {
    this.name = name;
    this.#create = create;
    this.#breaker = breaker;
    this.#min = options.min ?? 0;
    this.#max = options.max ?? 10;
    this.#idleTimeout = options.idleTimeoutMs ?? 30_000;
    this.#acquireTimeout = options.acquireTimeoutMs ?? 10_000;
    this.#healthAfter = options.healthCheckAfterMs ?? 500;
    this.#retry = options.retry ?? {};
    retryPolicy(this.#retry);
    if (!Number.isInteger(this.#max) || this.#max < 1) {
      throw new HecateError("usage", "The pool's max size must be a positive integer");
    }
    if (!Number.isInteger(this.#min) || this.#min < 0 || this.#min > this.#max) {
      throw new HecateError("usage", "The pool's min size must be between 0 and its max size");
    }
    if (!(this.#acquireTimeout > 0) || !(this.#idleTimeout > 0) || !(this.#healthAfter >= 0)) {
      throw new HecateError("usage", "The pool's timeouts must be positive");
    }
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(this.#idleTimeout, 1000));
    // The sweeper alone must not keep a script alive.
    Deno.unrefTimer(this.#sweeper as unknown as number);
  }

  /** Current counts. */
  stats(): PoolStats {
    return {
      total: this.#idle.length + this.#busy.size + this.#opening,
      idle: this.#idle.length,
      inUse: this.#busy.size,
      waiting: this.#waiters.length,
    };
  }

  /** Opens connections until `min` are open. */
  async fill(): Promise<void> {
    const missing = this.#min - this.stats().total;
    const results = await Promise.allSettled(
      Array.from(
        { length: Math.max(0, missing) },
        () => this.#open(Date.now() + this.#acquireTimeout),
      ),
    );
    // Keep what opened (close() will close it) even when another attempt failed.
    for (const r of results) if (r.status === "fulfilled") this.#putIdle(r.value);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  /**
   * Borrows a connection; give it back with {@link Pool.release}.
   *
   * @returns A connection that answered a ping if it sat idle.
   * @throws {HecateError} `pool_timeout` when none is free in time, `circuit_open` while the
   * breaker refuses, or the connect error after retries.
   */
  async acquire(): Promise<C> {
    const deadline = Date.now() + this.#acquireTimeout;
    for (;;) {
      this.#checkOpen();
      let entry = this.#idle.pop() ?? null;
      if (!entry && this.stats().total < this.#max) {
        const conn = await this.#open(deadline);
        if (this.#closed) {
          await closeQuietly(conn);
          this.#checkOpen();
        }
        this.#busy.add(conn);
        return conn;
      }
      if (!entry) entry = await this.#wait(deadline);
      if (!entry) continue; // capacity was freed: open one
      this.#busy.add(entry.conn);
      if (Date.now() - entry.since >= this.#healthAfter) {
        try {
          await pingWithin(entry.conn, Math.max(1, deadline - Date.now()));
        } catch {
          // Dead (server restarted, socket dropped): replace it.
          this.#busy.delete(entry.conn);
          void this.#destroy(entry.conn);
          continue;
        }
      }
      return entry.conn;
    }
  }

  /**
   * Gives a connection back.
   *
   * @param conn The connection from {@link Pool.acquire}.
   * @param options `broken: true` closes it instead of keeping it.
   */
  release(conn: C, options: { broken?: boolean } = {}): void {
    if (!this.#busy.delete(conn)) return;
    if (options.broken || this.#closed) {
      void this.#destroy(conn);
    } else {
      this.#putIdle(conn);
    }
    this.#checkDrained();
  }

  /**
   * Borrows a connection for the length of `fn`. A failure that lost the connection closes it.
   *
   * @param fn The work.
   * @returns What `fn` returns.
   */
  async use<T>(fn: (conn: C) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    let broken = false;
    try {
      return await fn(conn);
    } catch (e) {
      broken = isConnectionLost(e);
      throw e;
    } finally {
      this.release(conn, { broken });
    }
  }

  /**
   * Stops lending, rejects waiting callers, waits for borrowed connections to come back, then
   * closes every connection.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      clearInterval(this.#sweeper);
      for (const w of this.#waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(this.#closedError());
      }
    }
    if (this.#busy.size > 0) {
      await new Promise<void>((resolve) => this.#drained = resolve);
    }
    const idle = this.#idle.splice(0);
    await Promise.all(idle.map((e) => closeQuietly(e.conn)));
  }

  /** Same as {@link Pool.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #closedError(): HecateError {
    return new HecateError("usage", `The pool for profile "${this.name}" is closed`);
  }

  #checkOpen(): void {
    if (this.#closed) throw this.#closedError();
  }

  #checkDrained(): void {
    if (this.#closed && this.#busy.size === 0 && this.#drained) {
      const d = this.#drained;
      this.#drained = undefined;
      d();
    }
  }

  /** Opens a connection through the breaker, retrying transient failures until the deadline. */
  async #open(deadline: number): Promise<C> {
    this.#opening++;
    try {
      return await retry(async () => {
        this.#breaker?.enter();
        try {
          const conn = await this.#create();
          this.#breaker?.success();
          return conn;
        } catch (e) {
          if (isTransient(e)) this.#breaker?.failure();
          else this.#breaker?.release();
          throw e;
        }
      }, { ...this.#retry, phase: "connect", deadline });
    } catch (e) {
      // The slot this attempt held is free again: a waiting caller may try to open one.
      this.#wakeForCapacity();
      throw e;
    } finally {
      this.#opening--;
    }
  }

  #putIdle(conn: C): void {
    const entry = { conn, since: Date.now() };
    const waiter = this.#waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(entry);
    } else {
      this.#idle.push(entry);
    }
  }

  async #destroy(conn: C): Promise<void> {
    this.#wakeForCapacity();
    await closeQuietly(conn);
  }

  /** Capacity is free again: the first waiter goes back to open a connection itself. */
  #wakeForCapacity(): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(null);
    }
  }

  #wait(deadline: number): Promise<IdleEntry<C> | null> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter<C> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          reject(
            new HecateError(
              "pool_timeout",
              `No connection for profile "${this.name}" became free within ${this.#acquireTimeout} ms`,
              {
                hint:
                  "raise the pool's max size or acquireTimeoutMs, or release connections sooner",
              },
            ),
          );
        }, Math.max(0, deadline - Date.now())),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Closes connections idle longer than the idle timeout, keeping `min`. */
  #sweep(): void {
    const now = Date.now();
    // Oldest first (the list is used as a stack, so the front holds the longest idle).
    while (
      this.#idle.length > 0 && this.stats().total > this.#min &&
      now - this.#idle[0]!.since >= this.#idleTimeout
    ) {
      const entry = this.#idle.shift()!;
      void closeQuietly(entry.conn);
    }
  }
}
