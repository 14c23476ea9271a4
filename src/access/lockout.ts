/**
 * Lockout after repeated failures, counted across processes in `lockout.state.json` in the home.
 *
 * Subjects: `password` (master password and vault TOTP failures) and `apikey:<id>` (one per API
 * key id, including ids that match no key). Credential checks run one at a time per home (see
 * {@link Lockout.guard}); once `max` of them failed within `window`, the subject is refused for
 * `lock` (default: the window) with a message saying until when. A complete success clears the
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
   * Refuses early (before asking anyone for a code) when the subject is locked out. Read-only;
   * {@link guard} checks again under its lock.
   *
   * @param subject The subject.
   * @throws {LockedOut} When locked out.
   */
  async check(subject: string): Promise<void> {
    if (!this.#policy) return;
    const s = subjectOf(await readState(this.#home, LOCKOUT_FILE), subject);
    if (s.lockedUntil && Date.parse(s.lockedUntil) > this.#now().getTime()) {
      throw new LockedOut(s.lockedUntil);
    }
  }

  /**
   * Runs one credential check under the home's attempt lock: refuses it when the subject is
   * locked out, and counts it when `isFailure` says the credential was wrong (starting a lockout
   * at `max` failures in the window). Checks are serialised across processes (each takes a few
   * milliseconds for an API key, one PBKDF2 for a password), so parallel guesses cannot all pass
   * the check before any is counted, while parallel correct attempts all go through. Do not
   * prompt inside `fn`: the lock is held while it runs.
   *
   * @param subject `password` or `apikey:<id>`.
   * @param fn The credential check.
   * @param isFailure Whether an error from `fn` means a wrong credential (counted).
   * @param onFailure Told of each counted failure, and of the lockout end if it started one.
   * @returns What `fn` returned.
   * @throws {LockedOut} When the subject is locked out; else what `fn` throws.
   */
  async guard<T>(
    subject: string,
    fn: () => Promise<T>,
    isFailure: (e: unknown) => boolean,
    onFailure: (e: unknown, lockedUntil: Date | undefined) => Promise<void>,
  ): Promise<T> {
    const policy = this.#policy;
    if (!policy) {
      try {
        return await fn();
      } catch (e) {
        if (isFailure(e)) await onFailure(e, undefined);
        throw e;
      }
    }
    const lock = await Deno.open(`${this.#home}/${LOCKOUT_FILE}.attempt.lock`, {
      create: true,
      write: true,
      mode: 0o600,
    });
    try {
      await lock.lock(true);
      const s = subjectOf(await readState(this.#home, LOCKOUT_FILE), subject);
      if (s.lockedUntil && Date.parse(s.lockedUntil) > this.#now().getTime()) {
        throw new LockedOut(s.lockedUntil);
      }
      try {
        return await fn();
      } catch (e) {
        if (isFailure(e)) await onFailure(e, await this.#count(subject, policy));
        throw e;
      }
    } finally {
      lock.close();
    }
  }

  async #count(subject: string, policy: LockoutPolicy): Promise<Date | undefined> {
    const now = this.#now();
    return await updateState(this.#home, LOCKOUT_FILE, (state) => {
      const s = subjectOf(state, subject);
      const since = now.getTime() - policy.windowMs;
      const failures = [...s.failures.filter((t) => Date.parse(t) > since), now.toISOString()];
      if (failures.length < policy.max) {
        state[subject] = { failures };
        return { write: true, result: undefined };
      }
      const until = new Date(now.getTime() + policy.lockMs);
      // A new count starts when the lockout ends.
      state[subject] = { failures: [], lockedUntil: until.toISOString() };
      return { write: true, result: until };
    }, NO_SYNC);
  }

  /**
   * Clears a subject's failures after a complete success (credential and any second factor).
   * Writes only when there is something to clear, so the common path costs one read.
   *
   * @param subject The subject.
   */
  async succeeded(subject: string): Promise<void> {
    if (!this.#policy) return;
    const s = subjectOf(await readState(this.#home, LOCKOUT_FILE), subject);
    if (s.failures.length === 0) return;
    await updateState(this.#home, LOCKOUT_FILE, (state) => {
      const cur = subjectOf(state, subject);
      if (cur.lockedUntil) state[subject] = { failures: [], lockedUntil: cur.lockedUntil };
      else delete state[subject];
      return { write: true, result: undefined };
    }, NO_SYNC);
  }
}

/** A refused attempt: `locked_out`, saying when the lockout ends. */
export class LockedOut extends HecateError {
  /** When the lockout ends, ISO 8601. */
  readonly until: string;

  /** @param until When it ends. */
  constructor(until: string) {
    super("locked_out", `Too many failed attempts: locked until ${until}`, {
      hint: "wait until then; the failures are in the audit trail ('hecate audit show')",
    });
    this.until = until;
  }
}
