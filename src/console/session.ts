/**
 * Console sessions: the one-time login token, the sessions it starts, their idle and absolute
 * limits, and each one's CSRF token. A session holds the open vault while it lives; ending it
 * (lock, limit, shutdown) closes the vault and drops every reference to it.
 *
 * @module
 */

import { withinCeiling } from "../policy/overrides.ts";
import type { Vault } from "../hecate.ts";
import { toBase64Url } from "../vault/encoding.ts";
import { randomBytes } from "../vault/primitives.ts";

/** Limits of a session. */
export interface SessionLimits {
  /** Ends after this long without a request. */
  idleMs: number;
  /** Ends this long after login whatever happens. */
  absoluteMs: number;
  /** How long a login page (token spent, not yet unlocked) stays usable. */
  loginMs: number;
}

/** Default limits: 15 minutes idle, 8 hours absolute, 10 minutes to log in. */
export const DEFAULT_LIMITS: SessionLimits = {
  idleMs: 15 * 60_000,
  absoluteMs: 8 * 3600_000,
  loginMs: 10 * 60_000,
};

/** One browser's session. */
export interface Session {
  /** Cookie value (secret). */
  readonly id: string;
  /** Short id for the audit trail (not the cookie). */
  readonly auditId: string;
  /** CSRF token sent in forms and the X-CSRF-Token header. */
  readonly csrf: string;
  readonly created: number;
  lastSeen: number;
  /** The open vault once unlocked. */
  vault: Vault | undefined;
  /** Things shown once on the next page (a new API key, recovery codes, results). */
  flash: Flash[];
  /** Data kept between two steps (a TOTP setup in progress). */
  pending: Record<string, unknown>;
}

/** A message shown once. */
export interface Flash {
  kind: "ok" | "error" | "secret" | "codes";
  text: string;
  /** Lines shown in a copyable box (the key, recovery codes). */
  lines?: string[];
}

function token(): string {
  return toBase64Url(randomBytes(32));
}

/** Why a session ended. */
export type EndReason = "lock" | "idle" | "limit" | "stop" | "restore";

/** Told when a session begins or ends (for the audit trail). */
export type SessionListener = (
  state: "begin" | "end",
  s: Session,
  why?: EndReason,
) => Promise<void>;

/** Constant-time comparison of two strings. */
export function sameToken(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** The sessions of one console server. */
export class SessionStore {
  #loginToken: string | undefined = token();
  readonly #sessions = new Map<string, Session>();

  /**
   * @param limits Idle, absolute and login limits.
   * @param now Clock.
   */
  constructor(
    readonly limits: SessionLimits,
    readonly now: () => number = Date.now,
    readonly onChange: SessionListener = () => Promise.resolve(),
  ) {}

  /** The one-time login token (undefined once spent). */
  get loginToken(): string | undefined {
    return this.#loginToken;
  }

  /**
   * Spends the login token: right once, then never again.
   *
   * @param given The token from the URL.
   * @returns A new, locked session, or undefined for a wrong or spent token.
   */
  spendLoginToken(given: string): Session | undefined {
    const t = this.#loginToken;
    if (t === undefined || !sameToken(t, given)) return undefined;
    this.#loginToken = undefined;
    return this.#create();
  }

  /**
   * Records that a session began (after the caller stamped the request with it).
   *
   * @param s The session.
   */
  async began(s: Session): Promise<void> {
    await this.onChange("begin", s);
  }

  /** A new locked session for a browser that just locked (it may unlock again). */
  startLocked(): Session {
    return this.#create();
  }

  /** A fresh login token after a lock, printed again by the server. */
  renewLoginToken(): string {
    this.#loginToken = token();
    return this.#loginToken;
  }

  #create(): Session {
    const now = this.now();
    const s: Session = {
      id: token(),
      auditId: toBase64Url(randomBytes(6)),
      csrf: token(),
      created: now,
      lastSeen: now,
      vault: undefined,
      flash: [],
      pending: {},
    };
    this.#sessions.set(s.id, s);
    return s;
  }

  /**
   * Moves an unlocked session to a new id (no fixation: the id seen before login is dead).
   *
   * @param s The session.
   * @returns The same session under new id and CSRF token.
   */
  rotate(s: Session): Session {
    this.#sessions.delete(s.id);
    const now = this.now();
    // The absolute limit counts from the unlock.
    const next: Session = { ...s, id: token(), csrf: token(), created: now, lastSeen: now };
    this.#sessions.set(next.id, next);
    return next;
  }

  /**
   * The live session with this cookie value; an expired one is ended here.
   *
   * @param id The cookie value.
   * @returns The session, touched, or undefined.
   */
  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id) return undefined;
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    const now = this.now();
    // An unlocked session also obeys its vault's policy, which the console's flags cannot loosen.
    const policy = s.vault?.policy();
    const absolute = s.vault
      ? withinCeiling(this.limits.absoluteMs, policy!.consoleMaxSessionMs)
      : this.limits.loginMs;
    const idle = now - s.lastSeen > withinCeiling(this.limits.idleMs, policy?.consoleIdleMs ?? 0);
    if (idle || now - s.created > absolute) {
      await this.end(s, idle ? "idle" : "limit");
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  /**
   * Ends a session: closes its vault and forgets it.
   *
   * @param s The session.
   * @param why Why it ends.
   */
  async end(s: Session, why: EndReason = "lock"): Promise<void> {
    if (!this.#sessions.delete(s.id)) return;
    const v = s.vault;
    s.vault = undefined;
    s.pending = {};
    s.flash = [];
    await v?.close().catch(() => {});
    await this.onChange("end", s, why).catch(() => {});
  }

  /** Ends every session (shutdown). */
  async endAll(): Promise<void> {
    for (const s of [...this.#sessions.values()]) await this.end(s, "stop");
  }

  /** How many sessions are live (for tests). */
  get size(): number {
    return this.#sessions.size;
  }
}
