/**
 * `audit verify`: recomputes the chain from A0 over every segment and names the first problem.
 * Checks the trail as it stood when {@link snapshotTrail} ran, so entries appended meanwhile
 * (including the verifier's own unlock record) are not part of the verdict.
 *
 * @module
 */

import { toBase64Url } from "../vault/encoding.ts";
import { ZERO_MAC } from "./chain.ts";
import { macText, seqOf, splitLine } from "./entry.ts";
import { FastHmac } from "./fast_hmac.ts";
import { eachLine } from "./lines.ts";
import { parallelPass } from "./verify_parallel.ts";
import { withAuditLock } from "./log.ts";
import { provenStart, type RemovedSegment } from "./retention.ts";
import { AUDIT_FILE, type SegmentFile, segmentName, trailFiles } from "./segments.ts";
import { type ChainState, readState, STATE_FILE } from "./state.ts";

/** The trail's files and state at one instant. */
export interface TrailSnapshot {
  /** The state file, or undefined when it is missing. */
  state: ChainState | undefined;
  /**
   * Closed segments and the active one, in chain order, each with the bytes to check and its
   * inode (to find the active file again if a rotation renamed it meanwhile).
   */
  files: (SegmentFile & { size: number | undefined; ino?: number | null })[];
}

/** What is wrong with a trail. */
export type ProblemKind =
  | "edited"
  | "missing"
  | "reordered"
  | "truncated"
  | "state_rolled_back"
  | "state_mismatch"
  | "state_missing"
  | "file_missing"
  | "segment_missing";

/** The first problem found. */
export interface TrailProblem {
  /** Failure class. */
  kind: ProblemKind;
  /** File name relative to the home directory. */
  file: string;
  /** 1-based line number in that file, where one applies. */
  line?: number;
  /** One line for a person. */
  message: string;
}

export type { RemovedSegment };

/** Options for {@link verifyTrail}. */
export interface VerifyOptions {
  /**
   * Worker threads checking MACs in parallel; 0 verifies on this thread only. This thread also
   * checks runs whenever every worker has one queued, so one worker per core measured best.
   * @default {cores (at least 1) for trails over 4 MiB, else 0}
   */
  workers?: number;
}

const PARALLEL_BYTES = 4 * 1024 * 1024;

/** The verdict. */
export interface VerifyReport {
  /** True when every entry and the state file check out. */
  ok: boolean;
  /** Entries verified. */
  entries: number;
  /** First and last sequence numbers verified (0 when none). */
  firstSeq: number;
  lastSeq: number;
  /** Files read. */
  files: number;
  /** Segments removed by retention before `firstSeq`. */
  removed: RemovedSegment[];
  /** MAC of the last verified entry, base64url. */
  lastMac: string;
  /** The first problem, when not ok. */
  problem?: TrailProblem;
}

/**
 * Records which files make up the trail and how long each is, under the audit lock.
 *
 * @param home The home directory.
 * @returns The snapshot.
 */
export async function snapshotTrail(home: string): Promise<TrailSnapshot> {
  return await withAuditLock(home, async () => {
    const files: TrailSnapshot["files"] = [];
    for (const f of await trailFiles(home)) {
      try {
        const st = await Deno.stat(f.path);
        files.push({ ...f, size: st.size, ino: st.ino });
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        files.push({ ...f, size: undefined });
      }
    }
    return { state: await readState(home), files };
  });
}

/**
 * The snapshot with the active file's path following a rotation made since (for example by the
 * verifier's own unlock record): the same file, found by inode among the closed segments.
 */
async function followRotation(home: string, snap: TrailSnapshot): Promise<TrailSnapshot> {
  const active = snap.files.find((f) => f.first === undefined);
  if (!active?.ino || active.size === undefined) return snap;
  const ino = async (path: string) => await Deno.stat(path).then((s) => s.ino, () => undefined);
  if (await ino(active.path) === active.ino) return snap;
  const first = snap.state?.segmentFirst;
  const moved = first === undefined ? undefined : `${home}/${segmentName(first)}`;
  if (!moved || await ino(moved) !== active.ino) return snap;
  return { ...snap, files: snap.files.map((f) => f === active ? { ...f, path: moved } : f) };
}

async function firstLineOf(path: string, size: number): Promise<Uint8Array | undefined> {
  let first: Uint8Array | undefined;
  await eachLine(path, Math.min(size, 65536), (l) => {
    first = l.slice();
    return false;
  });
  return first;
}

/**
 * The `detail` of every retention record that opens a file and claims to cover entries
 * 1..first-1 (untrusted until {@link provenStart} checks it). A record is the first entry of its
 * segment: the writer starts a segment for it.
 */
async function retentionClaims(
  files: TrailSnapshot["files"],
  first: number,
): Promise<{ detail: unknown; file: string }[]> {
  const out = [];
  for (const f of files) {
    if (f.size === undefined) continue;
    const line = await firstLineOf(f.path, f.size);
    if (!line) continue;
    let o: { event?: unknown; detail?: { removed?: unknown } };
    try {
      o = JSON.parse(new TextDecoder().decode(line));
    } catch {
      continue;
    }
    if (o === null || typeof o !== "object" || o.event !== "audit.retention") continue;
    const removed = o.detail?.removed;
    if (
      Array.isArray(removed) &&
      removed.some((r) => r !== null && typeof r === "object" && r.last_seq === first - 1)
    ) {
      out.push({ detail: o.detail, file: f.name });
    }
  }
  return out;
}

/**
 * Verifies the trail.
 *
 * @param home The home directory.
 * @param a0 The first chain key, from the vault.
 * @param snapshot What to check. @default {a fresh {@link snapshotTrail}}
 * @param options Parallelism.
 * @returns The report; `ok` false names the first problem.
 */
export async function verifyTrail(
  home: string,
  a0: Uint8Array,
  snapshot?: TrailSnapshot,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const snap = await followRotation(home, snapshot ?? await snapshotTrail(home));
  const hmac = await FastHmac.create();
  const state = snap.state;
  const present = snap.files.filter((f) => f.size !== undefined);
  const report: VerifyReport = {
    ok: false,
    entries: 0,
    firstSeq: 0,
    lastSeq: 0,
    files: present.length,
    removed: [],
    lastMac: toBase64Url(ZERO_MAC),
  };
  const fail = (p: TrailProblem): VerifyReport => ({ ...report, problem: p });

  if (present.length === 0 || present.every((f) => f.size === 0)) {
    if (!state || state.seq > 0) {
      return fail({
        kind: "file_missing",
        file: AUDIT_FILE,
        message: `The audit log "${AUDIT_FILE}" is missing${
          state ? ` (the state file records ${state.seq} entries)` : ""
        }`,
      });
    }
  }

  // Where the chain starts: entry 1 under A0, or after segments that retention removed.
  let key: Uint8Array = a0;
  let prev: Uint8Array = ZERO_MAC;
  let expected = 1;
  const firstFile = present.find((f) => (f.size ?? 0) > 0);
  const firstLine = firstFile ? await firstLineOf(firstFile.path, firstFile.size!) : undefined;
  const firstSeq = firstLine ? seqOf(firstLine) : -1;
  if (firstFile && firstSeq > 1) {
    // Entries 1..firstSeq-1 are gone. Only a retention record whose proof verifies under A0 (not
    // merely under the chain key, which the state file holds) says where the kept chain starts.
    let refused = "no retention record covers them";
    let start: { removed: RemovedSegment[]; prev: Uint8Array } | undefined;
    for (const claim of await retentionClaims(present, firstSeq)) {
      const r = provenStart(a0, claim.detail, firstSeq);
      if ("refused" in r) refused = `${r.refused}, in "${claim.file}"`;
      else start = r;
      if (start) break;
    }
    if (!start) {
      const active = firstFile.first === undefined;
      return fail({
        kind: active && state && state.segmentFirst < firstSeq ? "file_missing" : "segment_missing",
        file: active ? AUDIT_FILE : segmentName(1),
        line: active ? 1 : undefined,
        message: active
          ? `The audit log "${AUDIT_FILE}" was deleted or replaced: it starts at seq ${firstSeq}, ` +
            `entries 1..${firstSeq - 1} are gone and ${refused}`
          : `Segment "${segmentName(1)}" is missing: entries 1..${
            firstSeq - 1
          } are gone and ${refused}`,
      } as TrailProblem);
    }
    report.removed = start.removed;
    prev = start.prev;
    for (let i = 1; i < firstSeq; i++) key = hmac.next(key);
    expected = firstSeq;
  }
  report.firstSeq = expected;

  // Large trails: a parallel pass first; the sequential loop below runs only to name a problem.
  const bytes = snap.files.reduce((a, f) => a + (f.size ?? 0), 0);
  const workers = options.workers ??
    (bytes >= PARALLEL_BYTES ? Math.max(1, navigator.hardwareConcurrency) : 0);
  const fast = workers > 0
    ? await parallelPass({ files: snap.files, key, prev, expected, hmac, workers })
    : undefined;
  if (fast) {
    ({ key, prev, expected } = fast);
    report.entries = fast.entries;
    report.lastMac = toBase64Url(prev);
  }

  for (const f of fast ? [] : snap.files) {
    if (f.size === undefined) {
      if (f.first === undefined && state && state.seq >= expected) {
        return fail({
          kind: "file_missing",
          file: f.name,
          message:
            `The audit log "${f.name}" is missing: entries ${expected}..${state.seq} are gone`,
        });
      }
      continue;
    }
    if (f.first !== undefined && f.first !== expected) {
      return fail(
        f.first > expected
          ? {
            kind: "segment_missing",
            file: segmentName(expected),
            message: `Segment "${segmentName(expected)}" is missing: entries ${expected}..${
              f.first - 1
            } are gone`,
          }
          : {
            kind: "reordered",
            file: f.name,
            message:
              `Segment "${f.name}" starts at seq ${f.first} but seq ${expected} was expected`,
          },
      );
    }
    let lineNo = 0;
    // Assigned inside the callback, so typed by assertion to keep TypeScript from narrowing.
    let problem = undefined as TrailProblem | undefined;
    let lookFor = undefined as { seq: number; line: number; found: number } | undefined;
    await eachLine(f.path, f.size, (line, complete) => {
      lineNo++;
      if (!complete) {
        problem = {
          kind: "truncated",
          file: f.name,
          line: lineNo,
          message: `Line ${lineNo} of "${f.name}" is incomplete: the file was cut mid-line`,
        };
        return false;
      }
      const seq = seqOf(line);
      const parts = splitLine(line);
      if (seq < 0 || !parts) {
        problem = {
          kind: "edited",
          file: f.name,
          line: lineNo,
          message: `Line ${lineNo} of "${f.name}" is not a well-formed entry (edited)`,
        };
        return false;
      }
      if (seq !== expected) {
        if (
          f.first === undefined && lineNo === 1 && seq > expected && state?.segmentFirst === seq
        ) {
          // The active segment starts where the state says: closed segments before it are gone.
          problem = {
            kind: "segment_missing",
            file: segmentName(expected),
            message: `Segment "${segmentName(expected)}" is missing: entries ${expected}..${
              seq - 1
            } are gone`,
          };
        } else if (f.first === undefined && lineNo === 1 && state && state.segmentFirst < seq) {
          problem = {
            kind: "file_missing",
            file: f.name,
            line: 1,
            message:
              `The audit log "${f.name}" was deleted or replaced: it starts at seq ${seq}, ` +
              `entries ${expected}..${seq - 1} are gone`,
          };
        } else if (seq > expected) {
          lookFor = { seq: expected, line: lineNo, found: 0 };
          problem = {
            kind: "missing",
            file: f.name,
            line: lineNo,
            message: `Entries ${expected}..${
              seq - 1
            } are missing before line ${lineNo} of "${f.name}"`,
          };
        } else {
          problem = {
            kind: "reordered",
            file: f.name,
            line: lineNo,
            message:
              `Line ${lineNo} of "${f.name}" has seq ${seq} where seq ${expected} was expected ` +
              `(lines reordered or duplicated)`,
          };
        }
        return false;
      }
      const { mac, next } = hmac.step(key, prev, parts.body);
      if (macText(mac) !== parts.mac) {
        problem = {
          kind: "edited",
          file: f.name,
          line: lineNo,
          message: `Line ${lineNo} of "${f.name}" (seq ${seq}) was altered: its MAC does not match`,
        };
        return false;
      }
      prev = mac;
      key = next;
      expected++;
      report.entries++;
      return true;
    });
    if (lookFor) {
      // A later line carrying the expected seq means lines were moved, not deleted.
      const want = lookFor;
      let n = 0;
      await eachLine(f.path, f.size, (line) => {
        n++;
        if (n > want.line && seqOf(line) === want.seq) want.found = n;
        return want.found === 0;
      });
      if (want.found > 0) {
        problem = {
          kind: "reordered",
          file: f.name,
          line: want.line,
          message:
            `Line ${want.line} of "${f.name}" is out of order: seq ${want.seq} appears later, ` +
            `at line ${want.found}`,
        };
      }
    }
    report.lastSeq = expected - 1;
    report.lastMac = toBase64Url(prev);
    if (problem) return fail(problem);
  }

  const last = expected - 1;
  report.lastSeq = last;
  if (!state) {
    return fail({
      kind: "state_missing",
      file: STATE_FILE,
      message: `The audit state file "${STATE_FILE}" is missing: truncation cannot be ruled out`,
    });
  }
  if (state.seq > last) {
    return fail({
      kind: "truncated",
      file: AUDIT_FILE,
      message: `The trail ends at seq ${last} but the state file records seq ${state.seq}: ` +
        `entries ${last + 1}..${state.seq} were cut off`,
    });
  }
  if (state.seq < last) {
    return fail({
      kind: "state_rolled_back",
      file: STATE_FILE,
      message: `The state file is at seq ${state.seq} but the trail goes on to seq ${last}: ` +
        `it was replaced by an older copy`,
    });
  }
  if (toBase64Url(state.key) !== toBase64Url(key) || toBase64Url(state.mac) !== toBase64Url(prev)) {
    return fail({
      kind: "state_mismatch",
      file: STATE_FILE,
      message: `The state file does not match the chain at seq ${last} (forged or damaged)`,
    });
  }
  return { ...report, ok: true };
}
