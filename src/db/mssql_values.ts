/**
 * SQL Server values: type names from tedious's column metadata, conversion of tedious's values
 * into Hecate's typed and text forms, and the TDS type of each parameter. Part of the SQL Server
 * driver (mssql.ts), loaded with it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { TYPES } from "tedious";
import type { ValueMode } from "./driver.ts";
import { Decimal, JsonText } from "./value.ts";

/** Column metadata as tedious reports it (the fields used here). */
export interface TdsColumn {
  colName: string;
  type: { name: string };
  dataLength?: number | undefined;
  precision?: number | undefined;
  scale?: number | undefined;
}

/** The lower-case SQL Server type name for tedious's type and length. */
export function sqlTypeName(c: TdsColumn): string {
  const len = c.dataLength ?? 0;
  switch (c.type.name) {
    case "IntN":
      return ({ 1: "tinyint", 2: "smallint", 4: "int", 8: "bigint" } as Record<number, string>)[
        len
      ] ?? "int";
    case "FloatN":
      return len === 4 ? "real" : "float";
    case "MoneyN":
      return len === 4 ? "smallmoney" : "money";
    case "BitN":
      return "bit";
    case "DateTimeN":
      return len === 4 ? "smalldatetime" : "datetime";
    case "DecimalN":
      return "decimal";
    case "NumericN":
      return "numeric";
    case "Variant":
      return "sql_variant";
    default:
      return c.type.name.toLowerCase();
  }
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** `YYYY-MM-DD` of a Date's UTC fields. */
function ymd(d: Date): string {
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** `HH:MM:SS` plus `scale` fractional digits, from UTC fields and tedious's sub-ms remainder. */
function hms(d: Date, scale: number): string {
  const base = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  if (scale <= 0) return base;
  // tedious keeps what a Date cannot hold as `nanosecondsDelta`, in seconds (0 to 0.0009999).
  const delta = (d as Date & { nanosecondsDelta?: number }).nanosecondsDelta ?? 0;
  const ticks = d.getUTCMilliseconds() * 10_000 + Math.round(delta * 1e7);
  return `${base}.${String(ticks).padStart(7, "0").slice(0, scale)}`;
}

type Convert = (v: unknown) => unknown;

function hex(bytes: Uint8Array): string {
  let s = "0x";
  for (const b of bytes) s += b.toString(16).toUpperCase().padStart(2, "0");
  return s;
}

function asBytes(v: unknown): Uint8Array {
  const b = v as Uint8Array;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The shortest decimal that reads back as the same 32-bit float (what `real` holds). */
function realNumber(v: unknown): number {
  const n = Number(v);
  if (!Number.isFinite(n)) return n;
  for (let digits = 1; digits <= 9; digits++) {
    const short = Number(n.toPrecision(digits));
    if (Math.fround(short) === n) return short;
  }
  return n;
}

/** Fixed-point text of a number with `scale` digits (exact within 15 significant digits). */
function fixed(v: unknown, scale: number): string {
  const n = Number(v);
  return Math.abs(n) < 1e21 ? n.toFixed(scale) : String(n);
}

/** The converter for one column and mode; null when tedious's value is already right. */
function converter(c: TdsColumn, mode: ValueMode): Convert | null {
  const type = sqlTypeName(c);
  const scale = c.scale ?? 7;
  const text = mode === "text";
  switch (type) {
    case "tinyint":
    case "smallint":
    case "int":
    case "float":
      return text ? String : null;
    case "real":
      // tedious widens the 32-bit value to a double (0.1 becomes 0.10000000149011612).
      return text ? (v) => String(realNumber(v)) : realNumber;
    case "bigint":
      return text ? String : (v) => BigInt(v as string);
    case "decimal":
    case "numeric":
      return text ? (v) => fixed(v, scale) : (v) => new Decimal(fixed(v, scale));
    case "money":
    case "smallmoney":
      return text ? (v) => fixed(v, 4) : (v) => new Decimal(fixed(v, 4));
    case "bit":
      return text ? (v) => (v ? "1" : "0") : null;
    case "varbinary":
    case "binary":
    case "image":
    case "udt":
      return text ? (v) => hex(asBytes(v)) : asBytes;
    case "datetime2":
      return (v) => `${ymd(v as Date)}${text ? " " : "T"}${hms(v as Date, scale)}`;
    case "datetime":
      return (v) => `${ymd(v as Date)}${text ? " " : "T"}${hms(v as Date, 3)}`;
    case "smalldatetime":
      return (v) => `${ymd(v as Date)}${text ? " " : "T"}${hms(v as Date, 0)}`;
    case "date":
      return (v) => ymd(v as Date);
    case "time":
      return (v) => hms(v as Date, scale);
    case "datetimeoffset":
      return text
        ? (v) => `${ymd(v as Date)} ${hms(v as Date, scale)} +00:00`
        : (v) => `${ymd(v as Date)}T${hms(v as Date, scale)}+00:00`;
    default:
      return text ? (v) => (typeof v === "string" ? v : String(v)) : null;
  }
}

/**
 * Makes the converter that turns one row of tedious values into the mode's values, in place.
 *
 * @param columns The set's column metadata.
 * @param mode Typed or text values.
 * @returns The row converter.
 */
export function makeRowConverter(
  columns: readonly TdsColumn[],
  mode: ValueMode,
): (values: unknown[]) => unknown[] {
  const convs = columns.map((c) => converter(c, mode));
  return (values: unknown[]): unknown[] => {
    for (let i = 0; i < convs.length; i++) {
      const c = convs[i];
      const v = values[i];
      if (v === null || v === undefined) values[i] = null;
      else if (c) values[i] = c(v);
    }
    return values;
  };
}

/**
 * The TDS type and value for one parameter, inferred from the JS value.
 *
 * @param v The parameter value.
 * @returns tedious's type and the value to bind.
 */
export function paramFor(v: unknown): { type: (typeof TYPES)[keyof typeof TYPES]; value: unknown } {
  if (v === null || v === undefined) return { type: TYPES.NVarChar, value: null };
  if (typeof v === "string") return { type: TYPES.NVarChar, value: v };
  if (typeof v === "boolean") return { type: TYPES.Bit, value: v };
  if (typeof v === "bigint") return { type: TYPES.BigInt, value: v };
  if (typeof v === "number") {
    if (Number.isInteger(v)) {
      if (v >= -2147483648 && v <= 2147483647) return { type: TYPES.Int, value: v };
      if (Number.isSafeInteger(v)) return { type: TYPES.BigInt, value: BigInt(v) };
    }
    return { type: TYPES.Float, value: v };
  }
  if (v instanceof Uint8Array) {
    return { type: TYPES.VarBinary, value: Buffer.from(v.buffer, v.byteOffset, v.byteLength) };
  }
  if (v instanceof Decimal || v instanceof JsonText) return { type: TYPES.NVarChar, value: v.text };
  if (v instanceof Date) return { type: TYPES.DateTimeOffset, value: v };
  return { type: TYPES.NVarChar, value: String(v) };
}
