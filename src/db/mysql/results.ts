/**
 * The answer to one command (COM_QUERY or COM_STMT_EXECUTE) as result sets read on demand: each
 * set's header (an OK packet, or columns), then its rows one packet at a time, straight from the
 * reader's buffer. Nothing is read from the socket before the consumer asks for it, so a slow
 * consumer holds the server back through TCP and memory stays at the reader's buffer.
 *
 * @module
 */

import { Cursor, ProtocolError } from "./packet.ts";
import { type MysqlWire, parseErr } from "./session.ts";
import { type MysqlColumn, parseBinaryRow, parseColumn, parseTextRow } from "./rows.ts";
import type { ColumnPlan } from "../mysql_values.ts";

/** SERVER_MORE_RESULTS_EXISTS: another result set follows this one. */
const MORE_RESULTS = 0x0008;
/** MySQL's limit on columns in a table (and a result); more is a hostile server. */
const MAX_COLUMNS = 4096;

/** A set's header: its columns, or (none) the rows a command affected. */
export interface SetHead {
  /** Columns; empty for a result without rows. */
  columns: MysqlColumn[];
  /** Rows affected, for a result without rows. */
  affectedRows: number;
}

/** Whether the current packet is an EOF packet (0xfe and shorter than 9 bytes). */
function isEof(buf: Uint8Array, start: number, end: number): boolean {
  return buf[start] === 0xfe && end - start < 9;
}

/** Status flags of an EOF packet. */
function eofStatus(buf: Uint8Array, start: number, end: number): number {
  return end - start >= 5 ? buf[start + 3]! | (buf[start + 4]! << 8) : 0;
}

/**
 * Parses an OK packet's affected rows and status.
 *
 * @returns Affected rows and status flags.
 */
export function parseOk(buf: Uint8Array, start: number, end: number) {
  const c = new Cursor(buf, start + 1, end);
  const affectedRows = c.lenenc() ?? 0;
  c.lenenc(); // last insert id
  const status = c.left >= 2 ? c.u16() : 0;
  return { affectedRows, status };
}

/**
 * Reads `count` column definitions and the EOF packet after them.
 *
 * @param wire The session.
 * @param count How many.
 * @returns The columns.
 */
export async function readColumns(wire: MysqlWire, count: number): Promise<MysqlColumn[]> {
  const columns: MysqlColumn[] = [];
  const r = wire.reader;
  for (let i = 0; i < count; i++) {
    await wire.next();
    if (r.buf[r.start] === 0xff) throw parseErr(r.buf, r.start, r.end);
    try {
      columns.push(parseColumn(r.buf, r.start, r.end, wire.extendedMetadata));
    } catch (e) {
      wire.dead = true;
      throw e;
    }
  }
  await wire.next();
  if (!isEof(r.buf, r.start, r.end)) throw wire.broken("Expected the end of the column list");
  return columns;
}

/** One command's results. */
export class Results {
  readonly #wire: MysqlWire;
  readonly #binary: boolean;
  /** `head`: a set's header comes next; `rows`: rows of the current set; `end`: all read. */
  #state: "head" | "rows" | "end" = "head";
  #columns: MysqlColumn[] = [];
  #plans: readonly ColumnPlan[] = [];

  /**
   * The results of the command just sent.
   *
   * @param wire The session.
   * @param binary Whether rows come in the binary protocol (COM_STMT_EXECUTE).
   */
  constructor(wire: MysqlWire, binary: boolean) {
    this.#wire = wire;
    this.#binary = binary;
  }

  /** Whether every packet of the command has been read. */
  get ended(): boolean {
    return this.#state === "end";
  }

  /** Whether the current set's rows are still being read. */
  get inRows(): boolean {
    return this.#state === "rows";
  }

  /**
   * Reads the next set's header.
   *
   * @returns The header, or null when no set is left.
   * @throws {MysqlServerError} The statement failed (the command is then over).
   */
  async head(): Promise<SetHead | null> {
    if (this.#state === "end") return null;
    if (this.#state === "rows") throw new Error("rows of the previous set are unread");
    const wire = this.#wire;
    const r = wire.reader;
    await wire.next();
    const first = r.buf[r.start];
    if (r.end === r.start) throw wire.broken("Empty packet from the server");
    if (first === 0x00) {
      const ok = parseOk(r.buf, r.start, r.end);
      if (!(ok.status & MORE_RESULTS)) this.#state = "end";
      return { columns: [], affectedRows: ok.affectedRows };
    }
    if (first === 0xff) {
      this.#state = "end";
      throw parseErr(r.buf, r.start, r.end);
    }
    if (first === 0xfb) {
      // LOAD DATA LOCAL INFILE: never offered (no CLIENT_LOCAL_FILES), so a hostile server.
      throw wire.broken("The server asked for a local file");
    }
    const c = new Cursor(r.buf, r.start, r.end);
    let count: number | null;
    try {
      count = c.lenenc();
    } catch (e) {
      wire.dead = true;
      throw e;
    }
    if (count === null || count < 1 || count > MAX_COLUMNS || c.left !== 0) {
      throw wire.broken("Malformed result set header from the server");
    }
    this.#columns = await readColumns(wire, count);
    this.#state = "rows";
    return { columns: this.#columns, affectedRows: 0 };
  }

  /**
   * Sets how the current set's values are made.
   *
   * @param plans One plan per column.
   */
  setPlans(plans: readonly ColumnPlan[]): void {
    this.#plans = plans;
  }

  /**
   * The next row if its packet is buffered: a row, null at the end of the set, undefined when
   * more bytes must be read first.
   *
   * @throws {MysqlServerError} The statement failed mid-set. {@link ProtocolError}.
   */
  takeRow(): unknown[] | null | undefined {
    if (this.#state !== "rows") return null;
    const wire = this.#wire;
    const r = wire.reader;
    try {
      if (!r.take()) return undefined;
    } catch (e) {
      wire.dead = true;
      throw e;
    }
    const { buf, start, end } = r;
    if (isEof(buf, start, end)) {
      this.#state = eofStatus(buf, start, end) & MORE_RESULTS ? "head" : "end";
      return null;
    }
    if (buf[start] === 0xff) {
      this.#state = "end";
      throw parseErr(buf, start, end);
    }
    try {
      return this.#binary
        ? parseBinaryRow(buf, start, end, this.#columns, this.#plans)
        : parseTextRow(buf, start, end, this.#plans);
    } catch (e) {
      if (e instanceof ProtocolError) wire.dead = true;
      throw e;
    }
  }

  /**
   * Takes the next row's packet undecoded, if buffered: 1 when `wire.reader.buf[start..end)` is
   * a row (text protocol), 0 at the end of the set, -1 when more bytes must be read first.
   *
   * @throws {MysqlServerError} The statement failed mid-set. {@link ProtocolError}.
   */
  takeRawRow(): 1 | 0 | -1 {
    if (this.#state !== "rows") return 0;
    const wire = this.#wire;
    const r = wire.reader;
    try {
      if (!r.take()) return -1;
    } catch (e) {
      wire.dead = true;
      throw e;
    }
    const { buf, start, end } = r;
    if (isEof(buf, start, end)) {
      this.#state = eofStatus(buf, start, end) & MORE_RESULTS ? "head" : "end";
      return 0;
    }
    if (buf[start] === 0xff) {
      this.#state = "end";
      throw parseErr(buf, start, end);
    }
    return 1;
  }

  /** Reads more bytes from the socket (marking the session dead when that fails). */
  async fill(): Promise<void> {
    try {
      await this.#wire.reader.fill();
    } catch (e) {
      this.#wire.dead = true;
      throw e;
    }
  }

  /**
   * The next row, reading from the socket as needed; null at the end of the set.
   */
  async nextRow(): Promise<unknown[] | null> {
    for (;;) {
      const row = this.takeRow();
      if (row !== undefined) return row;
      try {
        await this.#wire.reader.fill();
      } catch (e) {
        this.#wire.dead = true;
        throw e;
      }
    }
  }

  /** Starts reading ahead into free buffer space (at most one buffer: backpressure holds). */
  prefetch(): void {
    this.#wire.reader.prefetch();
  }

  /**
   * Reads and drops everything left of the command (rows and further sets), so the session can
   * run the next one.
   *
   * @returns The first server error met, if any.
   */
  async drain(): Promise<unknown> {
    const plans = this.#plans;
    // Rows are dropped without being decoded.
    this.#plans = [];
    let error: unknown = null;
    while (this.#state !== "end") {
      try {
        if (this.#state === "rows") await this.#skipRows();
        else await this.head();
      } catch (e) {
        if (this.#wire.dead) throw e;
        error ??= e;
      }
    }
    this.#plans = plans;
    return error;
  }

  async #skipRows(): Promise<void> {
    const wire = this.#wire;
    const r = wire.reader;
    for (;;) {
      await wire.next();
      const { buf, start, end } = r;
      if (isEof(buf, start, end)) {
        this.#state = eofStatus(buf, start, end) & MORE_RESULTS ? "head" : "end";
        return;
      }
      if (buf[start] === 0xff) {
        this.#state = "end";
        throw parseErr(buf, start, end);
      }
    }
  }
}
