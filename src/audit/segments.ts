/**
 * Where the trail lives: the active segment `audit.jsonl`, closed segments
 * `audit.segments/audit-<first seq, 12 digits>.jsonl`, the lock and the state file.
 *
 * @module
 */

/** File name of the active segment inside the home directory. */
export const AUDIT_FILE = "audit.jsonl";
/** Directory of closed segments inside the home directory. */
export const SEGMENT_DIR = "audit.segments";
/** Lock file serialising appends (flock). */
export const AUDIT_LOCK = "audit.lock";

const SEGMENT_NAME = /^audit-(\d{12,})\.jsonl$/;

/** One file of the trail. */
export interface SegmentFile {
  /** Name relative to the home directory, e.g. `audit.segments/audit-000000000001.jsonl`. */
  name: string;
  /** Full path. */
  path: string;
  /** First sequence number, from the name; undefined for the active segment. */
  first?: number;
}

/**
 * The name of the closed segment whose first entry is `first`.
 *
 * @param first Its first sequence number.
 * @returns The name relative to the home directory.
 */
export function segmentName(first: number): string {
  return `${SEGMENT_DIR}/audit-${String(first).padStart(12, "0")}.jsonl`;
}

/**
 * Lists the closed segments, oldest first.
 *
 * @param home The home directory.
 * @returns The segments.
 */
export async function closedSegments(home: string): Promise<SegmentFile[]> {
  const out: SegmentFile[] = [];
  try {
    for await (const e of Deno.readDir(`${home}/${SEGMENT_DIR}`)) {
      const m = SEGMENT_NAME.exec(e.name);
      if (!m) continue;
      const name = `${SEGMENT_DIR}/${e.name}`;
      out.push({ name, path: `${home}/${name}`, first: Number(m[1]) });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.first! - b.first!);
}

/**
 * All files of the trail in chain order: closed segments, then the active one.
 *
 * @param home The home directory.
 * @returns The files (the active one is listed even if it does not exist).
 */
export async function trailFiles(home: string): Promise<SegmentFile[]> {
  return [...await closedSegments(home), { name: AUDIT_FILE, path: `${home}/${AUDIT_FILE}` }];
}

/**
 * Syncs a directory so renames and removals in it are durable.
 *
 * @param dir The directory.
 */
export async function syncDir(dir: string): Promise<void> {
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}
