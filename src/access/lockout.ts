/**
 * Lockout after repeated failures, counted across processes in `lockout.state.json` in the home.
 *
 * Subjects: `password` (master password and vault TOTP failures) and `apikey:<id>` (one per API
 * key id, including ids that match no key). Each attempt is counted when it starts (atomically
 * with the lockout check) and un-counted on success; once `max` attempts within `window` have
 * failed, the subject is refused for `lock` (default: the window) with a message saying until
 * when. A success clears the subject's failures.
 *
 * This is a gate the program enforces. Whoever copies the vault file and works on it offline is
 * not slowed by it: there, the PBKDF2 cost (password) and the 256-bit key space (API keys) are the
 * protection. Deleting the state file (which needs write access to the home) resets the counters.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { parseDuration } from "./duration.ts";
import { type State, updateState } from "./state_file.ts";

/** Counters are not fsynced: a power cut losing the last few failures is acceptable, and the
 * cron path pays no disk flush for them. The rename still makes each write atomic. */
const NO_SYNC = { sync: false } as const;

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
   * Starts an attempt: refuses it when the subject is locked out, else counts it as a failure
   * until {@link succeeded} or {@link release} says otherwise. Counting first, atomically with
   * the check, means parallel attempts cannot all slip past the check before any is counted: at
   * most `max` attempts run per window.
   *
   * @param subject `password` or `apikey:<id>`.
   * @returns A token for {@link release}, and whether this call started a lockout.
   * @throws {LockedOut} When the subject is (or just became) locked out.
   */
  async begin(subject: string): Promise<string> {
    const policy = this.#policy;
    if (!policy) return "";
    const now = this.#now();
    const token = now.toISOString();
    const refused = await updateState(this.#home, LOCKOUT_FILE, (state) => {
      const s = subjectOf(state, subject);
      if (s.lockedUntil && Date.parse(s.lockedUntil) > now.getTime()) {
        return { write: false, result: { until: s.lockedUntil, started: false } };
      }
      const failures = recent(s.failures, now, policy);
      if (failures.length >= policy.max) {
        const until = new Date(now.getTime() + policy.lockMs).toISOString();
        state[subject] = { failures: [], lockedUntil: until };
        return { write: true, result: { until, started: true } };
      }
      state[subject] = { failures: [...failures, token] };
      return { write: true, result: undefined };
    }, NO_SYNC);
    if (refused) throw new LockedOut(refused.until, refused.started);
    return token;
  }

  /**
   * Marks the attempt failed (it is already counted) and starts a lockout when the window now
   * holds `max` failures.
   *
   * @param subject The subject.
   * @returns The lockout end when this failure started one.
   */
  async failed(subject: string): Promise<Date | undefined> {
    const policy = this.#policy;
    if (!policy) return undefined;
    const now = this.#now();
    return await updateState(this.#home, LOCKOUT_FILE, (state) => {
      const s = subjectOf(state, subject);
      const failures = recent(s.failures, now, policy);
      if (s.lockedUntil && Date.parse(s.lockedUntil) > now.getTime()) {
        return { write: false, result: undefined };
      }
      if (failures.length < policy.max) return { write: false, result: undefined };
      const until = new Date(now.getTime() + policy.lockMs);
      state[subject] = { failures: [], lockedUntil: until.toISOString() };
      return { write: true, result: until };
    }, NO_SYNC);
  }

  /**
   * Un-counts an attempt that ended for a reason that says nothing about the credential (a
   * missing vault, a damaged file).
   *
   * @param subject The subject.
   * @param token What {@link begin} returned.
   */
  async release(subject: string, token: string): Promise<void> {
    if (!this.#policy || token === "") return;
    await updateState(this.#home, LOCKOUT_FILE, (state) => {
      const s = subjectOf(state, subject);
      const i = s.failures.lastIndexOf(token);
      if (i < 0) return { write: false, result: undefined };
      s.failures.splice(i, 1);
      state[subject] = s;
      return { write: true, result: undefined };
    }, NO_SYNC);
  }

  /**
   * Clears a subject's failures after a success.
   *
   * @param subject The subject.
   */
  async succeeded(subject: string): Promise<void> {
    if (!this.#policy) return;
    await updateState(this.#home, LOCKOUT_FILE, (state) => {
      const s = subjectOf(state, subject);
      if (s.failures.length === 0) return { write: false, result: undefined };
      if (s.lockedUntil) state[subject] = { failures: [], lockedUntil: s.lockedUntil };
      else delete state[subject];
      return { write: true, result: undefined };
    }, NO_SYNC);
  }
}

function recent(failures: string[], now: Date, policy: LockoutPolicy): string[] {
  const since = now.getTime() - policy.windowMs;
  return failures.filter((t) => Date.parse(t) > since);
}

/** A refused attempt: `locked_out`, with when it ends and whether this attempt started it. */
export class LockedOut extends HecateError {
  /** When the lockout ends, ISO 8601. */
  readonly until: string;
  /** Whether this attempt was the one that started the lockout. */
  readonly started: boolean;

  /**
   * @param until When it ends.
   * @param started Whether this attempt started it.
   */
  constructor(until: string, started: boolean) {
    super("locked_out", `Too many failed attempts: locked until ${until}`, {
      hint: "wait until then; the failures are in the audit trail ('hecate audit show')",
    });
    this.until = until;
    this.started = started;
  }
}
