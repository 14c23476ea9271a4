/**
 * Values between the MySQL protocol and Hecate: column type names, and the typed and text forms of
 * each column type. Every value reaches {@link mysqlRowPlan}'s converters as the server's text
 * (the binary protocol's numbers and dates are first formatted as the server would, see
 * ./mysql/rows.ts), or as bytes for binary columns, so no value loses precision and `text` mode
 * is what `mariadb --batch` prints.
 *
 * @module
 */

import type { ValueMode } from "./driver.ts";
import { byteaHex } from "./hex.ts";
import { Decimal, JsonText } from "./value.ts";

/** The column metadata of a result set's column definition, the fields used here. */
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
export const T = {
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

/** Column flag: the integer is unsigned. */
export const UNSIGNED_FLAG = 32;
const ENUM_FLAG = 256;
const SET_FLAG = 2048;
/** The `binary` character set: the column holds bytes, not text. */
export const BINARY_CHARSET = 63;

const INT_NAMES: Readonly<Record<number, string>> = {
  [T.TINY]: "tinyint",
  [T.SHORT]: "smallint",
  [T.INT24]: "mediumint",
  [T.LONG]: "int",
  [T.LONGLONG]: "bigint",
};

/** Whether a column holds bytes rather than text. */
export function isBytes(f: MysqlField): boolean {
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

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** BIGINT text → number when it fits exactly, else bigint. */
function bigintValue(s: string): number | bigint {
  // Up to 15 digits is always below 2^53.
  if (s.length <= 15) return Number(s);
  const b = BigInt(s);
  return b <= MAX_SAFE && b >= -MAX_SAFE ? Number(b) : b;
}

/** BIT bytes (big-endian) → number, or bigint above 2^53. */
function bitValue(bytes: Uint8Array): number | bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n <= MAX_SAFE ? Number(n) : n;
}

/** `YYYY-MM-DD HH:MM:SS[.f]` → `YYYY-MM-DDTHH:MM:SS[.f]`; zero dates stay as the server wrote. */
function isoDateTime(s: string): string {
  return s.length > 10 && s[10] === " " && !s.startsWith("0000-00-00")
    ? s.slice(0, 10) + "T" + s.slice(11)
    : s;
}

function copyBytes(v: Uint8Array): Uint8Array {
  return new Uint8Array(v);
}

/**
 * How one column's value is made: from its text (`text`, with an optional converter) or from its
 * bytes (`bytes`, with a converter).
 */
export type ColumnPlan =
  | { bytes: false; convert: ((s: string) => unknown) | null }
  | { bytes: true; convert: (b: Uint8Array) => unknown };

/**
 * The plan for one column in a mode.
 *
 * @param f The column.
 * @param mode Typed JS values or the server's text.
 * @returns How its values are made.
 */
export function mysqlColumnPlan(f: MysqlField, mode: ValueMode): ColumnPlan {
  const typed = mode === "typed";
  const text = (convert: ((s: string) => unknown) | null): ColumnPlan => ({
    bytes: false,
    convert: typed ? convert : null,
  });
  if (f.extendedFormat === "json" || f.columnType === T.JSON) {
    return text((s) => new JsonText(s));
  }
  switch (f.columnType) {
    case T.TINY:
    case T.SHORT:
    case T.LONG:
    case T.INT24:
    case T.YEAR:
    case T.FLOAT:
    case T.DOUBLE:
      return text(Number);
    case T.LONGLONG:
      return text(bigintValue);
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return text((s) => new Decimal(s));
    case T.DATETIME:
    case T.TIMESTAMP:
      return text(isoDateTime);
    case T.BIT:
      return { bytes: true, convert: typed ? bitValue : (b) => String(bitValue(b)) };
    case T.NULL:
    case T.DATE:
    case T.NEWDATE:
    case T.TIME:
      return text(null);
    default:
      if (!isBytes(f)) return text(null);
      return { bytes: true, convert: typed ? copyBytes : byteaHex };
  }
}

/**
 * The plans of a result set's columns.
 *
 * @param fields The columns.
 * @param mode Typed JS values or the server's text.
 * @returns One plan per column.
 */
export function mysqlRowPlan(fields: readonly MysqlField[], mode: ValueMode): ColumnPlan[] {
  return fields.map((f) => mysqlColumnPlan(f, mode));
}
