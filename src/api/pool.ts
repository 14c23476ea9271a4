/**
 * A pool of audited connections for one profile, with retry and the profile's circuit breaker.
 *
 * @module
 */

import type { BreakerState, CircuitBreaker } from "../db/breaker.ts";
import { Pool, type PoolOptions, type PoolStats } from "../db/pool.ts";
import { backoffDelay, isConnectionLost, isRetryable, retryPolicy } from "../db/retry.ts";
import type { Connection } from "./connection.ts";
import { QueryRows, type Row, rowsOfFirstSet } from "./rows.ts";

/**
 * Options for {@link ConnectionPool.query}.
 *
 * @example
 * ```ts ignore
 * const rows = await pool.query("select 1", [], { idempotent: true }).toArray();
 * ```
 */
export interface PoolQueryOptions {
  /**
   * The statement may safely run twice (a read, or a write that is idempotent by design). Only
   * then is it retried after a transient failure that happened once it was sent; a statement
   * that is not idempotent is retried only when it failed before being sent. @default {false}
   */
  idempotent?: boolean;
}

/**
 * Pooled, audited connections for one profile. Made by `vault.pool(name, options)`.
 *
 * @example Query through a pool
 * ```ts ignore
 * await using pool = await vault.pool("billing", { max: 4 });
 * for await (const row of pool.query("select id from invoices", [], { idempotent: true })) {
 *   console.log(row.id);
 * }
 * ```
 */
export class ConnectionPool {
  /** The profile name. */
  readonly profile: string;
  readonly #pool: Pool<Connection>;
  readonly #breaker: CircuitBreaker;
  readonly #policy: ReturnType<typeof retryPolicy>;
  readonly #onClose: () => void;

  /** @internal Use `vault.pool()`. */
  constructor(
    profile: string,
    open: () => Promise<Connection>,
    options: PoolOptions,
    breaker: CircuitBreaker,
    onClose: () => void = () => {},
  ) {
    this.profile = profile;
    this.#policy = retryPolicy(options.retry);
    this.#breaker = breaker;
    this.#pool = new Pool(profile, open, options, breaker);
    this.#onClose = onClose;
  }

  /** @internal Opens `min` connections. */
  fill(): Promise<void> {
    return this.#pool.fill();
  }

  /** Counts of open, idle and borrowed connections and of waiting callers. */
  stats(): PoolStats {
    return this.#pool.stats();
  }

  /** The state of the profile's circuit breaker: `closed`, `open` or `half-open`. */
  get breakerState(): BreakerState {
    return this.#breaker.state;
  }

  /**
   * Runs a statement on a pooled connection and streams its rows; the connection goes back to
   * the pool when the rows are read (or the loop is left). A transient failure is retried with
   * backoff when no row has been handed out yet and it is safe (see
   * {@link PoolQueryOptions.idempotent}).
   *
   * @param sql The statement.
   * @param params Positional parameters.
   * @param options Idempotence.
   * @returns The rows and their columns.
   */
  query(sql: string, params: readonly unknown[] = [], options: PoolQueryOptions = {}): QueryRows {
    const pool = this.#pool;
    const breaker = this.#breaker;
    const policy = this.#policy;
    const idempotent = options.idempotent ?? false;
    const collect = async () => {
      for (let attempt = 1;; attempt++) {
        const conn = await pool.acquire();
        let broken = false;
        try {
          const result = await conn.collect(sql, params);
          breaker.success();
          return result;
        } catch (e) {
          broken = isConnectionLost(e);
          if (broken) breaker.failure();
          if (!(attempt < policy.attempts && isRetryable(e, "statement", idempotent))) throw e;
        } finally {
          pool.release(conn, { broken });
        }
        await new Promise((r) => setTimeout(r, backoffDelay(attempt - 1, policy)));
      }
    };
    return new QueryRows(async function* (onColumns): AsyncGenerator<Row> {
      for (let attempt = 1;; attempt++) {
        const conn = await pool.acquire();
        let broken = false;
        let yielded = false;
        try {
          for await (const row of rowsOfFirstSet(conn.results(sql, params), onColumns)) {
            yielded = true;
            yield row;
          }
          breaker.success();
          return;
        } catch (e) {
          broken = isConnectionLost(e);
          if (broken) breaker.failure();
          const again = !yielded && attempt < policy.attempts &&
            isRetryable(e, "statement", idempotent);
          if (!again) throw e;
        } finally {
          pool.release(conn, { broken });
        }
        await new Promise((r) => setTimeout(r, backoffDelay(attempt - 1, policy)));
      }
    }, collect);
  }

  /**
   * Borrows one connection for several statements (e.g. a transaction) and gives it back after.
   * Nothing inside is retried.
   *
   * @param fn The work.
   * @returns What `fn` returns.
   */
  use<T>(fn: (conn: Connection) => Promise<T>): Promise<T> {
    return this.#pool.use(fn);
  }

  /** Waits for borrowed connections to come back, then closes all of them. */
  async close(): Promise<void> {
    await this.#pool.close();
    this.#onClose();
  }

  /** Same as {@link ConnectionPool.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
