/**
 * Rotation schedules: a profile's `rotateEveryMs` and when its password was last rotated on the
 * server (the newest `rotate-password` version in its history, else when it was created).
 *
 * @module
 */

import type { Profile } from "../profile.ts";
import { historyOf } from "./history.ts";

/** The profile's schedule, if it has one. */
export function rotateEveryOf(p: Profile): number | undefined {
  const v = (p as { rotateEveryMs?: unknown }).rotateEveryMs;
  return typeof v === "number" && Number.isInteger(v) && v > 0 ? v : undefined;
}

/**
 * When the password was last rotated on the server (ISO), else when the profile was created.
 *
 * @param p The profile.
 * @returns ISO time.
 */
export function lastRotation(p: Profile): string {
  const h = historyOf(p);
  const times = [h.current, ...h.previous]
    .filter((v) => v.reason.startsWith("rotate-password"))
    .map((v) => v.time)
    .sort();
  return times.at(-1) ?? p.created;
}

/**
 * When the next rotation is due (ISO), or undefined without a schedule.
 *
 * @param p The profile.
 * @returns ISO time.
 */
export function nextRotation(p: Profile): string | undefined {
  const every = rotateEveryOf(p);
  if (every === undefined) return undefined;
  const last = Date.parse(lastRotation(p));
  return new Date((Number.isFinite(last) ? last : 0) + every).toISOString();
}

/**
 * Whether a rotation is due at `now`.
 *
 * @param p The profile.
 * @param now The time.
 * @returns True when it has a schedule and the next rotation is not in the future.
 */
export function isDue(p: Profile, now: Date): boolean {
  const next = nextRotation(p);
  return next !== undefined && Date.parse(next) <= now.getTime();
}
