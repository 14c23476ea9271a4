/**
 * Result-set packets: column definitions and rows of the text protocol (COM_QUERY) and of the
 * binary protocol (COM_STMT_EXECUTE). Binary values are formatted as the server's text (integers
 * in decimal, FLOAT/DOUBLE by ../mysql_float.ts, dates and times padded to the column's
 * decimals), so both protocols give the same values through the same column plans
 * (../mysql_values.ts).
 *
 * Every length is checked against the packet: a hostile server gets a {@link ProtocolError},
 * never a read past the payload.
 *
 * @module
 */

import { Cursor, ProtocolError } from "./packet.ts";
import { type ColumnPlan, type MysqlField, T, UNSIGNED_FLAG } from "../mysql_values.ts";
import { mysqlFloatText } from "../mysql_float.ts";

const decoder = new TextDecoder();

/** A column: the fields the value plans use, and its name. */
export interface MysqlColumn extends MysqlField {
  name: string;
}

/**
 * Parses a column definition (Protocol::ColumnDefinition41).
 *
 * @param buf The payload's buffer.
 * @param start First byte.
 * @param end One past the last byte.
 * @param extended Whether MariaDB's extended metadata block is present.
 * @returns The column.
 */
export function parseColumn(
  buf: Uint8Array,
  start: number,
  end: number,
  extended: boolean,
): MysqlColumn {
  const c = new Cursor(buf, start, end);
  for (let i = 0; i < 4; i++) c.lenencBytes(); // catalog, schema, table, org_table
  const name = decoder.decode(c.lenencBytes());
  c.lenencBytes(); // org_name
  const col: MysqlColumn = {
    name,
    columnType: 0,
    flags: 0,
    characterSet: 0,
    decimals: 0,
  };
  if (extended) {
    const len = c.lenenc() ?? 0;
    const meta = new Cursor(buf, c.pos, c.pos + len);
    c.bytes(len);
    while (meta.left > 0) {
      const id = meta.u8();
      const value = decoder.decode(meta.lenencBytes());
      if (id === 0) col.extendedTypeName = value;
      else if (id === 1) col.extendedFormat = value;
    }
  }
  c.lenenc(); // length of the fixed fields (0x0c)
  col.characterSet = c.u16();
  col.columnLength = c.u32();
  col.columnType = c.u8();
  col.flags = c.u16();
  col.decimals = c.u8();
  return col;
}

/**
 * Parses a text-protocol row into values by the column plans.
 *
 * Fast path as in the PostgreSQL driver: the whole payload is decoded once and text values are
 * sliced out of that string, which is right only when every byte became one UTF-16 unit (any
 * multi-byte character makes the string shorter); otherwise each value is decoded on its own.
 */
export function parseTextRow(
  buf: Uint8Array,
  start: number,
  end: number,
  plans: readonly ColumnPlan[],
): unknown[] {
  const n = plans.length;
  const row: unknown[] = new Array(n);
  const whole = decoder.decode(buf.subarray(start, end));
  const sliced = whole.length === end - start;
  let p = start;
  for (let i = 0; i < n; i++) {
    if (p >= end) throw new ProtocolError("Row from the server cut short");
    let len = buf[p]!;
    if (len < 0xfb) {
      p++;
    } else if (len === 0xfb) {
      p++;
      row[i] = null;
      continue;
    } else {
      const c = new Cursor(buf, p, end);
      const l = c.lenenc();
      if (l === null) throw new ProtocolError("Malformed row from the server");
      len = l;
      p = c.pos;
    }
    if (len > end - p) throw new ProtocolError("Row value past the end of its packet");
    const plan = plans[i]!;
    if (plan.bytes) {
      row[i] = plan.convert(buf.subarray(p, p + len));
    } else {
      const s = sliced
        ? whole.slice(p - start, p - start + len)
        : decoder.decode(buf.subarray(p, p + len));
      row[i] = plan.convert ? plan.convert(s) : s;
    }
    p += len;
  }
  if (p !== end) throw new ProtocolError("Bytes after the last value of a row");
  return row;
}

function pad2(n: number): string {
  return n < 10 ? "0" + n : String(n);
}

/** The fraction as the server prints it for a column with `decimals` digits (none for 0). */
function fraction(micros: number, decimals: number): string {
  if (decimals <= 0 || decimals > 6) return "";
  return "." + String(micros).padStart(6, "0").slice(0, decimals);
}

/**
 * Parses a binary-protocol row (Protocol::BinaryResultsetRow) into values by the column plans.
 *
 * @param buf The payload's buffer.
 * @param start First byte (the 0x00 header).
 * @param end One past the last byte.
 * @param columns The result set's columns.
 * @param plans Their plans.
 * @returns The row.
 */
export function parseBinaryRow(
  buf: Uint8Array,
  start: number,
  end: number,
  columns: readonly MysqlColumn[],
  plans: readonly ColumnPlan[],
): unknown[] {
  const n = columns.length;
  const c = new Cursor(buf, start, end);
  if (c.u8() !== 0) throw new ProtocolError("Malformed binary row from the server");
  const bitmap = c.bytes((n + 9) >> 3);
  const row: unknown[] = new Array(n);
  const view = new DataView(buf.buffer, buf.byteOffset);
  for (let i = 0; i < n; i++) {
    const bit = i + 2;
    if (bitmap[bit >> 3]! & (1 << (bit & 7))) {
      row[i] = null;
      continue;
    }
    const col = columns[i]!;
    const plan = plans[i]!;
    const unsigned = (col.flags & UNSIGNED_FLAG) !== 0;
    let s: string;
    switch (col.columnType) {
      case T.TINY: {
        const v = c.u8();
        s = String(unsigned || v < 128 ? v : v - 256);
        break;
      }
      case T.SHORT:
      case T.YEAR: {
        const v = c.u16();
        s = String(unsigned || v < 32768 ? v : v - 65536);
        break;
      }
      case T.LONG:
      case T.INT24: {
        const v = c.u32();
        s = String(unsigned ? v : v | 0);
        break;
      }
      case T.LONGLONG: {
        c.bytes(8);
        const v = unsigned ? view.getBigUint64(c.pos - 8, true) : view.getBigInt64(c.pos - 8, true);
        s = String(v);
        break;
      }
      case T.FLOAT:
        c.bytes(4);
        s = mysqlFloatText(view.getFloat32(c.pos - 4, true), true, col.decimals);
        break;
      case T.DOUBLE:
        c.bytes(8);
        s = mysqlFloatText(view.getFloat64(c.pos - 8, true), false, col.decimals);
        break;
      case T.DATE:
      case T.NEWDATE:
      case T.DATETIME:
      case T.TIMESTAMP: {
        const len = c.u8();
        if (len !== 0 && len !== 4 && len !== 7 && len !== 11) {
          throw new ProtocolError("Malformed date in a row from the server");
        }
        const y = len ? c.u16() : 0, mo = len ? c.u8() : 0, d = len ? c.u8() : 0;
        const h = len >= 7 ? c.u8() : 0, mi = len >= 7 ? c.u8() : 0, se = len >= 7 ? c.u8() : 0;
        const us = len === 11 ? c.u32() : 0;
        const date = `${String(y).padStart(4, "0")}-${pad2(mo)}-${pad2(d)}`;
        s = col.columnType === T.DATE || col.columnType === T.NEWDATE
          ? date
          : `${date} ${pad2(h)}:${pad2(mi)}:${pad2(se)}${fraction(us, col.decimals)}`;
        break;
      }
      case T.TIME: {
        const len = c.u8();
        if (len !== 0 && len !== 8 && len !== 12) {
          throw new ProtocolError("Malformed time in a row from the server");
        }
        const neg = len ? c.u8() : 0, days = len ? c.u32() : 0;
        const h = len ? c.u8() : 0, mi = len ? c.u8() : 0, se = len ? c.u8() : 0;
        const us = len === 12 ? c.u32() : 0;
        s = `${neg ? "-" : ""}${pad2(days * 24 + h)}:${pad2(mi)}:${pad2(se)}${
          fraction(us, col.decimals)
        }`;
        break;
      }
      default: {
        const bytes = c.lenencBytes();
        if (plan.bytes) {
          row[i] = plan.convert(bytes);
          continue;
        }
        s = decoder.decode(bytes);
      }
    }
    if (plan.bytes) {
      throw new ProtocolError("Binary value for a column of another type");
    }
    row[i] = plan.convert ? plan.convert(s) : s;
  }
  if (c.left !== 0) throw new ProtocolError("Bytes after the last value of a row");
  return row;
}
