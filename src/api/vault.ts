/**
 * An unlocked vault: profiles and connections.
 *
 * @module
 */

import type { AuditSink } from "../audit/log.ts";
import type { Engine } from "../db/driver.ts";
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
import { type Endpoint, openDbConnection, openEndpoint } from "../connect.ts";
import { connectionEnv, type EnvMapping } from "../run/env.ts";
import { spawnWithEnv } from "../run/spawn.ts";
import {
  createBackup,
  type CreatedBackup,
  KEEP_META_KEY,
  type Progress,
  retentionOf,
} from "../backup/backup.ts";
import { Connection, tlsWarnings } from "./connection.ts";
import { type BreakerOptions, CircuitBreaker } from "../db/breaker.ts";
import type { PoolOptions } from "../db/pool.ts";
import { ConnectionPool } from "./pool.ts";
import { reasonOf, stripUndefined } from "./util.ts";

/**
 * A profile as listed: no secrets at all.
 *
 * @example
 * ```ts ignore
 * for (const p of vault.profiles()) console.log(p.name, p.engine, p.host);
 * ```
 */
export interface ProfileSummary {
  /** Profile name. */
  name: string;
  /** Database engine. */
  engine: Engine;
  /** Server host. */
  host?: string;
  /** Server port. */
  port?: number;
  /** Database name (SQLite: the file path). */
  database?: string;
  /** Login name. */
  user?: string;
  /** Authentication method. */
  auth: string;
  /** Tags. */
  tags?: string[];
}

/**
 * What `addProfile` takes.
 *
 * @example
 * ```ts ignore
 * await vault.addProfile({
 *   name: "billing",
 *   engine: "postgres",
 *   host: "db1.internal",
 *   user: "app",
 *   secrets: { password: { ref: "env:BILLING_PW" } },
 * });
 * ```
 */
export interface ProfileInput {
  /** Profile name: 1-64 letters, digits, `.`, `_`, `-`. */
  name: string;
  /** Database engine. */
  engine: Engine;
  /** Server host. */
  host?: string | undefined;
  /** Server port. @default {the engine's default port} */
  port?: number | undefined;
  /** Database name (SQLite: the file path). */
  database?: string | undefined;
  /** Login name. */
  user?: string | undefined;
  /** Authentication method. @default {"sql", or "none" for SQLite} */
  auth?: string | undefined;
  /** Method-specific non-secret fields. */
  params?: Record<string, string> | undefined;
  /** TLS settings. @default {{ mode: "verify" }} */
  tls?: TlsProfile | undefined;
  /** Connect and login timeout in milliseconds. @default {15000} */
  connectTimeoutMs?: number | undefined;
  /** Tags. */
  tags?: string[] | undefined;
  /** Secret fields by name (e.g. `password`), values or references. */
  secrets?: Record<string, SecretValue>;
}

/**
 * Changes for `editProfile`: fields to set; `null` removes an optional field or a secret.
 *
 * @example
 * ```ts ignore
 * await vault.editProfile("billing", { port: 6432, tags: null, rename: "billing-ro" });
 * ```
 */
export interface ProfileChanges {
  /** New host; `null` removes it. */
  host?: string | null;
  /** New port; `null` removes it. */
  port?: number | null;
  /** New database; `null` removes it. */
  database?: string | null;
  /** New login name; `null` removes it. */
  user?: string | null;
  /** New authentication method. */
  auth?: string;
  /** Method-specific fields to set; `null` removes one. */
  params?: Record<string, string | null>;
  /** New TLS settings. */
  tls?: TlsProfile;
  /** New connect timeout; `null` removes it. */
  connectTimeoutMs?: number | null;
  /** New tags; `null` removes them. */
  tags?: string[] | null;
  /** Secrets to set; `null` removes one. */
  secrets?: Record<string, SecretValue | null>;
  /** A new name for the profile. */
  rename?: string;
}

/**
 * Options for {@link Vault.connect}.
 *
 * @example
 * ```ts ignore
 * await using db = await vault.connect("billing", { auditStatements: false });
 * ```
 */
export interface ConnectOptions {
  /**
   * Record every statement in the audit trail (SQL hash, rows, duration, outcome). With `false`
   * only opening the profile is recorded: each audit line is flushed to disk, which bounds a busy
   * pool's throughput (see docs/PERFORMANCE.md). @default {true}
   */
  auditStatements?: boolean;
}

/**
 * Options for {@link Vault.pool}.
 *
 * @example
 * ```ts ignore
 * await using pool = await vault.pool("billing", {
 *   max: 4,
 *   retry: { attempts: 5 },
 *   breaker: { failureThreshold: 3, coolDownMs: 5000 },
 * });
 * ```
 */
export interface VaultPoolOptions extends PoolOptions, ConnectOptions {
  /** Settings for the profile's circuit breaker (shared by the vault's pools of the profile). */
  breaker?: BreakerOptions;
}

/**
 * An unlocked vault.
 *
 * @example
 * ```ts ignore
 * await using vault = await openVault({ password });
 * console.log(vault.profiles());
 * const rows = await vault.query("billing", "select now() as t");
 * ```
 */
export class Vault {
  /** The home directory. */
  readonly home: string;
  readonly #store: VaultStore;
  #state: UnlockedVault;
  readonly #audit: AuditSink;
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #pools = new Set<ConnectionPool>();

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
      this.#find(name);
      await this.autoBackup("profile-remove");
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
   * @param options Whether statements are audited.
   * @returns A live connection; close it when done (`await using` works).
   */
  async connect(name: string, options: ConnectOptions = {}): Promise<Connection> {
    const { profile } = this.#find(name);
    const actor = { kind: "password" as const };
    await this.#audit.append({ event: "profile.read", actor, profile: name, outcome: "ok" });
    try {
      const conn = await openDbConnection(profile);
      return new Connection(
        name,
        profile.engine,
        conn,
        this.#audit,
        tlsWarnings(profile),
        options.auditStatements ?? true,
      );
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

  /**
   * The circuit breaker of a profile, shared by every pool of this vault for that profile. The
   * first call creates it; settings given in `options` are applied (the state is kept).
   *
   * @param name Profile name.
   * @param options Threshold and cool-down to set.
   * @returns The breaker; read `state` to see whether calls are let through.
   */
  breaker(name: string, options: BreakerOptions = {}): CircuitBreaker {
    let b = this.#breakers.get(name);
    if (!b) {
      b = new CircuitBreaker(name, options);
      this.#breakers.set(name, b);
    } else {
      b.configure(options);
    }
    return b;
  }

  /**
   * Opens a pool of connections for a profile. Every connection it opens goes through
   * {@link Vault.connect} (audited like any other), and every statement is audited.
   *
   * @param name Profile name.
   * @param options Limits, timeouts, retry policy and the breaker's settings.
   * @returns The pool, with `min` connections open; close it when done (`await using` works).
   * @throws {HecateError} `profile_not_found`, `usage` for bad limits, or the connect error.
   *
   * @example A pool with limits
   * ```ts ignore
   * await using pool = await vault.pool("billing", { max: 4, acquireTimeoutMs: 2000 });
   * const rows = await pool.query("select count(*) as n from invoices").toArray();
   * ```
   */
  async pool(name: string, options: VaultPoolOptions = {}): Promise<ConnectionPool> {
    this.#find(name);
    const { breaker, auditStatements, ...poolOptions } = options;
    const pool: ConnectionPool = new ConnectionPool(
      name,
      () => this.connect(name, { auditStatements: auditStatements ?? true }),
      poolOptions,
      this.breaker(name, breaker),
      () => this.#pools.delete(pool),
    );
    this.#pools.add(pool);
    try {
      await pool.fill();
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Closes every pool opened through this vault (each waits for its borrowed connections). */
  async close(): Promise<void> {
    await Promise.all([...this.#pools].map((p) => p.close()));
  }

  /** Same as {@link Vault.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Resolves a profile into settings for another program: secret references resolved, provider
   * credentials filled in, and (where the profile needs one) a tunnel opened that stays up until
   * `close()`. Audited as `profile.read` before anything is released.
   *
   * @param name Profile name.
   * @returns The endpoint; close it when done.
   */
  async endpoint(name: string): Promise<Endpoint> {
    const { profile } = this.#find(name);
    await this.#audit.append({
      event: "profile.read",
      actor: { kind: "password" },
      profile: name,
      outcome: "ok",
    });
    return await openEndpoint(profile);
  }

  /**
   * The environment variables `hecate run` gives a program for a profile (see
   * `connectionEnv` in src/run/env.ts for the list). Audited as `env`.
   *
   * @param name Profile name.
   * @param mappings Extra `NAME=field` variables.
   * @returns Variables by name, secrets in clear: handle with care.
   */
  async environment(
    name: string,
    mappings: readonly EnvMapping[] = [],
  ): Promise<Record<string, string>> {
    const endpoint = await this.endpoint(name);
    try {
      const env = connectionEnv(name, endpoint.settings, mappings);
      await this.#audit.append({
        event: "env",
        actor: { kind: "password" },
        profile: name,
        outcome: "ok",
      });
      return env;
    } finally {
      await endpoint.close();
    }
  }

  /**
   * Runs a program with a profile's connection in its environment (PGHOST, PGPASSWORD,
   * DATABASE_URL, HECATE_* and so on) and waits for it; the endpoint (and any tunnel) stays open
   * while it runs. Nothing is written to disk. Audited as `run` with the program's name and exit
   * code, never its arguments or environment.
   *
   * @param name Profile name.
   * @param command The program (looked up on PATH).
   * @param args Its arguments.
   * @param options Extra `NAME=field` variables.
   * @returns The program's exit code (128 + N when signal N ended it).
   *
   * @example Run psql with the profile's credentials
   * ```ts ignore
   * const code = await vault.run("billing", "psql", ["-c", "select 1"]);
   * ```
   */
  async run(
    name: string,
    command: string,
    args: readonly string[] = [],
    options: { env?: readonly EnvMapping[] } = {},
  ): Promise<number> {
    const endpoint = await this.endpoint(name);
    let code: number | undefined;
    let failure: unknown;
    try {
      const env = connectionEnv(name, endpoint.settings, options.env ?? []);
      code = await spawnWithEnv(command, args, env);
      return code;
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      await endpoint.close();
      const record = this.#audit.append({
        event: "run",
        actor: { kind: "password" },
        profile: name,
        outcome: code === 0 ? "ok" : "fail",
        ...(failure !== undefined ? { reason: reasonOf(failure) } : {}),
        command,
        ...(code !== undefined ? { exitCode: code } : {}),
      });
      // The program's own failure is the one to report.
      if (failure === undefined) await record;
      else await record.catch(() => {});
    }
  }

  /**
   * Writes an encrypted, authenticated bundle of the vault file and the audit trail (by default
   * to `HOME/backups/`). It opens with the master password the vault has now. Audited as
   * `backup.create`.
   *
   * @param options Output file and progress reports.
   * @returns Where it was written, its size and manifest.
   *
   * @example
   * ```ts ignore
   * const { path } = await vault.backup({ output: "/mnt/usb/hecate.hecate-backup" });
   * ```
   */
  async backup(
    options: {
      output?: string | undefined;
      progress?: Progress | undefined;
      reason?: "manual" | "export";
    } = {},
  ): Promise<CreatedBackup> {
    let made: CreatedBackup | undefined;
    await this.#audited("backup.create", undefined, async () => {
      made = await createBackup(this.home, this.#state, {
        reason: options.reason ?? "manual",
        output: options.output,
        progress: options.progress,
      });
    });
    return made!;
  }

  /**
   * Writes an automatic bundle before a destructive operation; only the newest
   * {@link Vault.backupRetention} automatic bundles are kept. Called before removing a profile,
   * restoring and importing; other destructive operations (e.g. key rotation) call it too.
   *
   * @param reason The operation, e.g. `rotate` (lower case letters, digits and `-`).
   * @returns The bundle written.
   */
  async autoBackup(reason: string): Promise<CreatedBackup> {
    if (!/^[a-z0-9-]{1,40}$/.test(reason)) {
      throw new HecateError("internal", "A backup reason is lower case letters, digits and '-'");
    }
    let made: CreatedBackup | undefined;
    await this.#audited("backup.create", undefined, async () => {
      made = await createBackup(this.home, this.#state, { reason, automatic: true });
    });
    return made!;
  }

  /** How many automatic bundles are kept (vault setting; default 10). */
  get backupRetention(): number {
    return retentionOf(this.#state);
  }

  /**
   * Sets how many automatic bundles are kept.
   *
   * @param keep At least 1.
   */
  async setBackupRetention(keep: number): Promise<void> {
    if (!Number.isSafeInteger(keep) || keep < 1) {
      throw new HecateError("usage", "The number of backups to keep must be at least 1");
    }
    await this.#audited("backup.retention", undefined, async () => {
      await this.#mutate((state) => {
        state.meta = { ...state.meta, [KEEP_META_KEY]: keep };
      });
    });
  }
}
