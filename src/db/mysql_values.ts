/**
 * Values between mysql2 and Hecate: column type names, the typed and text forms of each column
 * type, and parameters for the binary protocol.
 *
 * mysql2 is configured so that no value loses precision on the way in (BIGINT and DECIMAL as
 * strings, dates as strings, JSON as text); only FLOAT and DOUBLE arrive as JS numbers, and
 * {@link mysqlFloatText} gives them back the server's text form.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ValueMode } from "./driver.ts";
import { byteaHex } from "./hex.ts";
import { mysqlFloatText } from "./mysql_float.ts";
import { Decimal, JsonText } from "./value.ts";

/** The column metadata mysql2 gives (its `ColumnDefinition`), the fields used here. */
export interface MysqlField {
  name: string;
  columnType: number;
  flags: number;
  characterSet: number;
  decimals: number;
  columnLength?: number;
  /** MariaDB extended metadata, e.g. `json`. */
  extendedFormat?: string;
  /** MariaDB extended metadata, e.g. `uuid`, `inet6`. */
  extendedTypeName?: string;
}

/** Protocol column types (include/mysql_com.h `enum_field_types`). */
const T = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

const UNSIGNED_FLAG = 32;
const ENUM_FLAG = 256;
const SET_FLAG = 2048;
/** The `binary` character set: the column holds bytes, not text. */
const BINARY_CHARSET = 63;

const INT_NAMES: Readonly<Record<number, string>> = {
  [T.TINY]: "tinyint",
  [T.SHORT]: "smallint",
  [T.INT24]: "mediumint",
  [T.LONG]: "int",
  [T.LONGLONG]: "bigint",
};

function isBytes(f: MysqlField): boolean {
  return f.characterSet === BINARY_CHARSET && f.extendedFormat !== "json";
}

/**
 * The lower-case type name of a column, e.g. `int`, `bigint unsigned`, `decimal`, `datetime`,
 * `varchar`, `varbinary`, `blob`, `text`, `json`, `enum`.
 *
 * @param f The column.
 * @returns Its type name.
 */
export function mysqlTypeName(f: MysqlField): string {
  if (f.extendedFormat === "json") return "json";
  if (f.extendedTypeName) return f.extendedTypeName.toLowerCase();
  const intName = INT_NAMES[f.columnType];
  if (intName) return f.flags & UNSIGNED_FLAG ? `${intName} unsigned` : intName;
  switch (f.columnType) {
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return "decimal";
    case T.FLOAT:
      return "float";
    case T.DOUBLE:
      return "double";
    case T.NULL:
      return "null";
    case T.TIMESTAMP:
      return "timestamp";
    case T.DATE:
    case T.NEWDATE:
      return "date";
    case T.TIME:
      return "time";
    case T.DATETIME:
      return "datetime";
    case T.YEAR:
      return "year";
    case T.BIT:
      return "bit";
    case T.JSON:
      return "json";
    case T.ENUM:
      return "enum";
    case T.SET:
      return "set";
    case T.GEOMETRY:
      return "geometry";
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB:
      return isBytes(f) ? "blob" : "text";
    case T.VARCHAR:
    case T.VAR_STRING:
      return isBytes(f) ? "varbinary" : "varchar";
    case T.STRING:
      if (f.flags & ENUM_FLAG) return "enum";
      if (f.flags & SET_FLAG) return "set";
      return isBytes(f) ? "binary" : "char";
    default:
      return `type:${f.columnType}`;
  }
}

type Convert = (v: unknown) => unknown;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** BIGINT text → number when it fits exactly, else bigint. */
function bigintValue(text: unknown): number | bigint {
  const s = text as string;
  // Up to 15 digits is always below 2^53.
  if (s.length <= 15) return Number(s);
  const b = BigInt(s);
  return b <= MAX_SAFE && b >= -MAX_SAFE ? Number(b) : b;
}

/** BIT bytes (big-endian) → number, or bigint above 2^53. */
function bitValue(v: unknown): number | bigint {
  const bytes = v as Uint8Array;
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n <= MAX_SAFE ? Number(n) : n;
}

/** `YYYY-MM-DD HH:MM:SS[.f]` → `YYYY-MM-DDTHH:MM:SS[.f]`; zero dates stay as the server wrote. */
function isoDateTime(v: unknown): string {
  const s = v as string;
  return s.length > 10 && s[10] === " " && !s.startsWith("0000-00-00")
    ? s.slice(0, 10) + "T" + s.slice(11)
    : s;
}

/**
 * TIME from the binary protocol as the server prints it: mysql2 drops trailing fraction zeros,
 * the server pads the fraction to the column's decimals.
 */
function timeText(v: unknown, decimals: number): string {
  const s = v as string;
  if (decimals <= 0 || decimals > 6) return s.replace(/\.\d*$/, "");
  const dot = s.indexOf(".");
  const whole = dot < 0 ? s : s.slice(0, dot);
  const frac = dot < 0 ? "" : s.slice(dot + 1);
  return `${whole}.${frac.padEnd(decimals, "0").slice(0, decimals)}`;
}

function copyBytes(v: unknown): Uint8Array {
  return new Uint8Array(v as Uint8Array);
}

/**
 * The converter for one column, or null when the value passes through unchanged.
 *
 * @param f The column.
 * @param mode Typed JS values or the server's text.
 * @param binary Whether the row came through the binary protocol (a statement with parameters).
 */
function converter(f: MysqlField, mode: ValueMode, binary: boolean): Convert | null {
  const typed = mode === "typed";
  if (f.extendedFormat === "json" || f.columnType === T.JSON) {
    return typed ? (v) => new JsonText(v as string) : null;
  }
  switch (f.columnType) {
    case T.TINY:
    case T.SHORT:
    case T.LONG:
    case T.INT24:
    case T.YEAR:
      return typed ? null : String;
    case T.LONGLONG:
      return typed ? bigintValue : null;
    case T.FLOAT:
    case T.DOUBLE: {
      const single = f.columnType === T.FLOAT;
      if (!typed) return (v) => mysqlFloatText(v as number, single, f.decimals);
      // A FLOAT from the binary protocol is the float32 value (1.100000023841858); give the
      // number the server's text names (1.1), as the text protocol does.
      return single && binary ? (v) => Number(mysqlFloatText(v as number, true, f.decimals)) : null;
    }
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return typed ? (v) => new Decimal(v as string) : null;
    case T.DATETIME:
    case T.TIMESTAMP:
      return typed ? isoDateTime : null;
    case T.DATE:
    case T.NEWDATE:
      return null; // `YYYY-MM-DD` already
    case T.TIME:
      return binary ? (v) => timeText(v, f.decimals) : null;
    case T.BIT:
      return typed ? bitValue : (v) => String(bitValue(v));
    case T.GEOMETRY:
      // mysql2 decodes geometry into plain objects ({x, y} for a point); kept as their JSON.
      return typed ? (v) => new JsonText(JSON.stringify(v)) : (v) => JSON.stringify(v);
    case T.NULL:
      return null;
    default:
      if (!isBytes(f)) return null;
      return typed ? copyBytes : (v) => byteaHex(v as Uint8Array);
  }
}

/**
 * Builds a function that converts one row (in place) for the mode.
 *
 * @param fields The result set's columns.
 * @param mode Typed JS values or the server's text.
 * @param binary Whether rows come through the binary protocol.
 * @returns The row converter.
 */
export function mysqlRowConverter(
  fields: readonly MysqlField[],
  mode: ValueMode,
  binary: boolean,
): (row: unknown[]) => unknown[] {
  const convs = fields.map((f) => converter(f, mode, binary));
  const active: number[] = [];
  convs.forEach((c, i) => c && active.push(i));
  if (active.length === 0) return (row) => row;
  return (row) => {
    for (const i of active) {
      const v = row[i];
      if (v !== null && v !== undefined) row[i] = convs[i]!(v);
    }
    return row;
  };
}

/** mysql2's typed parameter factories (`mysql.TypedParameter`), the ones used here. */
export interface TypedParameters {
  LONGLONG: ((v: bigint | number) => unknown) & { unsigned(v: bigint | number): unknown };
  NEWDECIMAL(v: string): unknown;
}

const I64_MIN = -(1n << 63n), I64_MAX = (1n << 63n) - 1n, U64_MAX = (1n << 64n) - 1n;

/** `YYYY-MM-DD HH:MM:SS.ffffff` in UTC (the session time zone is pinned to UTC). */
function utcDateTime(d: Date): string {
  return d.toISOString().replace("T", " ").replace("Z", "") + "000";
}

/**
 * Maps a Hecate parameter to what mysql2's `execute` binds: integers as BIGINT (so `LIMIT ?` and
 * exact comparisons work), other numbers as DOUBLE, {@link Decimal} as DECIMAL, bytes as BLOB,
 * {@link JsonText} and strings as text, Date as a UTC DATETIME.
 *
 * @param v The value.
 * @param typed mysql2's typed parameter factories.
 * @returns The value to bind.
 */
export function mysqlParam(v: unknown, typed: TypedParameters): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "number":
      return Number.isSafeInteger(v) ? typed.LONGLONG(v) : v;
    case "bigint":
      if (v >= I64_MIN && v <= I64_MAX) return typed.LONGLONG(v);
      if (v > 0n && v <= U64_MAX) return typed.LONGLONG.unsigned(v);
      return typed.NEWDECIMAL(v.toString());
    case "boolean":
    case "string":
      return v;
  }
  if (v instanceof Decimal) return typed.NEWDECIMAL(v.text);
  if (v instanceof JsonText) return v.text;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof Date) return utcDateTime(v);
  return String(v);
}
