/**
 * What an audit entry holds and its canonical line: members in a fixed order, absent optional
 * members omitted, no whitespace, JSON string escaping as ECMAScript `JSON.stringify` does it,
 * integers in decimal. The line is the canonical bytes `C(n)` with the mac member spliced in
 * before the closing brace, so a verifier recovers `C(n)` by cutting the fixed-length suffix.
 *
 * @module
 */

import { toBase64Url } from "../vault/encoding.ts";
import { LINE_PREFIX, MAC_SUFFIX_BYTES } from "./chain.ts";
import type { AuditEventName } from "./events.ts";

/** Who is acting. */
export interface Actor {
  /**
   * `password` for the master password, `apikey` for an API key, `age` for a teammate's age
   * identity (id: its slot id, name: the slot's label), `pkcs11` for a hardware token's slot (id:
   * the slot id, name: the token label), `none` for Hecate itself.
   */
  kind: "password" | "apikey" | "age" | "pkcs11" | "none";
  /** Key id where there is one. */
  id?: string;
  /** Key name where there is one. */
  name?: string;
}

/** A JSON value allowed in {@link AuditEvent.detail}. */
export type DetailValue =
  | string
  | number
  | boolean
  | null
  | DetailValue[]
  | { [key: string]: DetailValue };

/** What happened, as reported by a layer above. */
export interface AuditEvent {
  /** Event name: one of `AUDIT_EVENTS` (src/audit/events.ts), the list docs/SECURITY.md shows. */
  event: AuditEventName;
  /** Who acted. */
  actor: Actor;
  /** Profile name, when the event concerns one. */
  profile?: string;
  /** Whether it succeeded. */
  outcome: "ok" | "fail";
  /** Failure class (an error code) and a short reason; never a secret. */
  reason?: string;
  /** Rows returned or affected, for queries. */
  rows?: number;
  /** Duration in milliseconds, for queries. */
  durationMs?: number;
  /** SHA-256 (hex) of the SQL text, for queries: identifies the statement without storing it. */
  sqlSha256?: string;
  /**
   * Non-secret attributes specific to the event (e.g. the id and name of the API key created,
   * the segments removed by retention). Never a secret, code or parameter value.
   */
  detail?: { [key: string]: DetailValue };
}

/** An entry as stored: the event plus the members the writer adds. */
export interface AuditEntry {
  seq: number;
  time: string;
  event: string;
  actor: Actor;
  profile?: string;
  outcome: "ok" | "fail";
  reason?: string;
  rows?: number;
  duration_ms?: number;
  sql_sha256?: string;
  detail?: { [key: string]: DetailValue };
  pid: number;
  host: string;
  /** base64url of the 32-byte MAC. */
  mac: string;
}

function sortedDetail(v: DetailValue): DetailValue {
  if (Array.isArray(v)) return v.map(sortedDetail);
  if (v !== null && typeof v === "object") {
    const out: { [key: string]: DetailValue } = {};
    for (const k of Object.keys(v).sort()) out[k] = sortedDetail(v[k]!);
    return out;
  }
  return v;
}

/**
 * The canonical bytes `C(n)` of an entry, as text (no mac member).
 *
 * @param seq Sequence number.
 * @param time UTC ISO-8601 time with milliseconds.
 * @param e The event.
 * @param pid Process id.
 * @param host Host name.
 * @returns The canonical JSON text.
 */
export function canonicalEntry(
  seq: number,
  time: string,
  e: AuditEvent,
  pid: number,
  host: string,
): string {
  const actor: Actor = { kind: e.actor.kind };
  if (e.actor.id !== undefined) actor.id = e.actor.id;
  if (e.actor.name !== undefined) actor.name = e.actor.name;
  // Property order below is the canonical member order: do not reorder.
  const o: Record<string, unknown> = { seq, time, event: e.event, actor };
  if (e.profile !== undefined) o.profile = e.profile;
  o.outcome = e.outcome;
  if (e.reason !== undefined) o.reason = e.reason;
  if (e.rows !== undefined) o.rows = e.rows;
  if (e.durationMs !== undefined) o.duration_ms = e.durationMs;
  if (e.sqlSha256 !== undefined) o.sql_sha256 = e.sqlSha256;
  if (e.detail !== undefined) o.detail = sortedDetail(e.detail);
  o.pid = pid;
  o.host = host;
  for (const k of ["seq", "rows", "duration_ms", "pid"]) {
    if (o[k] !== undefined && !Number.isSafeInteger(o[k])) {
      throw new TypeError(`Audit member "${k}" must be an integer`);
    }
  }
  return JSON.stringify(o);
}

/**
 * The stored line: the canonical text with the mac member before the closing brace, plus `\n`.
 *
 * @param canonical The canonical text from {@link canonicalEntry}.
 * @param mac The entry's MAC.
 * @returns The line.
 */
export function sealedLine(canonical: string, mac: Uint8Array): string {
  return `${canonical.slice(0, -1)},"mac":"${toBase64Url(mac)}"}\n`;
}

/**
 * Splits a stored line (without its `\n`) into the bytes before the mac member and the mac text.
 *
 * @param line The line's bytes.
 * @returns The body (canonical bytes minus the final `}`) and the base64url MAC, or undefined
 * when the line does not have the shape of an entry.
 */
export function splitLine(line: Uint8Array): { body: Uint8Array; mac: string } | undefined {
  const s = macOffset(line);
  if (s < 0) return undefined;
  // 43 base64url characters: ASCII, so each byte is one UTF-16 code unit.
  const start = s + MAC_HEAD.length;
  const mac = String.fromCharCode.apply(
    null,
    line.subarray(start, start + 43) as unknown as number[],
  );
  return { body: line.subarray(0, s), mac };
}

const MAC_HEAD = ',"mac":"';

/**
 * Where a stored line's mac member starts, checking the line's shape like {@link splitLine} but
 * without allocating (the parallel verifier runs this once per entry).
 *
 * @param line The line's bytes, without its `\n`.
 * @returns The body's length (the offset of `,"mac":"`), or -1 when the line is not shaped like
 * an entry.
 */
export function macOffset(line: Uint8Array): number {
  const n = line.length;
  if (n < LINE_PREFIX.length + MAC_SUFFIX_BYTES + 2) return -1;
  const s = n - MAC_SUFFIX_BYTES;
  // ,"mac":"  ...43...  "}
  for (let i = 0; i < MAC_HEAD.length; i++) if (line[s + i] !== MAC_HEAD.charCodeAt(i)) return -1;
  if (line[n - 2] !== 0x22 || line[n - 1] !== 0x7d) return -1;
  for (let i = 0; i < LINE_PREFIX.length; i++) {
    if (line[i] !== LINE_PREFIX.charCodeAt(i)) return -1;
  }
  return s;
}

/**
 * Reads the sequence number at the start of a line (`{"seq":N,`).
 *
 * @param line The line's bytes.
 * @returns N, or -1 when the line does not start that way.
 */
export function seqOf(line: Uint8Array): number {
  const p = LINE_PREFIX.length;
  for (let i = 0; i < p; i++) if (line[i] !== LINE_PREFIX.charCodeAt(i)) return -1;
  let n = 0;
  let i = p;
  for (; i < line.length && i < p + 16; i++) {
    const c = line[i]!;
    if (c === 0x2c) break;
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return i > p && line[i] === 0x2c ? n : -1;
}

/**
 * Base64url without padding of a MAC, fast (the verifier runs this once per entry).
 *
 * @param mac The bytes.
 * @returns The text, as in a line's `mac` member.
 */
export function macText(mac: Uint8Array): string {
  return mac.toBase64({ alphabet: "base64url", omitPadding: true });
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const SEXTET = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) SEXTET[B64URL.charCodeAt(i)] = i;

/**
 * Decodes a stored MAC (43 base64url characters) into 32 bytes, accepting exactly the text
 * {@link macText} produces: any other character, or non-zero unused low bits in the last one,
 * is refused, so comparing decoded bytes is as strict as comparing the text.
 *
 * @param b Bytes holding the text.
 * @param off Where the 43 characters start.
 * @param out Receives 32 bytes.
 * @returns False when the text is not a canonical encoding.
 */
export function decodeMacText(b: Uint8Array, off: number, out: Uint8Array): boolean {
  let o = 0;
  for (let i = 0; i < 40; i += 4) {
    const a = SEXTET[b[off + i]!]!, c = SEXTET[b[off + i + 1]!]!;
    const d = SEXTET[b[off + i + 2]!]!, e = SEXTET[b[off + i + 3]!]!;
    if ((a | c | d | e) < 0) return false;
    const v = (a << 18) | (c << 12) | (d << 6) | e;
    out[o++] = v >>> 16;
    out[o++] = v >>> 8;
    out[o++] = v;
  }
  const a = SEXTET[b[off + 40]!]!, c = SEXTET[b[off + 41]!]!, d = SEXTET[b[off + 42]!]!;
  if ((a | c | d) < 0 || (d & 3) !== 0) return false;
  const v = (a << 12) | (c << 6) | d;
  out[30] = v >>> 10;
  out[31] = v >>> 2;
  return true;
}
