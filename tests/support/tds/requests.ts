/**
 * Part of the SQL Server TEST DOUBLE (see tests/support/tds_double.ts): parsing of SQL batch and
 * RPC request messages (MS-TDS 2.2.6.6, 2.2.6.7), so tests can see what a client really sent:
 * the statement text and each parameter's name, declared TDS type and value. Not production code.
 *
 * @module
 */

import { fromUcs2, Reader } from "./wire.ts";

/** One parameter as it arrived in an RPC. */
export interface RecordedParam {
  /** Name including `@`. */
  name: string;
  /**
   * TDS type name: `nvarchar`, `int`, `bigint`, `smallint`, `tinyint`, `float`, `bit`,
   * `varbinary`, `date` (value `YYYY-MM-DD`), `datetime` (value `YYYY-MM-DDThh:mm:ss.sss`).
   */
  type: string;
  value: string | number | bigint | boolean | Uint8Array | null;
}

/** A request as received. */
export interface RecordedRequest {
  kind: "batch" | "rpc";
  /** For RPC: the procedure (`sp_executesql` for ProcID 10). */
  proc?: string;
  /** The statement: the batch text, or sp_executesql's `@stmt`. */
  sql: string;
  /** sp_executesql's parameter declaration (`@params`). */
  declarations?: string;
  /** User parameters after `@stmt` and `@params`. */
  params: RecordedParam[];
}

/** Skips ALL_HEADERS (present in TDS 7.2+ requests). */
function skipHeaders(r: Reader): void {
  const total = r.u32();
  r.pos += total - 4;
}

/** Parses a SQL batch payload. */
export function parseBatch(payload: Uint8Array): RecordedRequest {
  const r = new Reader(payload);
  skipHeaders(r);
  return { kind: "batch", sql: fromUcs2(r.bytes(r.remaining)), params: [] };
}

/** Reads a PLP value (partially length-prefixed): total length, then chunks until a zero one. */
function plp(r: Reader): Uint8Array | null {
  const total = r.u64();
  if (total === 0xffffffffffffffffn) return null;
  const parts: Uint8Array[] = [];
  for (;;) {
    const len = r.u32();
    if (len === 0) break;
    parts.push(r.bytes(len));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Milliseconds since 1970 of January 1st of a year (any year, unlike `Date.UTC`). */
function dayZero(year: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, 0, 1);
  return d.getTime();
}

/** `YYYY-MM-DDThh:mm:ss.sss` of a day count and milliseconds after a start. */
function utcText(start: number, days: number, ms: number): string {
  return new Date(start + days * 86_400_000 + Math.round(ms)).toISOString().slice(0, 23);
}

function param(r: Reader): RecordedParam {
  const name = r.bVarchar();
  r.u8(); // status flags
  const type = r.u8();
  switch (type) {
    case 0x26: { // INTN
      r.u8();
      const len = r.u8();
      const names: Record<number, string> = { 1: "tinyint", 2: "smallint", 4: "int", 8: "bigint" };
      if (len === 0) return { name, type: "int", value: null };
      const value = len === 8 ? r.i64() : len === 4 ? r.i32() : len === 2 ? r.i16() : r.u8();
      return { name, type: names[len] ?? "intn", value };
    }
    case 0x6d: { // FLTN
      r.u8();
      const len = r.u8();
      if (len === 0) return { name, type: "float", value: null };
      return { name, type: "float", value: len === 4 ? r.f32() : r.f64() };
    }
    case 0x68: { // BITN
      r.u8();
      const len = r.u8();
      return { name, type: "bit", value: len === 0 ? null : r.u8() !== 0 };
    }
    case 0xe7: // NVARCHAR
    case 0xa5: { // BIGVARBINARY
      const max = r.u16();
      if (type === 0xe7) r.bytes(5); // collation
      let bytes: Uint8Array | null;
      if (max === 0xffff) {
        bytes = plp(r);
      } else {
        const len = r.u16();
        bytes = len === 0xffff ? null : r.bytes(len).slice();
      }
      if (type === 0xa5) return { name, type: "varbinary", value: bytes };
      return { name, type: "nvarchar", value: bytes === null ? null : fromUcs2(bytes) };
    }
    case 0x28: { // DATEN: days since 0001-01-01 in 3 bytes
      const len = r.u8();
      if (len === 0) return { name, type: "date", value: null };
      const days = r.u8() | (r.u8() << 8) | (r.u8() << 16);
      return { name, type: "date", value: utcText(dayZero(1), days, 0).slice(0, 10) };
    }
    case 0x6f: { // DATETIMN: days since 1900-01-01, then 1/300 s since midnight
      r.u8();
      const len = r.u8();
      if (len === 0) return { name, type: "datetime", value: null };
      if (len !== 8) throw new Error("TDS double: only 8-byte datetime parameters");
      const days = r.i32();
      const ticks = r.u32();
      return { name, type: "datetime", value: utcText(dayZero(1900), days, ticks * 10 / 3) };
    }
    default:
      throw new Error(`TDS double: parameter type 0x${type.toString(16)} not supported`);
  }
}

/** Parses an RPC payload (one call). */
export function parseRpc(payload: Uint8Array): RecordedRequest {
  const r = new Reader(payload);
  skipHeaders(r);
  const nameLen = r.u16();
  let proc: string;
  if (nameLen === 0xffff) {
    const id = r.u16();
    proc = id === 10 ? "sp_executesql" : `procid:${id}`;
  } else {
    proc = r.ucs2(nameLen);
  }
  r.u16(); // option flags
  const all: RecordedParam[] = [];
  while (r.remaining > 0) {
    const b = r.buf[r.pos];
    if (b === 0x80 || b === 0xff || b === 0xfe) break; // batch separators
    all.push(param(r));
  }
  if (proc !== "sp_executesql") return { kind: "rpc", proc, sql: "", params: all };
  const [stmt, decl, ...params] = all;
  return {
    kind: "rpc",
    proc,
    sql: String(stmt?.value ?? ""),
    ...(decl ? { declarations: String(decl.value ?? "") } : {}),
    params,
  };
}
