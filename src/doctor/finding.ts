/**
 * What `hecate doctor` reports: findings with a severity and the command that fixes each, and the
 * exit code a set of findings gives.
 *
 * @module
 */

import { ExitCode } from "../errors.ts";

/** How bad a finding is: `info` is a note, `warn` weakens something, `error` breaks or exposes. */
export type Severity = "info" | "warn" | "error";

/** One thing the doctor found. */
export interface Finding {
  /** The check that found it (`permissions`, `kdf`, `tls`, `ssh`, `apikey`, `audit`, ...). */
  check: string;
  /** How bad it is. */
  severity: Severity;
  /** One line for a person; names paths, profiles and keys, never a secret. */
  message: string;
  /** A command (or short instruction) that fixes it, when there is one. */
  fix?: string;
  /** The file the finding is about, when it is about one. */
  path?: string;
}

const RANK: Record<Severity, number> = { info: 0, warn: 1, error: 2 };

/**
 * The worst severity among findings.
 *
 * @param findings The findings.
 * @returns The worst severity, or undefined when there are none.
 */
export function worstSeverity(findings: readonly Finding[]): Severity | undefined {
  let worst: Severity | undefined;
  for (const f of findings) {
    if (worst === undefined || RANK[f.severity] > RANK[worst]) worst = f.severity;
  }
  return worst;
}

/**
 * The exit code of a doctor run: 0 when nothing worse than `info` was found, else
 * {@link ExitCode.DOCTOR_WARNINGS} or {@link ExitCode.DOCTOR_ERRORS}.
 *
 * @param findings The findings.
 * @returns The exit code.
 */
export function doctorExitCode(findings: readonly Finding[]): number {
  const worst = worstSeverity(findings);
  if (worst === "error") return ExitCode.DOCTOR_ERRORS;
  if (worst === "warn") return ExitCode.DOCTOR_WARNINGS;
  return ExitCode.OK;
}

/**
 * Sorts findings worst first, keeping the order of the checks within one severity.
 *
 * @param findings The findings.
 * @returns A sorted copy.
 */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return findings.map((f, i) => ({ f, i }))
    .sort((a, b) => RANK[b.f.severity] - RANK[a.f.severity] || a.i - b.i)
    .map(({ f }) => f);
}

/**
 * Quotes a word for a POSIX shell when it needs it, so a fix command can be pasted as printed.
 *
 * @param word A path or name.
 * @returns The word, single-quoted when it holds anything but safe characters.
 */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
