/**
 * Value conversions shared by the formatters: text form for text-mode formats, JSON text for
 * typed formats, and unique JSON keys for column names.
 *
 * @module
 */

import type { Column } from "../driver.ts";
import { Decimal, JsonText } from "../value.ts";

const HEX: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);

/**
 * PostgreSQL's bytea hex form: `\x` then two lower-case hex digits per byte.
 *
 * @param bytes The bytes.
 * @returns E.g. `\x00ff`.
 */
export function byteaHex(bytes: Uint8Array): string {
  let out = "\\x";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!]!;
  return out;
}

/**
 * Text of one value for the text-mode formats (csv, tsv, table). Drivers deliver `string | null`
 * in text mode; anything else is converted here as a fallback.
 *
 * @param value A value.
 * @returns The text, or null for SQL NULL (and undefined).
 */
export function textOf(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return byteaHex(value);
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  }
  return String(value);
}

/** A JSON number, as the JSON grammar (RFC 8259) defines it. */
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/**
 * JSON text of one typed value.
 *
 * null → `null`; boolean; finite number → number; NaN and ±Infinity → the strings `"NaN"`,
 * `"Infinity"`, `"-Infinity"`; bigint → bare digits (exact); {@link Decimal} → its text bare when
 * it is a valid JSON number, else a string; {@link JsonText} → embedded raw (line breaks, which
 * valid JSON can only hold as whitespace, become spaces so each row stays on one line);
 * Uint8Array → `"\\x…"` (PostgreSQL's bytea hex form); Date → ISO 8601 string; string → string;
 * anything else → `String(v)` as a string.
 *
 * @param value A typed value.
 * @returns JSON text.
 */
export function jsonValue(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      if (Number.isFinite(value)) return JSON.stringify(value);
      return Number.isNaN(value) ? '"NaN"' : value > 0 ? '"Infinity"' : '"-Infinity"';
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "true" : "false";
    case "undefined":
      return "null";
  }
  if (value === null) return "null";
  if (value instanceof Decimal) {
    return JSON_NUMBER.test(value.text) ? value.text : JSON.stringify(value.text);
  }
  if (value instanceof JsonText) return oneLine(value.text);
  if (value instanceof Uint8Array) return '"\\' + byteaHex(value) + '"';
  if (value instanceof Date) {
    return JSON.stringify(Number.isNaN(value.getTime()) ? String(value) : value.toISOString());
  }
  return JSON.stringify(String(value));
}

function oneLine(json: string): string {
  const trimmed = json.trim();
  if (trimmed.length === 0) return "null";
  return trimmed.includes("\n") || trimmed.includes("\r")
    ? trimmed.replace(/\r\n?|\n/g, " ")
    : trimmed;
}

/**
 * Unique keys for row objects: the first use of a name keeps it, later duplicates get `_2`,
 * `_3`, … (skipping any suffix already taken).
 *
 * @param columns The set's columns.
 * @returns One key per column, in order.
 */
export function uniqueKeys(columns: readonly Column[]): string[] {
  const seen = new Set<string>();
  const keys: string[] = [];
  for (const column of columns) {
    let key = column.name;
    if (seen.has(key)) {
      let n = 2;
      while (seen.has(`${column.name}_${n}`)) n++;
      key = `${column.name}_${n}`;
    }
    seen.add(key);
    keys.push(key);
  }
  return keys;
}
