/**
 * Durations in settings and flags: `90s`, `15m`, `12h`, `30d`, and `never` where allowed.
 *
 * @module
 */

import { HecateError } from "../errors.ts";

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * Parses `<n>s|m|h|d`.
 *
 * @param text The duration text.
 * @param what What it is, for the error message.
 * @returns Milliseconds (> 0).
 * @throws {HecateError} `usage` when malformed.
 */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text.trim());
  const n = m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : 0;
  if (!m || n <= 0) {
    throw new HecateError("usage", `Invalid ${what} "${text}"`, {
      hint: "use a number and a unit: 90s, 15m, 12h, 30d",
    });
  }
  return n;
}
