/**
 * An unlocked vault: profiles and connections.
 *
 * @module
 */

import type { Actor, AuditSink, DetailValue } from "../audit/log.ts";
import { chainKeyOf } from "../audit/meta.ts";
import { apiKeyLastUsed, forgetApiKey } from "../access/apikey_state.ts";
import {
  hashRecoveryCode,
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  spendRecoveryCode,
  TOTP_STATE_FILE,
  type TotpConfig,
  totpConfigOf,
  totpUri,
  verifySecondFactor,
} from "../access/totp.ts";
import { updateState } from "../access/state_file.ts";
import type { Engine } from "../db/driver.ts";
import { preloadDriver } from "../db/registry.ts";
import { HecateError } from "../errors.ts";
import { MIN_KDF_ITERATIONS } from "../kdf.ts";
import {
  maskedProfile,
  type Profile,
  profileFromRecord,
  type SecretValue,
  type SshProfile,
  type TlsProfile,
  validateName,
  validateProfile,
} from "../profile.ts";
import { providerFor, settleIncomplete } from "../../providers/mod.ts";
import type { IncompleteMarker } from "../incomplete.ts";
import type { VaultStore } from "../vault/store.ts";
import type { ScopedVault } from "../vault/scoped.ts";
import { UnlockedVault } from "../vault/vault.ts";
import {
  type Endpoint,
  openDbConnection,
  type OpenDbConnectionOptions,
  openEndpoint,
} from "../connect.ts";
import { type AccessContext, failureOf, guarded, requireSecondFactor } from "./access.ts";
import { connectionEnv, type EnvMapping } from "../run/env.ts";
import { spawnWithEnv } from "../run/spawn.ts";
import {
  createBackup,
  type CreatedBackup,
  KEEP_META_KEY,
  type Progress,
  retentionOf,
} from "../backup/backup.ts";
import { Connection, type StatementAudit, tlsWarnings } from "./connection.ts";
import { type BreakerOptions, CircuitBreaker } from "../db/breaker.ts";
import type { PoolOptions } from "../db/pool.ts";
import { ConnectionPool } from "./pool.ts";
import { reasonOf, stripUndefined } from "./util.ts";
import { saveVault } from "./vault_write.ts";

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
  /** What an incomplete (imported) profile still lacks; absent when it is usable. */
  incomplete?: string[];
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
  /** An SSH tunnel in front of the database. */
  ssh?: SshProfile | undefined;
  /** Secret fields by name (e.g. `password`), values or references. */
  secrets?: Record<string, SecretValue>;
  /** Marks an imported profile that cannot be used until completed (src/incomplete.ts). */
  incomplete?: IncompleteMarker | undefined;
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
  /** The SSH tunnel; `null` removes it together with its `ssh.*` secrets. */
  ssh?: SshProfile | null;
  /** Secrets to set; `null` removes one. */
  secrets?: Record<string, SecretValue | null>;
  /** A new name for the profile. */
  rename?: string;
}

/** An API key as listed: never the key text. */
export interface ApiKeySummary {
  /** Key id (the middle part of the key text; not a secret). */
  id: string;
  /** The key's name. */
  name: string;
  /** Profile names in scope (a removed profile shows as `(removed)`). */
  profiles: string[];
  /** ISO time of creation. */
  created: string;
  /** ISO time, or null for never. */
  expires: string | null;
  /** ISO time of the last successful use, if any (informational, see docs/SECURITY.md). */
  lastUsed: string | null;
}

/** Options for {@link Vault.createApiKey}. */
export interface CreateApiKeyOptions {
  /** Unique name. */
  name: string;
  /** Profile names the key may use. */
  profiles: string[];
  /** Expiry time, or null for never. */
  expires: Date | null;
}

/** A TOTP setup in progress: show `uri` (or its QR code), then call {@link Vault.enableTotp}. */
export interface TotpSetup {
  /** Profile name, or undefined for the vault. */
  profile: string | undefined;
  /** The new secret, base32 (show it once). */
  secret: string;
  /** The `otpauth://` URI (contains the secret). */
  uri: string;
}

interface Found {
  id: string;
  profile: Profile;
  totp: TotpConfig | undefined;
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
  /** Called as each SSH tunnel step (and the database login behind it) completes. */
  onStep?: OpenDbConnectionOptions["onStep"];
  /**
   * Record every statement in the audit trail (SQL hash, rows, duration, outcome). `true` puts each
   * record on disk before the statement's result is final, which bounds a busy pool's throughput
   * at the disk's flush rate; `"deferred"` writes the records behind the statements in group
   * writes (a crash can lose the last moments' records; a lost record stops every later statement
   * and `close()` waits for the rest); `false` records only the opening of the profile. See
   * docs/SECURITY.md and docs/PERFORMANCE.md. @default {true}
   */
  auditStatements?: StatementAudit;
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
 * An open vault: with the master password (everything) or an API key (its scope, read-only).
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
  #state: UnlockedVault | ScopedVault;
  readonly #audit: AuditSink;
  readonly #access: AccessContext;
  /** Second factors already passed in this session (`vault`, `profile:<id>`): asked once each. */
  readonly #passed = new Set<string>();
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #pools = new Set<ConnectionPool>();

  /** @internal Use {@link openVault}. */
  constructor(
    home: string,
    store: VaultStore,
    state: UnlockedVault | ScopedVault,
    audit: AuditSink,
    access: AccessContext,
  ) {
    this.home = home;
    this.#store = store;
    this.#state = state;
    this.#audit = audit;
    this.#access = access;
  }

  /** The vault id. */
  get id(): string {
    return this.#state.id;
  }

  /** How many times the vault file has been written. */
  get generation(): number {
    return this.#state.generation;
  }

  /** Who opened this vault: the master password, or an API key (id and name). */
  get actor(): Actor {
    return { ...this.#access.actor };
  }

  /**
   * The audit chain's first key A0 (from the encrypted meta), for `audit verify` and export.
   * Needs the master password: an API key cannot read the meta.
   *
   * @returns A0, or undefined for a vault without a chain.
   */
  auditChainKey(): Uint8Array | undefined {
    return chainKeyOf(this.#unlocked().meta);
  }

  /** PBKDF2 iterations of the password slot (master password only). */
  get kdfIterations(): number {
    return this.#unlocked().passwordIterations;
  }

  #unlocked(): UnlockedVault {
    if (this.#state instanceof UnlockedVault) return this.#state;
    throw new HecateError(
      "no_credential",
      "This needs the master password: an API key can only read the profiles in its scope",
      { hint: "run it without HECATE_API_KEY / --api-key-file" },
    );
  }

  #all(state: UnlockedVault | ScopedVault = this.#state): Found[] {
    return state.records().map((r) => {
      const { totp, ...value } = r.value;
      return { id: r.id, profile: profileFromRecord(value), totp: totpConfigOf(totp) };
    });
  }

  #find(name: string, state: UnlockedVault | ScopedVault = this.#state): Found {
    const hit = this.#all(state).find((r) => r.profile.name === name);
    if (!hit) {
      throw new HecateError("profile_not_found", `No profile named "${name}"`, {
        hint: this.#access.actor.kind === "apikey"
          ? "this API key may use only the profiles in its scope"
          : "list profiles with 'hecate server list'",
      });
    }
    return hit;
  }

  /**
   * Lists profiles without secrets, sorted by name (with an API key: only those in its scope).
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
        incomplete: p.incomplete?.missing,
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
    const { profile, totp } = this.#find(name);
    return { ...maskedProfile(profile), ...(totp ? { totp: "required" } : {}) };
  }

  /** Whether a profile of that name exists (with an API key: in its scope). */
  hasProfile(name: string): boolean {
    return this.#all().some((r) => r.profile.name === name);
  }

  async #mutate(fn: (state: UnlockedVault) => void | Promise<void>): Promise<void> {
    const current = this.#unlocked();
    await this.#store.withLock(async () => {
      // Apply the change to the newest file, not to what this process read earlier.
      const fresh = await current.reload(await this.#store.read());
      await fn(fresh);
      await saveVault(this.#store, fresh, this.#audit, this.#access.actor);
      this.#state = fresh;
    });
  }

  async #audited(
    event: string,
    profile: string | undefined,
    fn: () => Promise<void>,
    detail?: () => { [key: string]: DetailValue },
  ): Promise<void> {
    const base = { event, actor: this.#access.actor, ...(profile ? { profile } : {}) };
    const extra = () => (detail ? { detail: detail() } : {});
    try {
      this.#unlocked();
      await fn();
    } catch (e) {
      await this.#audit.append({ ...base, outcome: "fail", reason: reasonOf(e), ...extra() })
        .catch(() => {});
      throw e;
    }
    await this.#audit.append({ ...base, outcome: "ok", ...extra() });
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
        ssh: input.ssh,
        secrets: input.secrets ?? {},
        incomplete: input.incomplete,
        created: now,
        updated: now,
      }) as Profile;
      settleIncomplete(profile);
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
        const { id, profile, totp } = this.#find(name, state);
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
        if (changes.ssh === null) {
          delete next.ssh;
          for (const k of Object.keys(secrets)) if (k.startsWith("ssh.")) delete secrets[k];
        } else if (changes.ssh !== undefined) {
          next.ssh = changes.ssh;
        }
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
        settleIncomplete(p);
        validateProfile(p);
        providerFor(p);
        state.putRecord(totp ? { ...next, totp } : next, id);
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
   * Creates an API key for some profiles. Its slot wraps only those profiles' data keys.
   *
   * @param options Name, profiles, expiry.
   * @returns The key text: show it once; it is stored nowhere.
   * @throws {HecateError} `already_exists`, `profile_not_found`, `usage` (empty name or scope).
   */
  async createApiKey(options: CreateApiKeyOptions): Promise<string> {
    let text = "";
    await this.#audited("apikey.create", undefined, async () => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(options.name)) {
        throw new HecateError("usage", "An API key name is 1-64 letters, digits, '.', '_' or '-'");
      }
      if (options.profiles.length === 0) {
        throw new HecateError("usage", "An API key needs at least one profile in its scope");
      }
      await this.#mutate(async (state) => {
        text = await state.addApiKey({
          name: options.name,
          scope: options.profiles.map((n) => this.#find(n, state).id),
          created: this.#access.now(),
          expires: options.expires,
        });
      });
    }, () => ({ key_name: options.name, scope: [...options.profiles] }));
    return text;
  }

  /**
   * Lists API keys: names, scopes, times; never the key text.
   *
   * @returns The keys, oldest first.
   */
  async apiKeys(): Promise<ApiKeySummary[]> {
    const state = this.#unlocked();
    const names = new Map(this.#all(state).map((r) => [r.id, r.profile.name]));
    const used = await apiKeyLastUsed(this.home);
    return state.apiKeys().map((k) => ({
      id: k.id,
      name: k.name,
      profiles: k.scope.map((id) => names.get(id) ?? "(removed)"),
      created: k.created,
      expires: k.expires,
      lastUsed: used[k.id] ?? null,
    }));
  }

  /**
   * Revokes an API key: deletes its slot and re-keys every profile it covered (other keys that
   * cover them get the new data keys), so the key opens nothing written from now on, even with
   * an old copy of the vault file.
   *
   * @param name The key's name.
   * @throws {HecateError} `key_revoked` when no key has that name.
   */
  async revokeApiKey(name: string): Promise<void> {
    let id = "";
    await this.#audited("apikey.revoke", undefined, async () => {
      await this.#mutate((state) => {
        const key = state.apiKeys().find((k) => k.name === name);
        if (!key) {
          throw new HecateError("key_revoked", `No API key named "${name}"`, {
            hint: "list keys with 'hecate apikey list'",
          });
        }
        id = key.id;
        state.removeApiKey(key.id);
      });
    }, () => ({ key_name: name, ...(id ? { key_id: id } : {}) }));
    await forgetApiKey(this.home, id).catch(() => {});
  }

  /**
   * Whether TOTP is on for the vault and which profiles require it.
   *
   * @returns The vault flag and profile names.
   */
  totpStatus(): { vault: boolean; profiles: string[] } {
    const state = this.#unlocked();
    return {
      vault: totpConfigOf(state.meta.totp) !== undefined,
      profiles: this.#all().filter((r) => r.totp).map((r) => r.profile.name).sort(),
    };
  }

  /**
   * Starts a TOTP setup: makes a secret. Nothing is stored until {@link enableTotp} gets a valid
   * code for it.
   *
   * @param profile A profile name, or undefined for the whole vault.
   * @param issuer Issuer shown in authenticator apps.
   * @returns The secret and its URI.
   */
  async beginTotpSetup(profile?: string, issuer = "Hecate"): Promise<TotpSetup> {
    const state = this.#unlocked();
    if (profile !== undefined && this.#find(profile, state).totp) {
      throw new HecateError("already_exists", `TOTP is already on for profile "${profile}"`);
    }
    if (profile === undefined && totpConfigOf(state.meta.totp)) {
      throw new HecateError("already_exists", "TOTP is already on for the vault");
    }
    const secret = await newTotpSecret();
    return { profile, secret, uri: await totpUri(secret, profile ?? "vault", issuer) };
  }

  /**
   * Enables TOTP once a code from the new secret checks out, and returns one-time recovery codes
   * (only their hashes are stored).
   *
   * @param setup What {@link beginTotpSetup} returned.
   * @param code A current code from the authenticator.
   * @returns Ten recovery codes: show them once.
   * @throws {HecateError} `totp_failed` for a wrong code.
   */
  async enableTotp(setup: TotpSetup, code: string): Promise<string[]> {
    const codes = newRecoveryCodes();
    await this.#audited("totp.enable", setup.profile, async () => {
      const step = await matchTotp(setup.secret, code.trim(), this.#access.now());
      if (step === null) {
        throw new HecateError("totp_failed", "The one-time code does not match the new secret", {
          hint: "check the authenticator's clock and try again with the next code",
        });
      }
      const config: TotpConfig = {
        secret: setup.secret,
        recovery: await Promise.all(codes.map(hashRecoveryCode)),
        created: this.#access.now().toISOString(),
      };
      await this.#mutate((state) => {
        if (setup.profile === undefined) {
          state.meta = { ...state.meta, totp: config };
          return;
        }
        const hit = this.#find(setup.profile, state);
        state.putRecord(
          { ...hit.profile, totp: config } as unknown as Record<string, unknown>,
          hit.id,
        );
      });
      // The confirming code is spent: it cannot be replayed at the next unlock.
      const secretId = setup.profile === undefined
        ? "vault"
        : `profile:${this.#find(setup.profile).id}`;
      await updateState(this.home, TOTP_STATE_FILE, (s) => {
        s[secretId] = step;
        return { write: true, result: undefined };
      });
    });
    return codes;
  }

  /**
   * Turns TOTP off for the vault or a profile. Needs a current code or an unused recovery code
   * (the master password is already held by whoever opened this vault).
   *
   * @param profile A profile name, or undefined for the vault.
   * @param code A one-time code or a recovery code (not needed for the vault when this session
   * already passed the vault's code at unlock).
   * @throws {HecateError} `totp_failed` for a wrong code, `usage` when TOTP is off.
   */
  async disableTotp(profile: string | undefined, code: string | undefined): Promise<void> {
    await this.#audited("totp.disable", profile, async () => {
      const state = this.#unlocked();
      const hit = profile === undefined ? undefined : this.#find(profile, state);
      const config = hit ? hit.totp : totpConfigOf(state.meta.totp);
      if (!config) {
        throw new HecateError(
          "usage",
          `TOTP is not on for ${profile ? `profile "${profile}"` : "the vault"}`,
        );
      }
      const secretId = hit ? `profile:${hit.id}` : "vault";
      // The vault's own code was just checked at unlock (and is spent); do not ask twice.
      if (!this.#passed.has(secretId)) {
        await this.#access.lockout.check(this.#access.subject);
        await guarded(
          this.#access,
          "totp.disable",
          () =>
            verifySecondFactor(config, code ?? "", {
              home: this.home,
              secretId,
              now: this.#access.now(),
              allowRecovery: true,
            }),
          failureOf("totp_failed"),
          profile,
        );
      }
      await this.#mutate((s) => {
        if (profile === undefined) {
          const { totp: _off, ...rest } = s.meta;
          s.meta = rest;
          return;
        }
        const fresh = this.#find(profile, s);
        s.putRecord(fresh.profile as unknown as Record<string, unknown>, fresh.id);
      });
    });
  }

  /** @internal Notes that a second factor was passed in this session (by `openVault`). */
  markFactorPassed(secretId: string): void {
    this.#passed.add(secretId);
  }

  /**
   * @internal Spends a vault recovery code used at unlock: checked and removed in one locked
   * write of the newest vault, so two processes cannot both spend it (the second gets
   * `totp_failed`).
   */
  async spendVaultRecoveryCode(spent: string): Promise<void> {
    let left = 0;
    try {
      await this.#mutate((state) => {
        const totp = spendRecoveryCode(totpConfigOf(state.meta.totp), spent);
        state.meta = { ...state.meta, totp };
        left = totp.recovery.length;
      });
    } catch (e) {
      await this.#audit.append({
        event: "totp.recovery",
        actor: this.#access.actor,
        outcome: "fail",
        reason: reasonOf(e),
      }).catch(() => {});
      throw e;
    }
    await this.#audit.append({
      event: "totp.recovery",
      actor: this.#access.actor,
      outcome: "ok",
      reason: `${left} recovery codes left`,
    });
  }

  /**
   * Re-wraps the root key at a higher PBKDF2 cost (done by `openVault` when the vault's cost is
   * below the current floor).
   *
   * @param password The master password (just verified).
   * @param iterations The new cost.
   */
  async upgradeKdf(password: string, iterations: number): Promise<void> {
    await this.#audited("kdf.upgrade", undefined, async () => {
      await this.#mutate((state) => state.setPassword(password, iterations));
    });
  }

  /**
   * Rotates every key: a new root key and new data keys, every record re-encrypted, every API-key
   * slot re-sealed for its scope (existing API keys keep working), in one atomic replace of the
   * file: an interruption leaves the old vault or the new one.
   *
   * @param password The master password (checked against the vault before anything changes).
   */
  async rotate(password: string): Promise<void> {
    await this.#audited("rotate", undefined, async () => {
      await this.#mutate(async (state) => {
        const bytes = await this.#store.read();
        // A wrong password here would lock the owner out of the rotated vault: check it first.
        await UnlockedVault.unlock(bytes, password);
        await state.rotate(password, Math.max(state.passwordIterations, MIN_KDF_ITERATIONS));
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
   * The gate every release of a profile's secrets goes through: the profile's own second factor
   * (if it has one), then the `profile.read` audit record. If that record cannot be written,
   * nothing is released.
   */
  async #released(name: string): Promise<{ profile: Profile; actor: Actor }> {
    const { id, profile, totp } = this.#find(name);
    const actor = this.#access.actor;
    if (totp && !this.#passed.has(`profile:${id}`)) {
      const password = this.#state instanceof UnlockedVault;
      const ok = await requireSecondFactor(
        this.#access,
        totp,
        `profile:${id}`,
        `profile "${name}"`,
        "connect",
        password,
        name,
      );
      if (ok.kind === "recovery") {
        await this.#mutate((state) => {
          const hit = this.#find(name, state);
          const value = { ...hit.profile, totp: spendRecoveryCode(hit.totp, ok.spent) };
          state.putRecord(value as unknown as Record<string, unknown>, hit.id);
        });
      }
      this.#passed.add(`profile:${id}`);
      await this.#access.lockout.succeeded(this.#access.subject);
    }
    await this.#audit.append({ event: "profile.read", actor, profile: name, outcome: "ok" });
    return { profile, actor };
  }

  /**
   * Opens a connection with a profile. A profile with its own TOTP requires a one-time code first.
   * Reading the profile's secrets is audited before anything is released: if that record cannot
   * be written, nothing is.
   *
   * With an SSH tunnel under accept-new, host keys seen for the first time are pinned in the
   * profile (an audited vault write) before the database login.
   *
   * @param name Profile name.
   * @param options Progress reporting for tunnelled profiles; whether statements are audited.
   * @returns A live connection; close it when done (`await using` works).
   * @throws {HecateError} `profile_not_found` (also for a profile outside an API key's scope),
   * `totp_failed`, `locked_out`, `connection_failed`, `audit_failed`.
   */
  async connect(name: string, options: ConnectOptions = {}): Promise<Connection> {
    // The driver module holds no secret: load it while the profile.read record is flushed.
    const engine = this.#all().find((r) => r.profile.name === name)?.profile.engine;
    if (engine) preloadDriver(engine);
    const { profile, actor } = await this.#released(name);
    try {
      const conn = await openDbConnection(profile, {
        onStep: options.onStep,
        pinHostKeys: (learned) => this.#pinHostKeys(name, profile, learned),
      });
      return new Connection(
        name,
        profile.engine,
        conn,
        this.#audit,
        tlsWarnings(profile),
        actor,
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

  /** Pins host keys learned under accept-new, unless the profile changed meanwhile. */
  async #pinHostKeys(
    name: string,
    seen: Profile,
    learned: readonly { hop: number; fingerprint: string }[],
  ): Promise<void> {
    await this.#audited("profile.pin_host_key", name, async () => {
      await this.#mutate((state) => {
        const { id, profile } = this.#find(name, state);
        if (!profile.ssh) return;
        const hops = profile.ssh.hops.map((h, i) => {
          const l = learned.find((x) => x.hop === i);
          const was = seen.ssh?.hops[i];
          if (!l || !was || was.host !== h.host || was.port !== h.port) return h;
          if (h.hostKey && h.hostKey !== l.fingerprint) {
            // Another process pinned a different key in between: trust neither silently.
            throw new HecateError(
              "host_key_changed",
              `Host key of SSH server ${h.host}:${
                h.port ?? 22
              } differs from the one just pinned (${h.hostKey})`,
            );
          }
          return { ...h, hostKey: l.fingerprint };
        });
        state.putRecord({
          ...profile,
          ssh: { ...profile.ssh, hops },
          updated: new Date().toISOString(),
        } as unknown as Record<string, unknown>, id);
      });
    });
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
    await this.#audit.flush?.();
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
    const { profile } = await this.#released(name);
    return await openEndpoint(profile, {
      pinHostKeys: (learned) => this.#pinHostKeys(name, profile, learned),
    });
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
    if (this.#find(name).profile.ssh) {
      // The tunnel's local port is gone when this returns: the variables would point nowhere.
      throw new HecateError(
        "usage",
        `Profile "${name}" is reached through an SSH tunnel, which lives only while a command runs`,
        { hint: `use 'hecate run ${name} -- COMMAND', which keeps the tunnel open` },
      );
    }
    const endpoint = await this.endpoint(name);
    try {
      const env = connectionEnv(name, endpoint.settings, mappings);
      await this.#audit.append({
        event: "env",
        actor: this.#access.actor,
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
        actor: this.#access.actor,
        profile: name,
        outcome: code === 0 ? "ok" : "fail",
        ...(failure !== undefined ? { reason: reasonOf(failure) } : {}),
        // The program's name only: never its arguments or environment.
        detail: { command, ...(code !== undefined ? { exit_code: code } : {}) },
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
      made = await createBackup(this.home, this.#unlocked(), {
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
      made = await createBackup(this.home, this.#unlocked(), { reason, automatic: true });
    });
    return made!;
  }

  /** How many automatic bundles are kept (vault setting; default 10). */
  get backupRetention(): number {
    return retentionOf(this.#unlocked());
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
