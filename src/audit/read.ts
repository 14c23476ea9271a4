/**
 * Reading the trail for people: every entry of every segment in chain order, with filters.
 * (Reading checks nothing; `audit verify` does. A line may be forged, so what is printed from it
 * is escaped first: see {@link jsonSafe}.)
 *
 * @module
 */

import type { AuditEntry } from "./entry.ts";
import { parseDuration } from "./log.ts";
import { trailFiles } from "./segments.ts";

/** Which entries to keep. */
export interface EntryFilter {
  /** Only entries at or after this time. */
  since?: Date | undefined;
  /** Only entries about this profile. */
  profile?: string | undefined;
  /** Only entries by this actor: `password`, `apikey`, `apikey:<id>`, or a key id or name. */
  actor?: string | undefined;
  /** Only this outcome. */
  outcome?: "ok" | "fail" | undefined;
}

/** A stored line and its parsed entry (undefined when the line is not valid JSON). */
export interface TrailLine {
  /** The raw line, without `\n`. */
  text: string;
  /** The parsed entry. */
  entry: AuditEntry | undefined;
}

/**
 * Parses `--since`: an ISO-8601 date or time, or a duration back from now (`15m`, `2h`, `7d`).
 *
 * @param text The value.
 * @param now The current time.
 * @returns The instant.
 * @throws {HecateError} `usage` when it is neither.
 */
export function parseSince(text: string, now: Date = new Date()): Date {
  if (/^\d+[smhd]$/.test(text)) return new Date(now.getTime() - parseDuration(text));
  const t = Date.parse(text);
  if (Number.isNaN(t)) return new Date(now.getTime() - parseDuration(text)); // throws usage
  return new Date(t);
}

/**
 * Whether an entry passes a filter.
 *
 * @param e The entry.
 * @param f The filter.
 * @returns True to keep it.
 */
export function matches(e: AuditEntry, f: EntryFilter): boolean {
  if (f.since && !(Date.parse(e.time) >= f.since.getTime())) return false;
  if (f.profile !== undefined && e.profile !== f.profile) return false;
  if (f.outcome !== undefined && e.outcome !== f.outcome) return false;
  if (f.actor !== undefined) {
    const a = e.actor ?? { kind: "none" };
    const names = [a.kind, a.id, a.name, a.id ? `${a.kind}:${a.id}` : undefined];
    if (!names.includes(f.actor)) return false;
  }
  return true;
}

/**
 * Streams every line of the trail, oldest first.
 *
 * @param home The home directory.
 */
export async function* trailLines(home: string): AsyncGenerator<TrailLine> {
  const decoder = new TextDecoder();
  for (const file of await trailFiles(home)) {
    let f: Deno.FsFile;
    try {
      f = await Deno.open(file.path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    let carry = "";
    try {
      for await (const chunk of f.readable) {
        const parts = (carry + decoder.decode(chunk, { stream: true })).split("\n");
        carry = parts.pop()!;
        for (const text of parts) if (text !== "") yield { text, entry: parseTrailLine(text) };
      }
    } finally {
      try {
        f.close();
      } catch { /* the readable already closed it */ }
    }
    if (carry !== "") yield { text: carry, entry: parseTrailLine(carry) };
  }
}

/** Control characters (C0, DEL, C1), line and paragraph separators, bidirectional overrides. */
const UNSAFE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

/**
 * A stored line made safe to print: every control character (C0 including ESC, DEL, C1), line or
 * paragraph separator and bidirectional override becomes a JSON `\uXXXX` escape, so a forged line
 * cannot drive the terminal. Inside a JSON string that escape denotes the same character, so a
 * well-formed line keeps its value; outside one the writer never puts such a character.
 *
 * @param text The raw line.
 * @returns The line with those characters escaped.
 */
export function jsonSafe(text: string): string {
  return text.replace(UNSAFE, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

const STRINGS = ["time", "event", "profile", "outcome", "reason", "sql_sha256", "host", "mac"];
const NUMBERS = ["seq", "rows", "duration_ms", "pid"];

/**
 * The entry, when the line is a JSON object whose known members have their types.
 *
 * @param text One stored line.
 * @returns The entry, or undefined for an unreadable line.
 */
export function parseTrailLine(text: string): AuditEntry | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(v)) return undefined;
  // A forged line must not reach the printer with, e.g., an object where text belongs.
  for (const k of STRINGS) if (k in v && typeof v[k] !== "string") return undefined;
  for (const k of NUMBERS) if (k in v && typeof v[k] !== "number") return undefined;
  if ("detail" in v && !isObject(v.detail)) return undefined;
  if ("actor" in v) {
    const a = v.actor;
    if (!isObject(a)) return undefined;
    for (const k of ["kind", "id", "name"]) {
      if (k in a && typeof a[k] !== "string") return undefined;
    }
  }
  return v as unknown as AuditEntry;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
