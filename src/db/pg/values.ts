/**
 * Values of PostgreSQL's text format: type names by OID, and the conversion to Hecate's typed
 * values (see ../value.ts). The session pins the settings that shape the text (UTC, ISO dates,
 * hex bytea), so the conversions here can rely on them.
 *
 * @module
 */

import type { ValueMode } from "../driver.ts";
import { Decimal, JsonText } from "../value.ts";

/** Type names by OID (pg_type.typname) for the types Hecate cares about. */
const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [16, "bool"],
  [17, "bytea"],
  [18, "char"],
  [19, "name"],
  [20, "int8"],
  [21, "int2"],
  [23, "int4"],
  [25, "text"],
  [26, "oid"],
  [114, "json"],
  [142, "xml"],
  [650, "cidr"],
  [700, "float4"],
  [701, "float8"],
  [705, "unknown"],
  [790, "money"],
  [829, "macaddr"],
  [869, "inet"],
  [1000, "_bool"],
  [1001, "_bytea"],
  [1005, "_int2"],
  [1007, "_int4"],
  [1009, "_text"],
  [1016, "_int8"],
  [1021, "_float4"],
  [1022, "_float8"],
  [1015, "_varchar"],
  [1042, "bpchar"],
  [1043, "varchar"],
  [1082, "date"],
  [1083, "time"],
  [1114, "timestamp"],
  [1184, "timestamptz"],
  [1186, "interval"],
  [1231, "_numeric"],
  [1266, "timetz"],
  [1560, "bit"],
  [1562, "varbit"],
  [1700, "numeric"],
  [2249, "record"],
  [2278, "void"],
  [2950, "uuid"],
  [2951, "_uuid"],
  [3802, "jsonb"],
  [3807, "_jsonb"],
  [4072, "jsonpath"],
]);

/** Lower-case type name for an OID, or `oid:<n>` for types not in the table. */
export function typeName(oid: number): string {
  return TYPE_NAMES.get(oid) ?? `oid:${oid}`;
}

type Convert = (text: string) => unknown;

const HEX_VALUES: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i;
    t[97 + i] = 10 + i;
  }
  return t;
})();

/** Decodes bytea hex output (`\x0a1b...`) into bytes. */
function decodeByteaHex(text: string): Uint8Array {
  if (!text.startsWith("\\x")) {
    // Only reachable if bytea_output was changed inside the session; keep the text's bytes.
    return new TextEncoder().encode(text);
  }
  const n = (text.length - 2) >> 1;
  const out = new Uint8Array(n);
  for (let i = 0, j = 2; i < n; i++, j += 2) {
    const hi = HEX_VALUES[text.charCodeAt(j)] ?? -1;
    const lo = HEX_VALUES[text.charCodeAt(j + 1)] ?? -1;
    if (hi < 0 || lo < 0) throw new Error("Malformed bytea value from server");
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Matches ISO output `YYYY-MM-DD HH:MM:SS[.ffffff]` plus an optional numeric offset. */
const TIMESTAMP_RE = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d(?::?\d\d){0,2})?$/;

/** `2024-01-02 03:04:05.5+00` → `2024-01-02T03:04:05.5+00:00`; infinity and BC stay as text. */
function isoTimestamp(text: string, withOffset: boolean): string {
  const m = TIMESTAMP_RE.exec(text);
  if (!m) return text;
  const base = `${m[1]}T${m[2]}`;
  if (!withOffset || m[3] === undefined) return base;
  const off = m[3].replaceAll(":", "");
  const hh = off.slice(0, 3), mm = off.slice(3, 5) || "00", ss = off.slice(5, 7);
  return `${base}${hh}:${mm}${ss ? `:${ss}` : ""}`;
}

/** The typed-mode converter for a column type. */
function typedConverter(oid: number): Convert | null {
  switch (oid) {
    case 16:
      return (t) => t === "t";
    case 17:
      return decodeByteaHex;
    case 20:
      return (t) => BigInt(t);
    case 21:
    case 23:
    case 26:
    case 700:
    case 701:
      return Number; // also NaN, Infinity, -Infinity
    case 1700:
      return (t) => new Decimal(t);
    case 114:
    case 3802:
      return (t) => new JsonText(t);
    case 1184:
      return (t) => isoTimestamp(t, true);
    case 1114:
      return (t) => isoTimestamp(t, false);
    default:
      return null; // the server's text
  }
}

/** Converts one raw row (server text or null) in place for the mode. */
export function makeRowConverter(
  oids: readonly number[],
  mode: ValueMode,
): (row: unknown[]) => unknown[] {
  if (mode === "text") return (row) => row;
  const convs = oids.map(typedConverter);
  if (convs.every((c) => c === null)) return (row) => row;
  return (row) => {
    for (let i = 0; i < convs.length; i++) {
      const c = convs[i];
      const v = row[i];
      if (c && v !== null && v !== undefined) row[i] = c(v as string);
    }
    return row;
  };
}
