/**
 * A live connection opened through a profile; every statement it runs is audited.
 *
 * @module
 */

import type { Actor, AuditSink } from "../audit/log.ts";
import type { AuditEvent } from "../audit/entry.ts";
import type {
  CollectedSet,
  Column,
  DbConnection,
  Engine,
  QueryOptions,
  ResultSet,
} from "../db/driver.ts";
import { HecateError } from "../errors.ts";
import { QueryRows, type Row, rowObjects, rowsOfFirstSet } from "./rows.ts";
import { reasonOf, sqlDigest } from "./util.ts";

/**
 * The same rows, calling `onRow` for each: a plain iterator object rather than an async generator,
 * which costs measurably more per row on short statements.
 */
function counted(
  rows: AsyncIterable<unknown[]>,
  onRow: () => void,
): AsyncIterable<unknown[]> {
  return {
    [Symbol.asyncIterator]() {
      const inner = rows[Symbol.asyncIterator]();
      return {
        next: async () => {
          const r = await inner.next();
          if (!r.done) onRow();
          return r;
        },
        return: async (value?: unknown) => {
          await inner.return?.(value);
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/**
 * How a connection's statements are audited: `true` (each record on disk before the statement's
 * result is final), `"deferred"` (records written behind the statements in group writes; see
 * {@link AuditSink.enqueue}), or `false` (only opening the profile is recorded).
 */
export type StatementAudit = boolean | "deferred";

export { tlsWarnings } from "../transport_warnings.ts";

/**
 * A connection opened through a profile; every statement it runs is audited.
 *
 * @example
 * ```ts ignore
 * await using db = await vault.connect("billing");
 * for await (const row of db.query("select id from invoices")) console.log(row.id);
 * ```
 */
export class Connection {
  /** Profile name. */
  readonly profile: string;
  /** Engine. */
  readonly engine: Engine;
  /**
   * Transport-security warnings of the profile (src/transport_warnings.ts); they were already
   * shown when the connection was opened.
   */
  readonly warnings: readonly string[];
  readonly #conn: DbConnection;
  readonly #audit: AuditSink;
  readonly #actor: Actor;
  readonly #auditStatements: StatementAudit;

  /** @internal Use {@link Vault.connect}. */
  constructor(
    profile: string,
    engine: Engine,
    conn: DbConnection,
    audit: AuditSink,
    warnings: string[] = [],
    actor: Actor = { kind: "password" },
    auditStatements: StatementAudit = true,
  ) {
    this.#actor = actor;
    this.#auditStatements = auditStatements;
    this.profile = profile;
    this.engine = engine;
    this.#conn = conn;
    this.#audit = audit;
    this.warnings = warnings;
  }

  async #record(sql: string, ok: boolean, rows: number, started: number, e?: unknown) {
    const mode = this.#auditStatements;
    if (mode === false) return;
    const event: AuditEvent = {
      event: "query",
      actor: this.#actor,
      profile: this.profile,
      outcome: ok ? "ok" : "fail",
      ...(ok ? {} : { reason: reasonOf(e) }),
      rows,
      durationMs: Math.round(performance.now() - started),
      sqlSha256: sqlDigest(sql),
    };
    if (mode === "deferred" && this.#audit.enqueue) {
      this.#audit.enqueue(event);
    } else {
      await this.#audit.append(event);
    }
  }

  /**
   * Runs a statement and streams every result set. The query is audited (row count, duration,
   * SQL hash; never parameter values) when the stream ends or fails.
   *
   * @param sql The statement, with the engine's placeholders.
   * @param params Positional parameters, bound by the driver.
   * @param options Value mode and batch size.
   */
  async *results(
    sql: string,
    params: readonly unknown[] = [],
    options: QueryOptions = {},
  ): AsyncGenerator<ResultSet> {
    // A lost deferred record stops everything after it (fail closed).
    if (this.#auditStatements === "deferred") this.#audit.assertWritable?.();
    const started = performance.now();
    let rows = 0;
    let failure: unknown;
    try {
      for await (const set of this.#conn.query(sql, params, options)) {
        yield { ...set, rows: counted(set.rows, () => rows++) };
        if (set.columns.length === 0) rows += set.rowCount() ?? 0;
      }
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      await this.#record(sql, failure === undefined, rows, started, failure);
    }
  }

  /**
   * Runs a statement and streams the rows of its first result set as objects keyed by column
   * name; `columns` on the result resolves to the column metadata.
   *
   * @param sql The statement, with the engine's placeholders.
   * @param params Positional parameters, bound by the driver.
   * @returns The rows (iterate once) and their columns.
   *
   * @example Rows and columns
   * ```ts ignore
   * const result = db.query("select id, total from invoices where due < $1", ["2026-12-01"]);
   * console.log(await result.columns);
   * for await (const row of result) console.log(row.id, row.total);
   * ```
   */
  query(sql: string, params: readonly unknown[] = []): QueryRows {
    return new QueryRows(
      (onColumns) => rowsOfFirstSet(this.results(sql, params), onColumns),
      () => this.collect(sql, params),
    );
  }

  /**
   * Runs a statement and returns the rows of its first result set whole, audited like
   * {@link Connection.results}. Engines with a faster path for that use it (PostgreSQL: one
   * await instead of per-row iteration); `toArray()` of {@link Connection.query} comes here.
   *
   * @param sql The statement, with the engine's placeholders.
   * @param params Positional parameters, bound by the driver.
   * @returns The columns and the rows as objects.
   */
  async collect(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<{ columns: Column[]; rows: Row[] }> {
    if (!this.#conn.collect) {
      let columns: Column[] = [];
      const rows: Row[] = [];
      for await (const r of rowsOfFirstSet(this.results(sql, params), (c) => columns = c)) {
        rows.push(r);
      }
      return { columns, rows };
    }
    if (this.#auditStatements === "deferred") this.#audit.assertWritable?.();
    const started = performance.now();
    let set: CollectedSet;
    try {
      set = await this.#conn.collect(sql, params);
    } catch (e) {
      await this.#record(sql, false, 0, started, e);
      throw e;
    }
    await this.#record(sql, true, set.rowCount ?? set.rows.length, started);
    return { columns: set.columns, rows: rowObjects(set.columns, set.rows) };
  }

  /** Whether this engine can stream CSV straight from the server. */
  get canCopyCsv(): boolean {
    return this.#conn.copyCsv !== undefined;
  }

  /** Whether this engine can stream TSV straight from the protocol's bytes (MySQL). */
  get canCopyTsv(): boolean {
    return this.#conn.copyTsv !== undefined;
  }

  /**
   * Streams a query's result as TSV (PostgreSQL's COPY text format with a header line, byte for
   * byte what `--format tsv` writes) from the protocol's bytes (MySQL). Audited like a query.
   *
   * @param sql The query (no parameters).
   * @param sink Receives large chunks.
   * @returns Rows written.
   */
  async copyTsv(sql: string, sink: (chunk: Uint8Array) => Promise<void>): Promise<number> {
    if (!this.#conn.copyTsv) throw new HecateError("internal", "This engine cannot stream TSV");
    const started = performance.now();
    try {
      const n = await this.#conn.copyTsv(sql, sink);
      await this.#record(sql, true, n, started);
      return n;
    } catch (e) {
      await this.#record(sql, false, 0, started, e).catch(() => {});
      throw e;
    }
  }

  /**
   * Streams a query's result as CSV from the server (PostgreSQL COPY, MySQL's row bytes; SQL
   * Server formats rows as they are parsed). Audited like a query.
   *
   * @param sql The query (no parameters).
   * @param sink Receives large chunks.
   * @returns Rows written.
   */
  async copyCsv(sql: string, sink: (chunk: Uint8Array) => Promise<void>): Promise<number> {
    if (!this.#conn.copyCsv) throw new HecateError("internal", "This engine cannot COPY");
    const started = performance.now();
    try {
      const n = await this.#conn.copyCsv(sql, sink);
      await this.#record(sql, true, n, started);
      return n;
    } catch (e) {
      await this.#record(sql, false, 0, started, e).catch(() => {});
      throw e;
    }
  }

  /**
   * A round trip to the server.
   *
   * @returns Milliseconds it took.
   */
  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.#conn.ping();
    return performance.now() - t0;
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#conn.close();
    // Deferred statement records are on disk before close() returns, and the state file counts
    // every record (a group write may still hold the lock to write it).
    await this.#audit.flush?.();
  }

  /** Closes the connection at the end of an `await using` block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
