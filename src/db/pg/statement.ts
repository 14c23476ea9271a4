/**
 * One statement through the extended protocol, streaming its rows with one round trip: Parse,
 * Bind, Describe, Execute (all rows) and Sync leave in one write, and rows are handed out as they
 * are read. Reading is pull-based: the socket is read only when the reader wants rows that are not
 * buffered, so a reader that stops holds the server back through TCP (it ends up waiting in
 * `ClientWrite`), and memory stays bounded by one read buffer plus one batch.
 *
 * Success is reported only at ReadyForQuery, since a statement can still fail at commit (a deferred
 * constraint) after its CommandComplete; a server error is reported at ReadyForQuery too, so the
 * session is in step for the next statement.
 *
 * Stopping early: further rows are discarded while a CancelRequest (supplied by the caller) cuts
 * the statement short; the session is reusable once ReadyForQuery arrived and the cancel request
 * was delivered, so a late cancel cannot hit the next statement.
 *
 * @module
 */

import { Msg, parseCommandTag, parseDataRow, parseError, parseRowDescription } from "./backend.ts";
import type { PgField, PgServerError, RawRow } from "./backend.ts";
import { ProtocolError } from "./reader.ts";
import type { PgWire } from "./session.ts";
import { deadline } from "./deadline.ts";

/**
 * A statement sent on a session; read it with {@link Statement.description} and
 * {@link Statement.next}, or {@link Statement.all}.
 *
 * @example
 * ```ts ignore
 * const stmt = await Statement.send(wire, "select $1::int as n", ["7"], 1000);
 * const fields = await stmt.description();
 * for (let rows = await stmt.next(); rows; rows = await stmt.next()) console.log(rows);
 * ```
 */
export class Statement {
  readonly #wire: PgWire;
  readonly #highWater: number;
  #fields: PgField[] | null = null;
  #tag: string | null = null;
  /** The server's error, reported once ReadyForQuery came. */
  #serverError: PgServerError | null = null;
  /** A lost connection or protocol error: reported at once. */
  #failure: { error: unknown } | null = null;
  #done = false;
  #discarding = false;

  private constructor(wire: PgWire, highWater: number) {
    this.#wire = wire;
    this.#highWater = highWater;
  }

  /**
   * Sends a statement.
   *
   * @param wire The session (idle).
   * @param sql One statement with `$1`... placeholders.
   * @param params Parameters as text (null for SQL NULL).
   * @param highWaterRows Most rows handed out per {@link Statement.next}; reading pauses there.
   * @throws When the text cannot be encoded (a NUL character) or the write fails.
   */
  static async send(
    wire: PgWire,
    sql: string,
    params: ReadonlyArray<string | null>,
    highWaterRows: number,
  ): Promise<Statement> {
    const w = wire.writer;
    try {
      w.parse(sql).bind(params).describePortal().execute().sync();
    } catch (e) {
      w.take(); // nothing half-built may go out with the next statement
      throw e;
    }
    await wire.send();
    const hw = Number.isFinite(highWaterRows) && highWaterRows >= 1
      ? Math.floor(highWaterRows)
      : highWaterRows === Infinity
      ? Infinity
      : 1000;
    return new Statement(wire, hw);
  }

  /** Whether the server finished the statement (ReadyForQuery) or the connection was lost. */
  get done(): boolean {
    return this.#done;
  }

  /** The row count from CommandComplete, for commands that report one. */
  get rowCount(): number | null {
    const m = /(\d+)$/.exec(this.#tag ?? "");
    return m ? Number(m[1]) : null;
  }

  /**
   * Handles buffered messages: rows go into `batch` until it holds `limit`; stops early after the
   * row description when `untilFields`.
   */
  #step(batch: RawRow[] | null, limit: number, untilFields: boolean): void {
    const r = this.#wire.reader;
    while (!this.#done) {
      if (batch !== null && batch.length >= limit) return;
      if (!r.take()) return;
      switch (r.type) {
        case Msg.DataRow:
          if (batch !== null && !this.#discarding) batch.push(parseDataRow(r.buf, r.start, r.end));
          break;
        case Msg.RowDescription:
          this.#fields = parseRowDescription(r.buf, r.start, r.end);
          if (untilFields) return;
          break;
        case Msg.NoData:
          this.#fields ??= [];
          if (untilFields) return;
          break;
        case Msg.CommandComplete:
          this.#tag = parseCommandTag(r.buf, r.start, r.end);
          this.#fields ??= [];
          break;
        case Msg.EmptyQueryResponse:
          this.#fields ??= [];
          break;
        case Msg.ErrorResponse:
          this.#serverError ??= parseError(r.buf, r.start, r.end);
          break;
        case Msg.ReadyForQuery:
          this.#done = true;
          return;
        case Msg.CopyInResponse:
          // No data source here: refuse it; the Sync already sent was ignored in copy-in mode,
          // so a second one ends the exchange.
          this.#wire.writer.copyFail("Hecate does not send COPY data").sync();
          this.#wire.send().catch(() => {}); // a failed write shows as a lost connection
          break;
        case Msg.ParseComplete:
        case Msg.BindComplete:
        case Msg.ParameterDescription:
        case Msg.PortalSuspended:
        case Msg.CopyOutResponse:
        case Msg.CopyData:
        case Msg.CopyDone:
        case Msg.NoticeResponse:
        case Msg.ParameterStatus:
        case Msg.NotificationResponse:
          break;
        default:
          throw new ProtocolError(
            `Unexpected message from the server (type ${String.fromCharCode(r.type)})`,
          );
      }
    }
  }

  /** Reads more from the socket; a failure ends the statement and the session. */
  async #fill(): Promise<void> {
    try {
      await this.#wire.reader.fill();
    } catch (e) {
      this.#lose(e);
    }
  }

  #lose(e: unknown): void {
    this.#wire.dead = true;
    this.#done = true;
    // A FATAL error just before the end of the stream says more than the end itself.
    this.#failure ??= { error: this.#serverError ?? e };
  }

  /** Throws the outcome once the statement is over and failed. */
  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure.error;
    if (this.#done && this.#serverError) throw this.#serverError;
  }

  /** Runs {@link Statement.#step}, turning a protocol error into a dead session. */
  #run(batch: RawRow[] | null, limit: number, untilFields: boolean): void {
    try {
      this.#step(batch, limit, untilFields);
    } catch (e) {
      this.#lose(e);
      this.#wire.close();
    }
  }

  /**
   * The result's columns: empty for a statement that returns no rows.
   *
   * @throws The server's error, or the connection's.
   */
  async description(): Promise<PgField[]> {
    for (;;) {
      // Known fields first: stepping on would drop rows (there is no batch to put them in).
      if (this.#fields !== null && !this.#failure) return this.#fields;
      this.#run(null, 0, true);
      if (this.#fields !== null && !this.#failure) return this.#fields;
      this.#throwIfFailed();
      if (this.#done) return [];
      await this.#fill();
    }
  }

  /**
   * The next rows (at most `highWaterRows`), reading when none are buffered; `null` once the
   * statement has succeeded and every row was handed out.
   *
   * @throws The server's error (also one raised at commit, after the rows) or the connection's.
   */
  async next(): Promise<RawRow[] | null> {
    const batch: RawRow[] = [];
    for (;;) {
      this.#run(batch, this.#highWater, false);
      if (batch.length > 0) {
        // Let the next bytes arrive while the caller works through this batch.
        if (!this.#done) this.#wire.reader.prefetch();
        return batch;
      }
      this.#throwIfFailed();
      if (this.#done) return null;
      await this.#fill();
    }
  }

  /**
   * Every remaining row, once the statement has succeeded.
   *
   * @throws The server's error or the connection's.
   */
  async all(): Promise<RawRow[]> {
    const rows: RawRow[] = [];
    for (;;) {
      this.#run(rows, Infinity, false);
      this.#throwIfFailed();
      if (this.#done) return rows;
      await this.#fill();
    }
  }

  /** Waits until the server has finished; throws its error if the statement failed. */
  async finished(): Promise<void> {
    this.#discarding = true;
    await this.all();
  }

  /**
   * Stops reading: drops further rows and, if the statement is still running, asks `cancel` to
   * cut it short.
   *
   * @param cancel Sends a CancelRequest for this session; resolves once it was delivered.
   * @param timeoutMs How long to wait for the server to finish.
   * @returns Whether the session can run another statement.
   */
  async abandon(cancel: () => Promise<void>, timeoutMs: number): Promise<boolean> {
    this.#discarding = true;
    if (this.#done) return !this.#failure;
    const timer = deadline(timeoutMs);
    const expired = timer.expired.then(() => "expired" as const);
    try {
      const cancelled = cancel().catch(() => {});
      const drained = (async () => {
        while (!this.#done) {
          this.#run(null, 0, false);
          if (!this.#done) await this.#fill();
        }
        await cancelled;
      })();
      const outcome = await Promise.race([drained, expired]);
      return outcome !== "expired" && !this.#failure;
    } finally {
      timer.cancel();
    }
  }
}
