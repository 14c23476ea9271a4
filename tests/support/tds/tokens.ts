/**
 * Part of the SQL Server TEST DOUBLE (see tests/support/tds_double.ts): encoders for the response
 * tokens the double sends (MS-TDS 2.2.7): LOGINACK, ENVCHANGE, FEATUREEXTACK, SSPI, COLMETADATA,
 * ROW, NBCROW, DONE, DONEINPROC, DONEPROC, ERROR. Not production code.
 *
 * @module
 */

import { ucs2, Writer } from "./wire.ts";

/** Column types the double can answer with. `decimal(p,s)` carries precision and scale. */
export type CannedType =
  | "int"
  | "bigint"
  | "smallint"
  | "tinyint"
  | `decimal(${number},${number})`
  | "money"
  | "float"
  | "real"
  | "nvarchar"
  | "datetime2"
  | "datetime"
  | "date"
  | "time"
  | "datetimeoffset"
  | "uniqueidentifier"
  | "bit"
  | "varbinary";

/** A column of a canned result set. */
export interface CannedColumn {
  name: string;
  type: CannedType;
}

/**
 * Values by type: int/smallint/tinyint/float number; bigint bigint; decimal and money their exact
 * text (`"-12.50"`); nvarchar string; datetime2/datetime `YYYY-MM-DDTHH:MM:SS[.fffffff]`; date
 * `YYYY-MM-DD`; time `HH:MM:SS[.fffffff]`; datetimeoffset the same with `+HH:MM`; uniqueidentifier
 * its text; bit boolean; varbinary Uint8Array; null for NULL.
 */
export type CannedValue = null | number | bigint | string | boolean | Uint8Array;

const DONE = 0xfd;
const DONEPROC = 0xfe;
const DONEINPROC = 0xff;

/** DONE status bits. */
export const DoneStatus = { FINAL: 0, MORE: 0x1, ERROR: 0x2, COUNT: 0x10, ATTN: 0x20 } as const;

/** Latin1_General_CI_AS, the collation bytes SQL Server sends for Unicode columns. */
const COLLATION = new Uint8Array([0x09, 0x04, 0xd0, 0x00, 0x34]);

/** LOGINACK for TDS 7.4. */
export function loginAck(w: Writer): void {
  const body = new Writer().u8(1).u32be(0x74000004).bVarchar("Hecate TDS test double")
    .u32be(0x10000000).finish();
  w.u8(0xad).u16(body.length).bytes(body);
}

/** ENVCHANGE with string values (type 1 database, 4 packet size, ...). */
export function envChange(w: Writer, type: number, next: string, old: string): void {
  const body = new Writer().u8(type).bVarchar(next).bVarchar(old).finish();
  w.u8(0xe3).u16(body.length).bytes(body);
}

/** ENVCHANGE type 7 (SQL collation). */
export function collationChange(w: Writer): void {
  const body = new Writer().u8(7).u8(5).bytes(COLLATION).u8(0).finish();
  w.u8(0xe3).u16(body.length).bytes(body);
}

/** FEATUREEXTACK acknowledging FEDAUTH (feature 0x02) without data. */
export function fedAuthAck(w: Writer): void {
  w.u8(0xae).u8(0x02).u32(0).u8(0xff);
}

/** An SSPI token carrying an NTLM message. */
export function sspi(w: Writer, data: Uint8Array): void {
  w.u8(0xed).u16(data.length).bytes(data);
}

/** ERROR token. */
export function error(
  w: Writer,
  e: { number: number; message: string; state?: number; severity?: number },
): void {
  const body = new Writer().i32(e.number).u8(e.state ?? 1).u8(e.severity ?? 16)
    .usVarchar(e.message).bVarchar("tds-double").bVarchar("").i32(1).finish();
  w.u8(0xaa).u16(body.length).bytes(body);
}

/** DONE, DONEINPROC or DONEPROC. */
export function done(
  w: Writer,
  kind: "done" | "inproc" | "proc",
  status: number,
  rowCount = 0,
): void {
  const type = kind === "done" ? DONE : kind === "inproc" ? DONEINPROC : DONEPROC;
  w.u8(type).u16(status).u16(0xc1).u64(BigInt(rowCount));
}

function decimalParts(t: CannedType): [number, number] | undefined {
  const m = /^decimal\((\d+),(\d+)\)$/.exec(t);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** COLMETADATA for the columns (all nullable). */
export function colMetadata(w: Writer, columns: readonly CannedColumn[]): void {
  w.u8(0x81).u16(columns.length);
  for (const c of columns) {
    w.u32(0).u16(0x0001); // user type, flags: nullable
    const dec = decimalParts(c.type);
    if (dec) {
      w.u8(0x6a).u8(17).u8(dec[0]).u8(dec[1]);
    } else {
      switch (c.type) {
        case "int":
          w.u8(0x26).u8(4);
          break;
        case "bigint":
          w.u8(0x26).u8(8);
          break;
        case "smallint":
          w.u8(0x26).u8(2);
          break;
        case "tinyint":
          w.u8(0x26).u8(1);
          break;
        case "money":
          w.u8(0x6e).u8(8);
          break;
        case "float":
          w.u8(0x6d).u8(8);
          break;
        case "real":
          w.u8(0x6d).u8(4);
          break;
        case "nvarchar":
          w.u8(0xe7).u16(8000).bytes(COLLATION);
          break;
        case "datetime2":
          w.u8(0x2a).u8(7);
          break;
        case "datetime":
          w.u8(0x6f).u8(8);
          break;
        case "date":
          w.u8(0x28);
          break;
        case "time":
          w.u8(0x29).u8(7);
          break;
        case "datetimeoffset":
          w.u8(0x2b).u8(7);
          break;
        case "uniqueidentifier":
          w.u8(0x24).u8(16);
          break;
        case "bit":
          w.u8(0x68).u8(1);
          break;
        case "varbinary":
          w.u8(0xa5).u16(8000);
          break;
        default:
          throw new Error(`TDS double: unknown canned type ${c.type}`);
      }
    }
    w.bVarchar(c.name);
  }
}

/** ROW (no NULLs) or NBCROW (some NULLs) for one row. */
export function row(w: Writer, columns: readonly CannedColumn[], values: readonly CannedValue[]) {
  const hasNull = values.some((v) => v === null || v === undefined);
  if (hasNull) {
    w.u8(0xd2);
    const bitmap = new Uint8Array(Math.ceil(columns.length / 8));
    values.forEach((v, i) => {
      if (v === null || v === undefined) bitmap[i >> 3]! |= 1 << (i & 7);
    });
    w.bytes(bitmap);
  } else {
    w.u8(0xd1);
  }
  columns.forEach((c, i) => {
    const v = values[i];
    if (v === null || v === undefined) {
      if (!hasNull) throw new Error("unreachable");
      return;
    }
    value(w, c.type, v);
  });
}

const DAYS_0001_TO_1970 = 719162;
const TICKS_PER_DAY = 864_000_000_000n;

/** Days since 0001-01-01 for `YYYY-MM-DD`. */
function days(date: string): number {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  const t = new Date(0);
  t.setUTCFullYear(y, m - 1, d);
  return Math.floor(t.getTime() / 86_400_000) + DAYS_0001_TO_1970;
}

/** 100-ns ticks since midnight for `HH:MM:SS[.fffffff]`. */
function ticks(time: string): bigint {
  const m = /^(\d\d):(\d\d):(\d\d)(?:\.(\d{1,7}))?$/.exec(time);
  if (!m) throw new Error(`TDS double: bad time ${time}`);
  const frac = BigInt((m[4] ?? "").padEnd(7, "0"));
  return (BigInt(m[1]!) * 3600n + BigInt(m[2]!) * 60n + BigInt(m[3]!)) * 10_000_000n + frac;
}

function uint(w: Writer, v: bigint, bytes: number): void {
  for (let i = 0; i < bytes; i++) w.u8(Number((v >> BigInt(8 * i)) & 0xffn));
}

/** Guid bytes in SQL Server's mixed-endian order. */
function guidBytes(text: string): Uint8Array {
  const hex = text.replaceAll("-", "");
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  return Uint8Array.from(order, (i) => b[i]!);
}

/** Exact decimal text to a scaled integer. */
function scaled(text: string, scale: number): bigint {
  const neg = text.startsWith("-");
  const [ip, fp = ""] = text.replace(/^[-+]/, "").split(".") as [string, string?];
  const v = BigInt(ip + fp.padEnd(scale, "0").slice(0, scale));
  return neg ? -v : v;
}

function value(w: Writer, type: CannedType, v: CannedValue): void {
  const dec = decimalParts(type);
  if (dec) {
    const n = scaled(String(v), dec[1]);
    w.u8(17).u8(n < 0n ? 0 : 1);
    uint(w, n < 0n ? -n : n, 16);
    return;
  }
  switch (type) {
    case "int":
      w.u8(4).i32(Number(v));
      return;
    case "bigint":
      w.u8(8).i64(BigInt(v as bigint));
      return;
    case "smallint":
      w.u8(2).i16(Number(v));
      return;
    case "tinyint":
      w.u8(1).u8(Number(v));
      return;
    case "money": {
      const n = scaled(String(v), 4);
      const hi = Number(BigInt.asIntN(32, n >> 32n));
      const lo = Number(BigInt.asUintN(32, n));
      w.u8(8).i32(hi).u32(lo);
      return;
    }
    case "float":
      w.u8(8).f64(Number(v));
      return;
    case "real":
      w.u8(4).f32(Number(v));
      return;
    case "nvarchar": {
      const b = ucs2(String(v));
      w.u16(b.length).bytes(b);
      return;
    }
    case "datetime2": {
      const [d, t] = String(v).split("T") as [string, string];
      w.u8(8);
      uint(w, ticks(t), 5);
      uint(w, BigInt(days(d)), 3);
      return;
    }
    case "datetime": {
      const [d, t] = String(v).split("T") as [string, string];
      const dayCount = days(d) - days("1900-01-01");
      const ms = Number(ticks(t) / 10_000n);
      w.u8(8).i32(dayCount).u32(Math.round(ms * 0.3));
      return;
    }
    case "date":
      w.u8(3);
      uint(w, BigInt(days(String(v))), 3);
      return;
    case "time":
      w.u8(5);
      uint(w, ticks(String(v)), 5);
      return;
    case "datetimeoffset": {
      const m = /^(\d{4}-\d\d-\d\d)T([\d:.]+)([+-])(\d\d):(\d\d)$/.exec(String(v));
      if (!m) throw new Error(`TDS double: bad datetimeoffset ${v}`);
      const offset = (m[3] === "-" ? -1 : 1) * (Number(m[4]) * 60 + Number(m[5]));
      // The wire holds the UTC date and time plus the offset in minutes.
      let total = BigInt(days(m[1]!)) * TICKS_PER_DAY + ticks(m[2]!) -
        BigInt(offset) * 600_000_000n;
      if (total < 0n) total = 0n;
      w.u8(10);
      uint(w, total % TICKS_PER_DAY, 5);
      uint(w, total / TICKS_PER_DAY, 3);
      w.i16(offset);
      return;
    }
    case "uniqueidentifier":
      w.u8(16).bytes(guidBytes(String(v)));
      return;
    case "bit":
      w.u8(1).u8(v ? 1 : 0);
      return;
    case "varbinary": {
      const b = v as Uint8Array;
      w.u16(b.length).bytes(b);
      return;
    }
  }
}
