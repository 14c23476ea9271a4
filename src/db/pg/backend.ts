/**
 * Decoding the backend messages the driver reads (protocol "Message Formats"): type codes, error
 * fields, row descriptions and data rows. Every function reads a body at `buf[start..end)` as
 * {@link import("./reader.ts").MessageReader} leaves it.
 *
 * The server is not trusted to be well-formed: every count and length is checked against the
 * body before anything is read or allocated for it, nothing is read past `end` (the buffer goes on
 * with the next messages), and a body with bytes left over is refused. A violation is a
 * {@link ProtocolError}; tests/pg_backend_fuzz_test.ts feeds random and mutated messages.
 *
 * @module
 */

import { ProtocolError } from "./reader.ts";

/** Backend message type bytes. */
export const Msg = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  CopyBothResponse: 0x57, // 'W'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoData: 0x6e, // 'n'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParameterDescription: 0x74, // 't'
  ParameterStatus: 0x53, // 'S'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

/** One row as the server sent it in text format; `null` is SQL NULL. */
export type RawRow = (string | null)[];

/** A result column as described by the server. */
export interface PgField {
  /** Column name. */
  name: string;
  /** Type OID. */
  dataTypeID: number;
}

const decoder = new TextDecoder();

/**
 * An ErrorResponse from the server: `code` is the SQLSTATE, `severity` the non-localised severity
 * (`ERROR`, `FATAL`, `PANIC`), `message` the primary message.
 */
export class PgServerError extends Error {
  /** SQLSTATE. */
  readonly code: string;
  /** `ERROR`, `FATAL` or `PANIC` (or a localised word from an old server). */
  readonly severity: string;
  /** The DETAIL field, when sent. */
  readonly detail: string | undefined;

  /**
   * The error from its ErrorResponse fields.
   *
   * @param fields The error's fields by their one-letter code.
   */
  constructor(fields: ReadonlyMap<string, string>) {
    super(fields.get("M") ?? "Unknown server error");
    this.name = "PgServerError";
    this.code = fields.get("C") ?? "XX000";
    this.severity = fields.get("V") ?? fields.get("S") ?? "ERROR";
    this.detail = fields.get("D");
  }

  /** FATAL and PANIC end the session: the server closes the connection after them. */
  get fatal(): boolean {
    return this.severity === "FATAL" || this.severity === "PANIC";
  }
}

/** Reads a NUL-terminated string at `pos`; returns it and the position after the NUL. */
function cstring(buf: Uint8Array, pos: number, end: number): [string, number] {
  let i = pos;
  while (i < end && buf[i] !== 0) i++;
  return [decoder.decode(buf.subarray(pos, i)), i + 1];
}

/** Like {@link cstring}, but the NUL must come before `end`. */
function strictCstring(buf: Uint8Array, pos: number, end: number, what: string): [string, number] {
  const nul = buf.subarray(pos, end).indexOf(0);
  if (nul < 0) throw malformed(what, "unterminated string");
  return [decoder.decode(buf.subarray(pos, pos + nul)), pos + nul + 1];
}

function malformed(what: string, why: string): ProtocolError {
  return new ProtocolError(`Malformed ${what} from the server (${why})`);
}

/** Reads a big-endian Int16 at `p`, which the caller checked lies before the body's end. */
function int16(buf: Uint8Array, p: number): number {
  return ((buf[p]! << 24) | (buf[p + 1]! << 16)) >> 16;
}

/** Decodes an ErrorResponse or NoticeResponse body. */
export function parseError(buf: Uint8Array, start: number, end: number): PgServerError {
  const fields = new Map<string, string>();
  let p = start;
  while (p < end && buf[p] !== 0) {
    const key = String.fromCharCode(buf[p]!);
    const [value, next] = cstring(buf, p + 1, end);
    fields.set(key, value);
    p = next;
  }
  return new PgServerError(fields);
}

/** Bytes of a RowDescription field after its name. */
const FIELD_TAIL = 18;

/**
 * Decodes a RowDescription body into names and type OIDs.
 *
 * @throws {ProtocolError} For a count or a field that does not fit the body exactly.
 */
export function parseRowDescription(buf: Uint8Array, start: number, end: number): PgField[] {
  const what = "row description";
  if (end - start < 2) throw malformed(what, "no field count");
  const n = int16(buf, start);
  // Each field takes at least its name's NUL and 18 bytes: checked before allocating for n.
  if (n < 0 || n * (1 + FIELD_TAIL) > end - start - 2) {
    throw malformed(what, `${n} fields in ${end - start} bytes`);
  }
  const fields: PgField[] = [];
  let p = start + 2;
  for (let i = 0; i < n; i++) {
    const [name, next] = strictCstring(buf, p, end, what);
    if (next + FIELD_TAIL > end) throw malformed(what, "field cut short");
    // table OID (4), column number (2), type OID (4), size (2), modifier (4), format (2)
    const dataTypeID = int32(buf, next + 6) >>> 0;
    fields.push({ name, dataTypeID });
    p = next + FIELD_TAIL;
  }
  if (p !== end) throw malformed(what, "bytes after the last field");
  return fields;
}

/** Decodes a CommandComplete body: its tag (`SELECT 2`, `INSERT 0 1`, `COPY 5`...). */
export function parseCommandTag(buf: Uint8Array, start: number, end: number): string {
  return cstring(buf, start, end)[0];
}

/** The row count at the end of a command tag, or null when the tag has none. */
export function tagRowCount(tag: string | null): number | null {
  const m = /(\d+)$/.exec(tag ?? "");
  return m ? Number(m[1]) : null;
}

/** Reads a big-endian Int32 at `p`. */
export function int32(buf: Uint8Array, p: number): number {
  return (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
}

/**
 * Decodes a DataRow body into strings (text format) and nulls.
 *
 * Fast path: the whole body goes through the decoder once and the values are sliced out of that
 * string. That is only right when every byte became one UTF-16 unit, i.e. the decoded string is
 * as long as the body (any multi-byte character, also one formed with a length byte, makes it
 * shorter); otherwise each value is decoded on its own.
 */
export function parseDataRow(buf: Uint8Array, start: number, end: number): RawRow {
  const what = "data row";
  if (end - start < 2) throw malformed(what, "no column count");
  const n = int16(buf, start);
  // Each column takes at least its 4-byte length: checked before allocating for n.
  if (n < 0 || n * 4 > end - start - 2) {
    throw malformed(what, `${n} columns in ${end - start} bytes`);
  }
  const row: RawRow = new Array(n);
  const whole = decoder.decode(buf.subarray(start, end));
  const sliced = whole.length === end - start;
  let p = start + 2;
  for (let i = 0; i < n; i++) {
    if (p + 4 > end) throw malformed(what, "column cut short");
    const len = int32(buf, p);
    p += 4;
    if (len < 0) {
      if (len !== -1) throw malformed(what, `column length ${len}`);
      row[i] = null;
      continue;
    }
    if (len > end - p) throw malformed(what, `column of ${len} bytes past the end`);
    row[i] = sliced
      ? whole.slice(p - start, p - start + len)
      : decoder.decode(buf.subarray(p, p + len));
    p += len;
  }
  if (p !== end) throw malformed(what, "bytes after the last column");
  return row;
}
