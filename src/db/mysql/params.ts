/**
 * Parameters for COM_STMT_EXECUTE in the binary protocol: each value travels with its own type,
 * never spliced into the SQL. Integers go as BIGINT (so `LIMIT ?` and exact comparisons work),
 * other numbers as DOUBLE, {@link Decimal} and bigints beyond 64 bits as DECIMAL text, bytes as
 * BLOB, {@link JsonText}, strings and anything else as text, Date as a UTC DATETIME text (the
 * session time zone is pinned to UTC).
 *
 * @module
 */

import type { PacketWriter } from "./packet.ts";
import { T } from "../mysql_values.ts";
import { Decimal, JsonText } from "../value.ts";

const I64_MIN = -(1n << 63n), I64_MAX = (1n << 63n) - 1n, U64_MAX = (1n << 64n) - 1n;
const UNSIGNED = 0x80;
const encoder = new TextEncoder();

/** One parameter: its type code (with the unsigned flag in the high byte) and how it is written. */
interface Bound {
  type: number;
  write: ((w: PacketWriter) => void) | null;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` in UTC. */
function utcDateTime(d: Date): string {
  return d.toISOString().replace("T", " ").replace("Z", "") + "000";
}

function textParam(s: string): Bound {
  const b = encoder.encode(s);
  return { type: T.VAR_STRING, write: (w) => w.lenencBytes(b) };
}

/**
 * Binds one value.
 *
 * @param v The value.
 * @returns Its type and writer (null writer: NULL).
 */
export function bindParam(v: unknown): Bound {
  if (v === null || v === undefined) return { type: T.NULL, write: null };
  switch (typeof v) {
    case "number":
      if (Number.isSafeInteger(v)) return { type: T.LONGLONG, write: (w) => w.u64(BigInt(v)) };
      return { type: T.DOUBLE, write: (w) => w.f64(v) };
    case "bigint":
      if (v >= I64_MIN && v <= I64_MAX) return { type: T.LONGLONG, write: (w) => w.u64(v) };
      if (v > 0n && v <= U64_MAX) {
        return { type: T.LONGLONG | (UNSIGNED << 8), write: (w) => w.u64(v) };
      }
      return { ...textParam(v.toString()), type: T.NEWDECIMAL };
    case "boolean":
      return { type: T.TINY, write: (w) => w.u8(v ? 1 : 0) };
    case "string":
      return textParam(v);
  }
  if (v instanceof Decimal) return { ...textParam(v.text), type: T.NEWDECIMAL };
  if (v instanceof JsonText) return textParam(v.text);
  if (v instanceof Uint8Array) return { type: T.BLOB, write: (w) => w.lenencBytes(v) };
  if (v instanceof Date) return textParam(utcDateTime(v));
  return textParam(String(v));
}

/**
 * Writes COM_STMT_EXECUTE for a prepared statement.
 *
 * @param w The writer (empty).
 * @param statementId The statement.
 * @param params The values, as many as the statement has placeholders.
 */
export function writeExecute(w: PacketWriter, statementId: number, params: readonly unknown[]) {
  w.u8(0x17).u32(statementId).u8(0).u32(1);
  if (params.length === 0) return;
  const bound = params.map(bindParam);
  const bitmap = new Uint8Array((params.length + 7) >> 3);
  bound.forEach((b, i) => {
    if (b.write === null) bitmap[i >> 3]! |= 1 << (i & 7);
  });
  w.bytes(bitmap).u8(1); // new-params-bound: the types follow
  for (const b of bound) w.u16(b.type);
  for (const b of bound) b.write?.(w);
}
