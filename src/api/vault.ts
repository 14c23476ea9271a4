/**
 * An unlocked vault: profiles and connections.
 *
 * @module
 */

import type { AuditSink } from "../audit/log.ts";
import { chainKeyOf } from "../audit/meta.ts";
import { HecateError } from "../errors.ts";
import { MIN_KDF_ITERATIONS } from "../kdf.ts";
import {
  maskedProfile,
  type Profile,
  profileFromRecord,
  type SecretValue,
  type TlsProfile,
  validateName,
  validateProfile,
} from "../profile.ts";
import { providerFor } from "../../providers/mod.ts";
import type { VaultStore } from "../vault/store.ts";
import type { UnlockedVault } from "../vault/vault.ts";
import { openDbConnection } from "../connect.ts";
import { Connection, tlsWarnings } from "./connection.ts";
import { reasonOf, stripUndefined } from "./util.ts";

/** A profile as listed: no secrets at all. */
export interface ProfileSummary {
  name: string;
  engine: Profile["engine"];
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  auth: string;
  tags?: string[];
}

/** What `addProfile` takes. */
export interface ProfileInput {
  name: string;
  engine: Profile["engine"];
  host?: string | undefined;
  port?: number | undefined;
  database?: string | undefined;
  user?: string | undefined;
  /** @default {"sql", or "none" for SQLite} */
  auth?: string | undefined;
  /** Method-specific non-secret fields. */
  params?: Record<string, string> | undefined;
  /** @default {{ mode: "verify" }} */
  tls?: TlsProfile | undefined;
  connectTimeoutMs?: number | undefined;
  tags?: string[] | undefined;
  secrets?: Record<string, SecretValue>;
}

/** Changes for `editProfile`: fields to set; `null` removes an optional field or a secret. */
export interface ProfileChanges {
  host?: string | null;
  port?: number | null;
  database?: string | null;
  user?: string | null;
  auth?: string;
  /** Method-specific fields to set; `null` removes one. */
  params?: Record<string, string | null>;
  tls?: TlsProfile;
  connectTimeoutMs?: number | null;
  tags?: string[] | null;
  secrets?: Record<string, SecretValue | null>;
  rename?: string;
}

/** An unlocked vault. */
export class Vault {
  /** The home directory. */
  readonly home: string;
  readonly #store: VaultStore;
  #state: UnlockedVault;
  readonly #audit: AuditSink;

  /** @internal Use {@link openVault}. */
  constructor(home: string, store: VaultStore, state: UnlockedVault, audit: AuditSink) {
    this.home = home;
    this.#store = store;
    this.#state = state;
    this.#audit = audit;
  }

  /** The vault id. */
  get id(): string {
    return this.#state.id;
  }

  /** How many times the vault file has been written. */
  get generation(): number {
    return this.#state.generation;
  }

  /**
   * The audit chain's first key A0 (from the encrypted meta), for `audit verify` and export.
   *
   * @returns A0, or undefined for a vault without a chain.
   */
  auditChainKey(): Uint8Array | undefined {
    return chainKeyOf(this.#state.meta);
  }

  /** PBKDF2 iterations of the password slot. */
  get kdfIterations(): number {
    return this.#state.passwordIterations;
  }

  #all(state = this.#state): { id: string; profile: Profile }[] {
    return state.records().map((r) => ({ id: r.id, profile: profileFromRecord(r.value) }));
  }

  #find(name: string, state = this.#state): { id: string; profile: Profile } {
    const hit = this.#all(state).find((r) => r.profile.name === name);
    if (!hit) {
      throw new HecateError("profile_not_found", `No profile named "${name}"`, {
        hint: "list profiles with 'hecate server list'",
      });
    }
    return hit;
  }

  /**
   * Lists profiles without secrets, sorted by name.
   *
   * @returns Summaries.
   */
  profiles(): ProfileSummary[] {
    return this.#all().map(({ profile: p }) =>
      stripUndefined({
        name: p.name,
        engine: p.engine,
        host: p.host,
        port: p.port,
        database: p.database,
        user: p.user,
        auth: p.auth,
        tags: p.tags,
      }) as ProfileSummary
    ).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Shows one profile with secret values masked.
   *
   * @param name Profile name.
   * @returns A plain object safe to print.
   */
  showProfile(name: string): Record<string, unknown> {
    return maskedProfile(this.#find(name).profile);
  }

  /** Whether a profile of that name exists. */
  hasProfile(name: string): boolean {
    return this.#all().some((r) => r.profile.name === name);
  }

  async #mutate(fn: (state: UnlockedVault) => void | Promise<void>): Promise<void> {
    await this.#store.withLock(async () => {
      // Apply the change to the newest file, not to what this process read earlier.
      const fresh = await this.#state.reload(await this.#store.read());
      await fn(fresh);
      const { bytes, generation } = await fresh.serialize();
      await this.#store.replace(bytes, generation);
      fresh.markSaved(generation);
      this.#state = fresh;
    });
  }

  async #audited(
    event: string,
    profile: string | undefined,
    fn: () => Promise<void>,
  ): Promise<void> {
    const base = { event, actor: { kind: "password" as const }, ...(profile ? { profile } : {}) };
    try {
      await fn();
    } catch (e) {
      await this.#audit.append({ ...base, outcome: "fail", reason: reasonOf(e) }).catch(() => {});
      throw e;
    }
    await this.#audit.append({ ...base, outcome: "ok" });
  }

  /**
   * Adds a profile.
   *
   * @param input The profile's fields and secrets.
   * @throws {HecateError} `already_exists` for a taken name, `invalid_profile` for missing fields.
   */
  async addProfile(input: ProfileInput): Promise<void> {
    await this.#audited("profile.add", input.name, async () => {
      const now = new Date().toISOString();
      const profile = stripUndefined({
        name: input.name,
        engine: input.engine,
        host: input.host,
        port: input.port,
        database: input.database,
        user: input.user,
        auth: input.auth ?? (input.engine === "sqlite" ? "none" : "sql"),
        params: input.params && Object.keys(input.params).length ? input.params : undefined,
        tls: input.tls ?? { mode: "verify" },
        connectTimeoutMs: input.connectTimeoutMs,
        tags: input.tags,
        secrets: input.secrets ?? {},
        created: now,
        updated: now,
      }) as Profile;
      validateProfile(profile);
      providerFor(profile);
      await this.#mutate((state) => {
        if (this.#all(state).some((r) => r.profile.name === profile.name)) {
          throw new HecateError(
            "already_exists",
            `A profile named "${profile.name}" already exists`,
            {
              hint: "use 'hecate server edit' to change it",
            },
          );
        }
        state.putRecord(profile as unknown as Record<string, unknown>);
      });
    });
  }

  /**
   * Changes fields of a profile. Secrets given replace stored ones; `null` removes a field.
   *
   * @param name Profile name.
   * @param changes What to change.
   */
  async editProfile(name: string, changes: ProfileChanges): Promise<void> {
    await this.#audited("profile.edit", name, async () => {
      if (changes.rename !== undefined) validateName(changes.rename);
      await this.#mutate((state) => {
        const { id, profile } = this.#find(name, state);
        const next: Record<string, unknown> = { ...profile };
        for (
          const key of ["host", "port", "database", "user", "connectTimeoutMs", "tags"] as const
        ) {
          if (changes[key] === null) delete next[key];
          else if (changes[key] !== undefined) next[key] = changes[key];
        }
        if (changes.auth !== undefined) next.auth = changes.auth;
        if (changes.params !== undefined) {
          const params: Record<string, string> = { ...(profile.params ?? {}) };
          for (const [k, v] of Object.entries(changes.params)) {
            if (v === null) delete params[k];
            else params[k] = v;
          }
          if (Object.keys(params).length) next.params = params;
          else delete next.params;
        }
        if (changes.tls !== undefined) next.tls = changes.tls;
        const secrets = { ...profile.secrets };
        for (const [k, v] of Object.entries(changes.secrets ?? {})) {
          if (v === null) delete secrets[k];
          else secrets[k] = v;
        }
        next.secrets = secrets;
        if (changes.rename !== undefined && changes.rename !== name) {
          if (this.#all(state).some((r) => r.profile.name === changes.rename)) {
            throw new HecateError(
              "already_exists",
              `A profile named "${changes.rename}" already exists`,
            );
          }
          next.name = changes.rename;
        }
        next.updated = new Date().toISOString();
        const p = next as unknown as Profile;
        validateProfile(p);
        providerFor(p);
        state.putRecord(next, id);
      });
    });
  }

  /**
   * Removes a profile.
   *
   * @param name Profile name.
   */
  async removeProfile(name: string): Promise<void> {
    await this.#audited("profile.remove", name, async () => {
      await this.#mutate((state) => {
        state.deleteRecord(this.#find(name, state).id);
      });
    });
  }

  /**
   * Changes the master password: the root key is re-wrapped; records are untouched.
   *
   * @param password The new password.
   * @param options KDF cost for the new slot.
   */
  async changePassword(password: string, options: { kdfIterations?: number } = {}): Promise<void> {
    await this.#audited("password.change", undefined, async () => {
      const iterations = options.kdfIterations ?? Math.max(this.kdfIterations, MIN_KDF_ITERATIONS);
      if (iterations < MIN_KDF_ITERATIONS) {
        throw new HecateError("usage", `KDF iterations must be at least ${MIN_KDF_ITERATIONS}`);
      }
      await this.#mutate((state) => state.setPassword(password, iterations));
    });
  }

  /**
   * Opens a connection with a profile. Reading the profile's secrets is audited first: if that
   * record cannot be written, nothing is released.
   *
   * @param name Profile name.
   * @returns A live connection; close it when done (`await using` works).
   */
  async connect(name: string): Promise<Connection> {
    const { profile } = this.#find(name);
    const actor = { kind: "password" as const };
    await this.#audit.append({ event: "profile.read", actor, profile: name, outcome: "ok" });
    try {
      const conn = await openDbConnection(profile);
      return new Connection(name, profile.engine, conn, this.#audit, tlsWarnings(profile));
    } catch (e) {
      await this.#audit.append({
        event: "connect",
        actor,
        profile: name,
        outcome: "fail",
        reason: reasonOf(e),
      }).catch(() => {});
      throw e;
    }
  }

  /**
   * Runs one statement on a fresh connection and collects the first result set's rows as objects.
   * For large results use {@link Vault.connect} and stream instead.
   *
   * @param name Profile name.
   * @param sql The statement.
   * @param params Positional parameters.
   * @returns Rows keyed by column name.
   */
  async query(
    name: string,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<Record<string, unknown>[]> {
    const conn = await this.connect(name);
    try {
      const out: Record<string, unknown>[] = [];
      for await (const row of conn.query(sql, params)) out.push(row);
      return out;
    } finally {
      await conn.close();
    }
  }
}
