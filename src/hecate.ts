/**
 * The library core: create and open a vault, manage profiles, connect and query. The CLI is a thin
 * shell over these functions; code can call them directly.
 *
 * @module
 */

import { type AuditSink, FileAuditLog } from "./audit/log.ts";
import type { Column, DbConnection, QueryOptions, ResultSet } from "./db/driver.ts";
import { driverFor } from "./db/registry.ts";
import { HecateError } from "./errors.ts";
import { calibrateIterations, MIN_KDF_ITERATIONS } from "./kdf.ts";
import {
  maskedProfile,
  type Profile,
  profileFromRecord,
  type SecretValue,
  type TlsProfile,
  validateName,
  validateProfile,
} from "./profile.ts";
import { connectSettings, providerFor } from "../providers/mod.ts";
import { toHex, utf8 } from "./vault/encoding.ts";
import { checkHome, ensureHome, resolveHome } from "./vault/home.ts";
import { sha256 } from "./vault/primitives.ts";
import { VaultStore } from "./vault/store.ts";
import { UnlockedVault } from "./vault/vault.ts";

/** Options for {@link initVault}. */
export interface InitVaultOptions {
  /** Home directory. @default {$HECATE_HOME or ~/.hecate} */
  home?: string | undefined;
  /** The master password. */
  password: string;
  /** PBKDF2 iterations; at least 600,000. @default {calibrated to ~250 ms, at least 600,000} */
  kdfIterations?: number | undefined;
  /** Audit sink. @default {the home's audit.jsonl} */
  audit?: AuditSink;
}

/**
 * Creates a new vault in an empty home directory.
 *
 * @param options Home, password and KDF cost.
 * @returns The home directory and the iteration count used.
 * @throws {HecateError} `already_exists` if a vault is there, `usage` for a cost below the floor.
 */
export async function initVault(
  options: InitVaultOptions,
): Promise<{ home: string; kdfIterations: number }> {
  const home = resolveHome({ home: options.home });
  await ensureHome(home);
  const store = new VaultStore(home);
  const iterations = options.kdfIterations ?? await calibrateIterations();
  if (!Number.isSafeInteger(iterations) || iterations < MIN_KDF_ITERATIONS) {
    throw new HecateError("usage", `KDF iterations must be at least ${MIN_KDF_ITERATIONS}`);
  }
  const vault = await UnlockedVault.create(options.password, { iterations });
  await store.withLock(async () => {
    if (await store.exists()) {
      throw new HecateError("already_exists", `A vault already exists at "${home}"`, {
        hint: "use it, or choose another --home",
      });
    }
    const { bytes, generation } = await vault.serialize();
    await store.replace(bytes, generation);
    vault.markSaved(generation);
  });
  await (options.audit ?? new FileAuditLog(home)).append({
    event: "init",
    actor: { kind: "password" },
    outcome: "ok",
  });
  return { home, kdfIterations: iterations };
}

/** Options for {@link openVault}. */
export interface OpenVaultOptions {
  /** Home directory. @default {$HECATE_HOME or ~/.hecate} */
  home?: string | undefined;
  /** The master password. */
  password: string;
  /** Audit sink. @default {the home's audit.jsonl} */
  audit?: AuditSink;
}

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
  tls?: TlsProfile;
  connectTimeoutMs?: number | null;
  tags?: string[] | null;
  secrets?: Record<string, SecretValue | null>;
  rename?: string;
}

function sha256Hex(text: string): Promise<string> {
  return sha256(utf8(text)).then(toHex);
}

function reasonOf(e: unknown): string {
  return e instanceof HecateError ? e.code : "internal";
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined && v !== null),
  ) as T;
}

/**
 * Opens (unlocks) the vault with the master password. The unlock, success or failure, is audited.
 *
 * @param options Home, password, audit sink.
 * @returns The open vault.
 * @throws {HecateError} `vault_not_found`, `auth_failed`, `vault_integrity`,
 * `unsupported_version`, `insecure_home`.
 *
 * @example Open a vault and list its profiles
 * ```ts ignore
 * import { openVault } from "./hecate.ts";
 * const vault = await openVault({ password: Deno.env.get("PW")! });
 * console.log(vault.profiles().map((p) => p.name));
 * ```
 */
export async function openVault(options: OpenVaultOptions): Promise<Vault> {
  const home = resolveHome({ home: options.home });
  await checkHome(home);
  const store = new VaultStore(home);
  const audit = options.audit ?? new FileAuditLog(home);
  const bytes = await store.read();
  let state: UnlockedVault;
  try {
    state = await UnlockedVault.unlock(bytes, options.password);
  } catch (e) {
    await audit.append({
      event: "unlock",
      actor: { kind: "password" },
      outcome: "fail",
      reason: reasonOf(e),
    }).catch(() => {}); // The unlock error matters more than a failed failure record.
    throw e;
  }
  await audit.append({ event: "unlock", actor: { kind: "password" }, outcome: "ok" });
  return new Vault(home, store, state, audit);
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
      const settings = await connectSettings(profile);
      const driver = await driverFor(profile.engine);
      const conn = await driver.connect(settings);
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

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/;

/**
 * Warnings a person should see each time a profile connects with weakened transport security.
 *
 * @param p The profile.
 * @returns Zero or more one-line warnings.
 */
export function tlsWarnings(p: Profile): string[] {
  if (p.engine === "sqlite") return [];
  if (p.tls.mode === "insecure") {
    return [`TLS certificate verification is off for profile "${p.name}" (--tls insecure)`];
  }
  if (p.tls.mode === "disable" && !LOOPBACK.test(p.host ?? "")) {
    return [`TLS is disabled for profile "${p.name}": the login travels unencrypted`];
  }
  return [];
}

/** A connection opened through a profile; every statement it runs is audited. */
export class Connection {
  /** Profile name. */
  readonly profile: string;
  /** Engine. */
  readonly engine: Profile["engine"];
  /** Transport-security warnings to show the person (see {@link tlsWarnings}). */
  readonly warnings: readonly string[];
  readonly #conn: DbConnection;
  readonly #audit: AuditSink;

  /** @internal Use {@link Vault.connect}. */
  constructor(
    profile: string,
    engine: Profile["engine"],
    conn: DbConnection,
    audit: AuditSink,
    warnings: string[] = [],
  ) {
    this.profile = profile;
    this.engine = engine;
    this.#conn = conn;
    this.#audit = audit;
    this.warnings = warnings;
  }

  async #record(sql: string, ok: boolean, rows: number, started: number, e?: unknown) {
    await this.#audit.append({
      event: "query",
      actor: { kind: "password" },
      profile: this.profile,
      outcome: ok ? "ok" : "fail",
      ...(ok ? {} : { reason: reasonOf(e) }),
      rows,
      durationMs: Math.round(performance.now() - started),
      sqlSha256: await sha256Hex(sql),
    });
  }

  /**
   * Runs a statement and streams every result set. The query is audited (row count, duration,
   * SQL hash; never parameter values) when the stream ends or fails.
   *
   * @param sql The statement, with the engine's placeholders.
   * @param params Positional parameters, bound by the driver.
   * @param options Value mode and batch size.
   */
  async *results(
    sql: string,
    params: readonly unknown[] = [],
    options: QueryOptions = {},
  ): AsyncGenerator<ResultSet> {
    const started = performance.now();
    let rows = 0;
    let failure: unknown;
    try {
      for await (const set of this.#conn.query(sql, params, options)) {
        const inner = set.rows;
        yield {
          ...set,
          rows: (async function* () {
            for await (const r of inner) {
              rows++;
              yield r;
            }
          })(),
        };
        if (set.columns.length === 0) rows += set.rowCount() ?? 0;
      }
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      await this.#record(sql, failure === undefined, rows, started, failure);
    }
  }

  /**
   * Runs a statement and yields the rows of its first result set as objects keyed by column name.
   *
   * @param sql The statement.
   * @param params Positional parameters.
   */
  async *query(
    sql: string,
    params: readonly unknown[] = [],
  ): AsyncGenerator<Record<string, unknown>> {
    let first = true;
    for await (const set of this.results(sql, params)) {
      const names: string[] = set.columns.map((c: Column) => c.name);
      for await (const r of set.rows) {
        if (!first) continue; // drain later sets so the statement completes
        const o: Record<string, unknown> = {};
        names.forEach((n, i) => (o[n] = r[i]));
        yield o;
      }
      first = false;
    }
  }

  /** Whether this engine can stream CSV straight from the server. */
  get canCopyCsv(): boolean {
    return this.#conn.copyCsv !== undefined;
  }

  /**
   * Streams a query's result as CSV from the server (PostgreSQL COPY). Audited like a query.
   *
   * @param sql The query (no parameters).
   * @param sink Receives large chunks.
   * @returns Rows written.
   */
  async copyCsv(sql: string, sink: (chunk: Uint8Array) => Promise<void>): Promise<number> {
    if (!this.#conn.copyCsv) throw new HecateError("internal", "This engine cannot COPY");
    const started = performance.now();
    try {
      const n = await this.#conn.copyCsv(sql, sink);
      await this.#record(sql, true, n, started);
      return n;
    } catch (e) {
      await this.#record(sql, false, 0, started, e).catch(() => {});
      throw e;
    }
  }

  /**
   * A round trip to the server.
   *
   * @returns Milliseconds it took.
   */
  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.#conn.ping();
    return performance.now() - t0;
  }

  /** Closes the connection. */
  close(): Promise<void> {
    return this.#conn.close();
  }

  /** Closes the connection at the end of an `await using` block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
