/**
 * Reading the trail for people: every entry of every segment in chain order, with filters.
 * (Reading checks nothing; `audit verify` does.)
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
        for (const text of parts) if (text !== "") yield { text, entry: parse(text) };
      }
    } finally {
      try {
        f.close();
      } catch { /* the readable already closed it */ }
    }
    if (carry !== "") yield { text: carry, entry: parse(carry) };
  }
}

function parse(text: string): AuditEntry | undefined {
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" && !Array.isArray(v) ? v as AuditEntry : undefined;
  } catch {
    return undefined;
  }
}
