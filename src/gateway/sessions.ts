/**
 * The gateway's cache of opened API-key sessions: the vault opened with a key (its scope, its
 * checks) and that key's pools, kept for a short time so a request does not pay an unlock, a
 * vault read and a new database connection. What keeps it safe (docs/SECURITY.md, "HTTP
 * gateway"):
 *
 * - Entries are found by a salted SHA-256 of the key text (a salt drawn per process): the key
 *   text is never a map key and is not kept.
 * - Any change of the vault file (inode, size, mtime or ctime, one `stat` per request) drops every
 *   entry before the request is served, so a revoked key, a removed profile or a rolled-back file
 *   is seen by the next request through a fresh, audited unlock.
 * - An entry lives at most `ttlMs` from its unlock and is never used past its key's expiry; at most
 *   `max` entries are kept (the least recently used goes first).
 * - A dropped entry's pools and vault close once its requests in flight are done; `close()` closes
 *   all of them and wipes the keys they hold.
 *
 * @module
 */

import type { ConnectionPool } from "../api/pool.ts";
import type { Vault } from "../hecate.ts";
import type { ScopedVault } from "../vault/scoped.ts";
import type { UnlockedVault } from "../vault/vault.ts";
import type { ApiKeyPolicy } from "../vault/apikey.ts";
import { sha256 } from "../sha256.ts";
import { randomBytes } from "../vault/primitives.ts";
import { toBase64Url } from "../vault/encoding.ts";
import { VAULT_FILE } from "../vault/store.ts";

/** Default longest life of a session, from its unlock. */
export const SESSION_TTL_MS = 30_000;
/** Default number of sessions kept. */
export const SESSION_MAX = 64;
/** Connections per pool (per key and profile). */
export const POOL_MAX = 8;

/** Opens the vault with an API key (the gateway's audited unlock). */
export type OpenWithKey = (
  apiKey: string,
) => Promise<{ vault: Vault; state: UnlockedVault | ScopedVault }>;

/** One opened key: what requests with that key share. */
export interface KeySession {
  /** The vault opened with the key. */
  readonly vault: Vault;
  /** The key id (base64url slot id). */
  readonly keyId: string;
  /** The key's sealed checks; undefined for keys made before them. */
  readonly policy: ApiKeyPolicy | undefined;
  /** The pool of `profile` for this key, made on first use. */
  pool(profile: string): Promise<ConnectionPool>;
}

/** Options for {@link KeySessions}. */
export interface KeySessionsOptions {
  /** The home (its vault file is watched). */
  home: string;
  /** The audited unlock. */
  open: OpenWithKey;
  /** Longest life of a session. @default {SESSION_TTL_MS} */
  ttlMs?: number;
  /** Sessions kept at most. @default {SESSION_MAX} */
  max?: number;
  /** Clock. @default {Date.now} */
  now?: () => number;
  /**
   * How the pools' statements are recorded (see `ConnectOptions.auditStatements`): `true`, each
   * record on disk before the response ends; `"deferred"`, written behind in group writes.
   * @default {true}
   */
  auditStatements?: true | "deferred" | undefined;
}

class Entry implements KeySession {
  readonly pools = new Map<string, Promise<ConnectionPool>>();
  users = 0;
  dropped = false;
  constructor(
    readonly vault: Vault,
    readonly keyId: string,
    readonly policy: ApiKeyPolicy | undefined,
    readonly until: number,
    readonly audit: true | "deferred",
  ) {}

  pool(profile: string): Promise<ConnectionPool> {
    let p = this.pools.get(profile);
    if (!p) {
      p = this.vault.pool(profile, { max: POOL_MAX, auditStatements: this.audit });
      this.pools.set(profile, p);
      p.catch(() => this.pools.delete(profile));
    }
    return p;
  }

  /** Closes the pools and the vault (which wipes what it can). */
  async close(): Promise<void> {
    for (const p of this.pools.values()) {
      const pool = await p.catch(() => undefined);
      await pool?.close().catch(() => {});
    }
    this.pools.clear();
    await this.vault.close().catch(() => {});
  }
}

/** What identifies the vault file's content: a write replaces it or changes these. */
function fileStamp(path: string): string {
  try {
    // One stat system call, on this thread: cheaper than a trip through the worker pool, and
    // unlike a watcher's event it cannot arrive after the request it should have stopped.
    const s = Deno.statSync(path);
    return `${s.ino}:${s.size}:${s.mtime?.getTime()}:${s.ctime?.getTime()}`;
  } catch {
    return "missing";
  }
}

/** The sessions of one gateway. */
export class KeySessions {
  readonly #path: string;
  readonly #open: OpenWithKey;
  readonly #ttl: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #audit: true | "deferred";
  readonly #salt = randomBytes(32);
  /** By salted hash of the key text; Map order is recency (a hit moves its entry to the end). */
  readonly #entries = new Map<string, Entry>();
  /** Unlocks under way, so concurrent first requests of one key share one unlock. */
  readonly #opening = new Map<string, Promise<Entry>>();
  readonly #owner = new WeakMap<KeySession, Entry>();
  /** Entries dropped while in use: closed when their last request ends. */
  readonly #draining = new Set<Entry>();
  #stamp: string | undefined;
  #closed = false;

  /** @param options Home, unlock, limits, clock. */
  constructor(options: KeySessionsOptions) {
    this.#path = `${options.home}/${VAULT_FILE}`;
    this.#open = options.open;
    this.#ttl = options.ttlMs ?? SESSION_TTL_MS;
    this.#max = options.max ?? SESSION_MAX;
    this.#now = options.now ?? Date.now;
    this.#audit = options.auditStatements ?? true;
  }

  /** Sessions kept now (for tests). */
  get size(): number {
    return this.#entries.size;
  }

  #hash(apiKey: string): string {
    const text = new TextEncoder().encode(apiKey);
    const buf = new Uint8Array(this.#salt.length + text.length);
    buf.set(this.#salt);
    buf.set(text, this.#salt.length);
    const h = toBase64Url(sha256(buf));
    buf.fill(0);
    text.fill(0);
    return h;
  }

  /**
   * The session of `apiKey`, unlocking with it when none is kept (or the vault file changed, the
   * session is too old, or its key expired). Give it back with {@link KeySessions.release}.
   *
   * @param apiKey The key text from the request.
   * @returns The session.
   * @throws {HecateError} The unlock's errors (`auth_failed`, `key_revoked`, `key_expired`, ...).
   */
  async acquire(apiKey: string): Promise<KeySession> {
    if (this.#closed) throw new Error("The gateway is stopping");
    const stamp = fileStamp(this.#path);
    if (stamp !== this.#stamp) {
      // Before anything is served: a revocation or any other write drops every session.
      this.dropAll();
      this.#stamp = stamp;
    }
    const id = this.#hash(apiKey);
    const now = this.#now();
    let entry = this.#entries.get(id);
    if (entry && now >= entry.until) {
      this.#drop(id, entry);
      entry = undefined;
    }
    if (entry) {
      this.#entries.delete(id);
      this.#entries.set(id, entry); // most recent last
    } else {
      let opening = this.#opening.get(id);
      if (!opening) {
        opening = this.#unlock(apiKey, id, stamp);
        this.#opening.set(id, opening);
        opening.finally(() => this.#opening.delete(id)).catch(() => {});
      }
      entry = await opening;
    }
    entry.users++;
    const session: KeySession = entry;
    this.#owner.set(session, entry);
    return session;
  }

  async #unlock(apiKey: string, id: string, stamp: string): Promise<Entry> {
    const { vault, state } = await this.#open(apiKey);
    const scoped = "keyId" in state ? state : undefined;
    const expires = scoped?.expires ? Date.parse(scoped.expires) : Infinity;
    const entry = new Entry(
      vault,
      vault.actor.id ?? "",
      scoped?.policy,
      Math.min(this.#now() + this.#ttl, expires),
      this.#audit,
    );
    // The file changed during the unlock, or the gateway stopped: serve this request, keep nothing.
    if (this.#closed || stamp !== this.#stamp) {
      entry.dropped = true;
      this.#draining.add(entry);
      return entry;
    }
    this.#entries.set(id, entry);
    while (this.#entries.size > this.#max) {
      const [oldest, e] = this.#entries.entries().next().value!;
      this.#drop(oldest, e);
    }
    return entry;
  }

  /**
   * Gives a session back after its request (the response body included) is done.
   *
   * @param session What {@link KeySessions.acquire} returned.
   */
  release(session: KeySession): void {
    const entry = this.#owner.get(session);
    if (!entry) return;
    entry.users--;
    if (entry.dropped && entry.users <= 0 && this.#draining.delete(entry)) void entry.close();
  }

  #drop(id: string, entry: Entry): void {
    this.#entries.delete(id);
    entry.dropped = true;
    if (entry.users > 0) this.#draining.add(entry);
    else void entry.close();
  }

  /** Drops every session (each closes once its requests are done). */
  dropAll(): void {
    for (const [id, e] of [...this.#entries]) this.#drop(id, e);
  }

  /** Closes every session now (pools wait for borrowed connections) and wipes their keys. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#opening.values()]);
    const all = [...this.#entries.values(), ...this.#draining];
    this.#entries.clear();
    this.#draining.clear();
    await Promise.all(all.map((e) => e.close()));
  }
}
