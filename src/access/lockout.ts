/**
 * Lockout after repeated failures, counted across processes in `lockout.state.json` in the home.
 *
 * Subjects: `password` (master password and vault TOTP failures) and `apikey:<id>` (one per API
 * key id, including ids that match no key). After `max` failures within `window`, the subject is
 * refused for `lock` (default: the window) with a message saying until when. A success clears the
 * subject's failures.
 *
 * This is a gate the program enforces. Whoever copies the vault file and works on it offline is
 * not slowed by it: there, the PBKDF2 cost (password) and the 256-bit key space (API keys) are the
 * protection. Deleting the state file (which needs write access to the home) resets the counters.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { parseDuration } from "./duration.ts";
import { readState, type State, updateState } from "./state_file.ts";

/** File name of the counters in the home directory. */
export const LOCKOUT_FILE = "lockout.state.json";

/** How many failures in what window lock a subject out, and for how long. */
export interface LockoutPolicy {
  /** Failures that trigger a lockout. */
  max: number;
  /** Window in which failures are counted, ms. */
  windowMs: number;
  /** How long a lockout lasts, ms. */
  lockMs: number;
}

/** The default: 5 failures in 15 minutes lock for 15 minutes. */
export const DEFAULT_LOCKOUT: LockoutPolicy = { max: 5, windowMs: 900_000, lockMs: 900_000 };

/**
 * Parses the `HECATE_LOCKOUT` setting: `MAX/WINDOW[/LOCK]`, e.g. `5/15m` or `3/10m/1h`, or `off`.
 *
 * @param text The setting, or undefined for the default.
 * @returns The policy, or null when lockout is off.
 * @throws {HecateError} `usage` when malformed.
 */
export function parseLockoutPolicy(text: string | undefined): LockoutPolicy | null {
  if (text === undefined || text.trim() === "") return DEFAULT_LOCKOUT;
  if (text.trim() === "off") return null;
  const m = /^(\d{1,4})\/([^/]+)(?:\/([^/]+))?$/.exec(text.trim());
  const max = m ? Number(m[1]) : 0;
  if (!m || max < 1) {
    throw new HecateError("usage", `Invalid HECATE_LOCKOUT "${text}"`, {
      hint: "use MAX/WINDOW[/LOCK], e.g. 5/15m or 3/10m/1h, or off",
    });
  }
  const windowMs = parseDuration(m[2]!, "lockout window");
  return { max, windowMs, lockMs: m[3] ? parseDuration(m[3], "lockout period") : windowMs };
}

interface SubjectState {
  failures: string[];
  lockedUntil?: string;
}

function subjectOf(state: State, subject: string): SubjectState {
  const s = state[subject] as SubjectState | undefined;
  return s && Array.isArray(s.failures) ? s : { failures: [] };
}

/** What {@link Lockout.recordFailure} reports. */
export interface FailureOutcome {
  /** Failures in the current window, this one included. */
  failures: number;
  /** Set when this failure started a lockout. */
  lockedUntil?: Date;
}

/** Lockout counters of one home directory. */
export class Lockout {
  readonly #home: string;
  readonly #policy: LockoutPolicy | null;
  readonly #now: () => Date;

  /**
   * @param home The home directory.
   * @param policy The policy, or null for none.
   * @param now The clock.
   */
  constructor(home: string, policy: LockoutPolicy | null, now: () => Date = () => new Date()) {
    this.#home = home;
    this.#policy = policy;
    this.#now = now;
  }

  /**
   * Refuses when the subject is locked out.
   *
   * @param subject `password` or `apikey:<id>`.
   * @throws {HecateError} `locked_out` with the time it ends.
   */
  async check(subject: string): Promise<void> {
    if (!this.#policy) return;
    const s = subjectOf(await readState(this.#home, LOCKOUT_FILE), subject);
    if (s.lockedUntil && Date.parse(s.lockedUntil) > this.#now().getTime()) {
      throw lockedOut(s.lockedUntil);
    }
  }

  /**
   * Counts a failure; starts a lockout when the window holds `max` failures.
   *
   * @param subject The subject.
   * @returns The count and, if one started, the lockout end.
   */
  async recordFailure(subject: string): Promise<FailureOutcome> {
    const policy = this.#policy;
    if (!policy) return { failures: 0 };
    const now = this.#now();
    return await updateState(this.#home, LOCKOUT_FILE, (state) => {
      const s = subjectOf(state, subject);
      const since = now.getTime() - policy.windowMs;
      const failures = [...s.failures.filter((t) => Date.parse(t) > since), now.toISOString()];
      const next: SubjectState = { failures };
      let lockedUntil: Date | undefined;
      const stillLocked = s.lockedUntil && Date.parse(s.lockedUntil) > now.getTime();
      if (stillLocked) next.lockedUntil = s.lockedUntil!;
      else if (failures.length >= policy.max) {
        lockedUntil = new Date(now.getTime() + policy.lockMs);
        next.lockedUntil = lockedUntil.toISOString();
        next.failures = []; // a new count starts when the lockout ends
      }
      state[subject] = next;
      return {
        write: true,
        result: lockedUntil ? { failures: failures.length, lockedUntil } : {
          failures: failures.length,
        },
      };
    });
  }

  /**
   * Clears a subject's failures after a success (writes only when there is something to clear).
   *
   * @param subject The subject.
   */
  async recordSuccess(subject: string): Promise<void> {
    if (!this.#policy) return;
    if (subjectOf(await readState(this.#home, LOCKOUT_FILE), subject).failures.length === 0) return;
    await updateState(this.#home, LOCKOUT_FILE, (state) => {
      const s = subjectOf(state, subject);
      if (s.lockedUntil) state[subject] = { failures: [], lockedUntil: s.lockedUntil };
      else delete state[subject];
      return { write: true, result: undefined };
    });
  }
}

/**
 * The error for a refused attempt.
 *
 * @param until When the lockout ends, ISO 8601.
 * @returns The error.
 */
export function lockedOut(until: string): HecateError {
  return new HecateError("locked_out", `Too many failed attempts: locked until ${until}`, {
    hint: "wait until then; the failures are in the audit trail ('hecate audit show')",
  });
}
