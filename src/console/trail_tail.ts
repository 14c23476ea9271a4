/**
 * Reading only what was appended to the active trail file since the last look, for the audit
 * page's live tail: a poll every two seconds must not re-read a trail of millions of lines. The
 * position is a hint: a different file (rotation) or a shorter one (truncation, tampering) means
 * a full read, and callers drop entries at or below the sequence number they already have.
 *
 * @module
 */

import type { AuditEntry } from "../audit/entry.ts";
import { parseTrailLine, trailLines } from "../audit/read.ts";
import { AUDIT_FILE } from "../audit/segments.ts";

/** Where the last read of the active file ended. */
export interface TailPosition {
  /** Inode of the active file then. */
  ino: number | null;
  /** Bytes read (always just after a newline). */
  offset: number;
}

async function activeFile(home: string): Promise<{ ino: number | null; size: number } | undefined> {
  try {
    const st = await Deno.stat(`${home}/${AUDIT_FILE}`);
    return { ino: st.ino, size: st.size };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * Where the active file ends now (taken before a full read, so nothing appended during it is lost).
 *
 * @param home The home directory.
 * @returns The position, or undefined without a trail.
 */
export async function currentPosition(home: string): Promise<TailPosition | undefined> {
  const now = await activeFile(home);
  return now && { ino: now.ino, offset: now.size };
}

/**
 * A position as the page carries it: `INODE.OFFSET`.
 *
 * @param p The position.
 * @returns The text, empty for none.
 */
export function positionText(p: TailPosition | undefined): string {
  return p && p.ino !== null ? `${p.ino}.${p.offset}` : "";
}

/**
 * Reads a position the page sent back; anything malformed means "read everything".
 *
 * @param text The text.
 * @returns The position, or undefined.
 */
export function parsePosition(text: string | null): TailPosition | undefined {
  const m = /^(\d{1,20})\.(\d{1,20})$/.exec(text ?? "");
  if (!m) return undefined;
  const ino = Number(m[1]);
  const offset = Number(m[2]);
  if (!Number.isSafeInteger(ino) || !Number.isSafeInteger(offset)) return undefined;
  return { ino, offset };
}

/**
 * The entries appended since `from` (or every entry when `from` no longer applies), and the new
 * position.
 *
 * @param home The home directory.
 * @param from The previous position, if any.
 * @returns Entries in file order, and where this read ended.
 */
export async function readSince(
  home: string,
  from: TailPosition | undefined,
): Promise<{ entries: AuditEntry[]; position: TailPosition | undefined }> {
  const now = await activeFile(home);
  const entries: AuditEntry[] = [];
  if (!now) return { entries, position: undefined };
  if (!from || from.ino === null || from.ino !== now.ino || now.size < from.offset) {
    // Stat first, read after: a line appended meanwhile is read again next time, never missed.
    for await (const l of trailLines(home)) if (l.entry) entries.push(l.entry);
    return { entries, position: { ino: now.ino, offset: now.size } };
  }
  if (now.size === from.offset) return { entries, position: from };
  const f = await Deno.open(`${home}/${AUDIT_FILE}`, { read: true });
  let bytes: Uint8Array;
  try {
    await f.seek(from.offset, Deno.SeekMode.Start);
    bytes = new Uint8Array(now.size - from.offset);
    let at = 0;
    while (at < bytes.length) {
      const n = await f.read(bytes.subarray(at));
      if (n === null) break;
      at += n;
    }
    bytes = bytes.subarray(0, at);
  } finally {
    f.close();
  }
  // Only whole lines: a line being written stays for the next read.
  const end = bytes.lastIndexOf(0x0a) + 1;
  for (const text of new TextDecoder().decode(bytes.subarray(0, end)).split("\n")) {
    const e = text ? parseTrailLine(text) : undefined;
    if (e) entries.push(e);
  }
  return { entries, position: { ino: now.ino, offset: from.offset + end } };
}
