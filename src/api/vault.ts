/**
 * An open vault: a thin hub over its parts. Profiles, API keys, TOTP, keys and backups each live
 * in their own module (`vault.profiles`, `vault.apiKeys`, `vault.totp`, `vault.keys`,
 * `vault.backups`); connections and pools are the hub's own job and delegate to
 * src/api/connections.ts. Every part shares one core (src/api/_core.ts): the unlocked state, the
 * write lock, the audit sink and the release gate.
 *
 * @module
 */

import { type RefHealth, sourceHealth, type SourceInUse, sourcesInUse } from "./sources.ts";
import type { Actor } from "../audit/log.ts";
import { chainKeyOf } from "../audit/meta.ts";
import type { Endpoint } from "../connect.ts";
import type { BreakerOptions, CircuitBreaker } from "../db/breaker.ts";
import type { EnvMapping, SecretMapping } from "../run/env.ts";
import type { VaultCore } from "./_core.ts";
import { VaultApiKeys } from "./api_keys.ts";
import { VaultBackups } from "./backups.ts";
import type { Connection } from "./connection.ts";
import { type ConnectOptions, VaultConnections, type VaultPoolOptions } from "./connections.ts";
import { VaultKeys } from "./keys.ts";
import type { ConnectionPool } from "./pool.ts";
import { VaultProfiles } from "./profiles.ts";
import { VaultSecrets } from "./secrets.ts";
import { VaultSlots } from "./slots.ts";
import { VaultTotp } from "./totp.ts";
import { type PolicyRow, policySettings, setPolicy } from "./policy.ts";
import type { VaultPolicy } from "../policy/policy.ts";

/**
 * An open vault: with the master password (everything) or an API key (its scope, read-only).
 *
 * @example
 * ```ts ignore
 * await using vault = await openVault({ password });
 * console.log(vault.profiles.list());
 * const rows = await vault.query("billing", "select now() as t");
 * ```
 */
export class Vault {
  /** The home directory. */
  readonly home: string;
  /** Profiles: list, show, add, edit, remove. */
  readonly profiles: VaultProfiles;
  /** Stored secrets that are not database logins: set, get, list, history, remove. */
  readonly secrets: VaultSecrets;
  /** API keys: create, list, revoke (master password only). */
  readonly apiKeys: VaultApiKeys;
  /** One-time codes for the vault and for profiles (master password only). */
  readonly totp: VaultTotp;
  /** Key rotation, password change, KDF cost (master password only). */
  readonly keys: VaultKeys;
  /** Encrypted bundles of this vault and their retention (master password only). */
  readonly backups: VaultBackups;
  /** Key slots: list; add an age slot, remove one (master password only). */
  readonly slots: VaultSlots;
  readonly #core: VaultCore;
  readonly #connections: VaultConnections;

  /** @internal Use {@link openVault}. */
  constructor(core: VaultCore) {
    this.#core = core;
    this.home = core.home;
    this.profiles = new VaultProfiles(core);
    this.secrets = new VaultSecrets(core);
    this.apiKeys = new VaultApiKeys(core);
    this.totp = new VaultTotp(core);
    this.keys = new VaultKeys(core);
    this.backups = new VaultBackups(core);
    this.slots = new VaultSlots(core);
    this.#connections = new VaultConnections(core);
  }

  /** The vault id. */
  get id(): string {
    return this.#core.state.id;
  }

  /** How many times the vault file has been written. */
  get generation(): number {
    return this.#core.state.generation;
  }

  /**
   * Who opened this vault: the master password, an API key (id and name), or an age identity
   * (`age`, with its slot's id and label).
   */
  get actor(): Actor {
    return { ...this.#core.actor };
  }

  /**
   * The audit chain's first key A0 (from the encrypted meta), for `audit verify` and export.
   * Needs the master password: an API key cannot read the meta.
   *
   * @returns A0, or undefined for a vault without a chain.
   */
  auditChainKey(): Uint8Array | undefined {
    return chainKeyOf(this.#core.unlocked().meta);
  }

  /**
   * The vault's security policy with defaults applied (docs/SECURITY.md, "Policy"). With the
   * master password it is the sealed policy; with an API key, which cannot open the sealed meta,
   * the home's copy of it (`policy.state.json`), read at unlock.
   *
   * @returns The policy; durations in ms, 0 meaning "no limit".
   */
  policy(): VaultPolicy {
    return this.#core.policy();
  }

  /**
   * Every policy key with its value and whether it was set (master password only).
   *
   * @returns The rows, and when the vault keys are next due (with `keys.rotate-every`).
   */
  policySettings(): { rows: PolicyRow[]; keysNextDue?: string } {
    return policySettings(this.#core);
  }

  /**
   * Sets one policy key (master password only), audited as `policy.set` with old and new value.
   *
   * @param key The dotted key (`lockout.attempts`, `history.keep`, ...).
   * @param value The value as text (`3`, `15m`, `on`, `closed`, ...).
   * @returns The old and new value as text.
   * @throws {HecateError} `usage` for an unknown key or an invalid value (nothing changes).
   */
  setPolicy(key: string, value: string): Promise<{ old: string; now: string }> {
    return setPolicy(this.#core, key, value);
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
  connect(name: string, options: ConnectOptions = {}): Promise<Connection> {
    return this.#connections.connect(name, options);
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
  query(
    name: string,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<Record<string, unknown>[]> {
    return this.#connections.query(name, sql, params);
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
    return this.#connections.breaker(name, options);
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
  pool(name: string, options: VaultPoolOptions = {}): Promise<ConnectionPool> {
    return this.#connections.pool(name, options);
  }

  /**
   * Resolves a profile into settings for another program: secret references resolved, provider
   * credentials filled in, and (where the profile needs one) a tunnel opened that stays up until
   * `close()`. Audited as `profile.read` before anything is released.
   *
   * @param name Profile name.
   * @returns The endpoint; close it when done.
   */
  endpoint(name: string): Promise<Endpoint> {
    return this.#connections.endpoint(name);
  }

  /**
   * The environment variables `hecate run` gives a program for a profile (see
   * `connectionEnv` in src/run/env.ts for the list). Audited as `env`.
   *
   * @param name Profile name.
   * @param mappings Extra `NAME=field` variables.
   * @returns Variables by name, secrets in clear: handle with care.
   */
  environment(
    name: string,
    mappings: readonly EnvMapping[] = [],
  ): Promise<Record<string, string>> {
    return this.#connections.environment(name, mappings);
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
   * @param options Extra `NAME=field` variables; `secrets`: stored secrets to set as variables
   * (each read is audited as `secret.read`; with an API key, only secrets in its scope).
   * @returns The program's exit code (128 + N when signal N ended it).
   *
   * @example Run psql with the profile's credentials
   * ```ts ignore
   * const code = await vault.run("billing", "psql", ["-c", "select 1"]);
   * ```
   */
  run(
    name: string,
    command: string,
    args: readonly string[] = [],
    options: { env?: readonly EnvMapping[]; secrets?: readonly SecretMapping[] } = {},
  ): Promise<number> {
    return this.#connections.run(name, command, args, options);
  }

  /**
   * Checks every secret source of a profile (each reference's source asked within the profile's
   * source timeout). Audited as `profile.read`, like a connect.
   *
   * @param name Profile name.
   * @returns One entry per reference: field, reference, source, ok, detail, latency.
   */
  sourceHealth(name: string): Promise<RefHealth[]> {
    return sourceHealth(this.#core, name);
  }

  /**
   * The secret sources the profiles use, by scheme (with an API key: its scope only).
   *
   * @param options `check`: ask each source too (each profile is released as by a connect).
   * @returns One entry per scheme.
   */
  sourcesInUse(options: { check?: boolean } = {}): Promise<SourceInUse[]> {
    return sourcesInUse(this.#core, options.check ?? false);
  }

  /**
   * Closes every pool opened through this vault (each waits for its borrowed connections), then
   * zeroes the root, derived, data and signing keys held in memory (master password), after
   * which the vault opens and writes nothing.
   */
  async close(): Promise<void> {
    try {
      await this.#connections.close();
      await this.#core.audit.flush?.();
    } finally {
      this.#core.wipe();
    }
  }

  /** Same as {@link Vault.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
