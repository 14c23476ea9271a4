/**
 * Doctor check: the audit trail. Without the master password, its continuity: the state file's
 * last sequence number and MAC against the last line on disk, and the active segment's length
 * against the state's (a cut or replaced trail, a rolled-back or forged state file). With it, the
 * full verification `hecate audit verify` does (every MAC from the first key), and the vault's
 * generation against the highest one the verified `vault.write` records name.
 *
 * @module
 */

import { macText, seqOf, splitLine } from "../audit/entry.ts";
import { type TrailSnapshot, verifyTrail } from "../audit/verify.ts";
import { trailVaultFacts } from "../audit/written_generation.ts";
import { HecateError } from "../errors.ts";
import type { Finding } from "./finding.ts";

const TAIL_BYTES = 64 * 1024;
const FIX_VERIFY = "hecate audit verify (with the master password: names the first bad point)";

/** The last complete line within the first `size` bytes of a file, if any. */
async function lastLine(path: string, size: number): Promise<Uint8Array | undefined> {
  const f = await Deno.open(path, { read: true });
  try {
    const start = Math.max(0, size - TAIL_BYTES);
    await f.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let got = 0;
    while (got < buf.length) {
      const n = await f.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    const end = buf.lastIndexOf(0x0a, got - 1);
    if (end < 0) return undefined;
    const begin = buf.lastIndexOf(0x0a, end - 1) + 1;
    if (begin === 0 && start > 0) return undefined; // a line longer than the tail: not an entry
    return buf.subarray(begin, end);
  } finally {
    f.close();
  }
}

function error(message: string): Finding {
  return { check: "audit", severity: "error", message, fix: FIX_VERIFY };
}

/**
 * Checks the trail's continuity without any key.
 *
 * @param snap The trail's files and state at one instant (`snapshotTrail`).
 * @returns Findings (none when the state and the last entry agree).
 */
export async function checkChainContinuity(snap: TrailSnapshot): Promise<Finding[]> {
  const state = snap.state;
  const present = snap.files.filter((f) => f.size !== undefined && f.size > 0);
  const active = snap.files.find((f) => f.first === undefined)!;
  if (present.length === 0) {
    if (!state || state.seq > 0) {
      return [error(
        `The audit trail is missing${
          state ? ` (the state file records ${state.seq} entries)` : ""
        }`,
      )];
    }
    return [];
  }
  if (!state) {
    return [error("The audit state file audit.state is missing: truncation cannot be ruled out")];
  }
  const activeSize = active.size ?? 0;
  if (activeSize < state.size) {
    return [error(
      `audit.jsonl is ${activeSize} bytes but the state file records ${state.size}: ` +
        `the trail was cut or replaced`,
    )];
  }
  const last = present.at(-1)!;
  const line = await lastLine(last.path, last.size!);
  const seq = line ? seqOf(line) : -1;
  const parts = line ? splitLine(line) : undefined;
  if (seq < 0 || !parts) {
    return [error(`The last line of "${last.name}" is not a well-formed entry`)];
  }
  if (seq !== state.seq) {
    return [error(
      seq < state.seq
        ? `The trail ends at seq ${seq} but the state file records seq ${state.seq}: ` +
          `entries were cut off`
        : `The state file is at seq ${state.seq} but the trail goes on to seq ${seq}: ` +
          `the state file was replaced by an older copy`,
    )];
  }
  if (parts.mac !== macText(state.mac)) {
    return [error(`The state file does not match the last entry (seq ${seq}): forged or damaged`)];
  }
  if (activeSize > state.size) {
    return [{
      check: "audit",
      severity: "warn",
      message: `audit.jsonl has ${activeSize - state.size} bytes after the last recorded entry ` +
        `(an interrupted append, or lines added by hand)`,
      fix: FIX_VERIFY,
    }];
  }
  return [];
}

/**
 * Verifies the trail from its first key, as `hecate audit verify` does, and compares the vault's
 * generation with the highest one the verified trail records.
 *
 * @param home The home directory.
 * @param a0 The trail's first key (from the unlocked vault).
 * @param snap The snapshot taken before the unlock (the unlock's own record is not judged).
 * @param vault The unlocked vault's id and generation.
 * @returns Findings: one `info` when the trail verified.
 */
export async function checkAuditVerified(
  home: string,
  a0: Uint8Array,
  snap: TrailSnapshot,
  vault: { id: string; generation: number },
): Promise<Finding[]> {
  const report = await verifyTrail(home, a0, snap);
  if (!report.ok) {
    const p = report.problem!;
    return [error(`Audit trail failed verification (${p.kind}): ${p.message}`)];
  }
  const facts = await trailVaultFacts(home, vault.id, report.firstSeq, report.lastSeq);
  if (vault.generation < facts.highestGeneration) {
    return [{
      check: "audit",
      severity: "error",
      message: `The vault file is generation ${vault.generation}, but the verified audit trail ` +
        `records generation ${facts.highestGeneration}: an older copy was put back`,
      fix: "put the newest copy back (generations/, or move vault.hecate aside and run " +
        "'hecate backup restore FILE')",
    }];
  }
  return [{
    check: "audit",
    severity: "info",
    message: `Audit trail verified: ${report.entries} entries (seq ${report.firstSeq}..` +
      `${report.lastSeq}) in ${report.files} file(s)`,
  }];
}

/**
 * A finding for a state file that could not even be parsed.
 *
 * @param e The error from reading it.
 * @returns The finding, or undefined when `e` is not such an error.
 */
export function unreadableState(e: unknown): Finding | undefined {
  if (e instanceof HecateError && e.code === "audit_failed") return error(e.message);
  return undefined;
}
