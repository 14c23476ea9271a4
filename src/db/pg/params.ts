/**
 * Statement parameters in PostgreSQL's text format, for the types Hecate passes: the same text npm
 * `pg` sent for them (its `prepareValue`), except bytes, which go as a bytea hex literal (`\x...`)
 * because every parameter is sent in text format here.
 *
 * @module
 */

import { byteaHex } from "../hex.ts";
import { Decimal, JsonText } from "../value.ts";

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** A date in local time with its offset (what pg sent), e.g. `2024-01-02T03:04:05.000+01:00`. */
function dateText(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new RangeError("Invalid Date given as a parameter");
  let year = d.getFullYear();
  const bc = year < 1;
  if (bc) year = -year + 1; // year 0 is 1 BC
  let offset = -d.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  offset = Math.abs(offset);
  return `${pad(year, 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
    `${pad(d.getMilliseconds(), 3)}${sign}${pad(Math.floor(offset / 60))}:${pad(offset % 60)}` +
    (bc ? " BC" : "");
}

/** An array element inside a PostgreSQL array literal: quoted, with `\` and `"` escaped. */
function quoteElement(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A (possibly nested) JS array as a PostgreSQL array literal, e.g. `{"1","2",NULL}`. */
function arrayText(values: readonly unknown[]): string {
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ",";
    const v = values[i];
    if (v === null || v === undefined) out += "NULL";
    else if (Array.isArray(v)) out += arrayText(v);
    else out += quoteElement(paramText(v)!);
  }
  return out + "}";
}

/**
 * One parameter as text, or null for SQL NULL.
 *
 * @param v null/undefined, string, number, bigint, boolean, Date, Uint8Array (bytea), an array
 * (array literal), {@link Decimal} or {@link JsonText} (their text), or a plain object (JSON).
 * @returns The text sent to the server.
 * @throws {RangeError} For an invalid Date. {@link TypeError} for an object JSON cannot encode.
 *
 * @example
 * ```ts
 * import { paramText } from "./params.ts";
 * console.log(paramText([1, null, "a\"b"])); // {"1",NULL,"a\"b"}
 * ```
 */
export function paramText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "string":
      return v;
    case "number":
    case "bigint":
    case "boolean":
      return String(v);
    case "object":
      break;
    default:
      return String(v);
  }
  if (v instanceof Decimal || v instanceof JsonText) return v.text;
  if (ArrayBuffer.isView(v)) return byteaHex(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  if (v instanceof Date) return dateText(v);
  if (Array.isArray(v)) return arrayText(v);
  return JSON.stringify(v);
}
