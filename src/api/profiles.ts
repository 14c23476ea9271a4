/**
 * `vault.profiles`: list, show, add, edit and remove connection profiles.
 *
 * @module
 */

import type { Engine } from "../db/driver.ts";
import { HecateError } from "../errors.ts";
import {
  maskedProfile,
  type Profile,
  type SecretValue,
  type SourceSettings,
  type SshProfile,
  type TlsProfile,
  validateName,
  validateProfile,
} from "../profile.ts";
import { providerFor, settleIncomplete } from "../../providers/mod.ts";
import { validateRefs } from "../../providers/sources/validate.ts";
import type { IncompleteMarker } from "../incomplete.ts";
import type { VaultCore } from "./_core.ts";
import type { JsonObject } from "../vault/vault.ts";
import { writeAutoBackup } from "./backups.ts";
import { dropCache } from "./source_cache.ts";
import { reasonOf, stripUndefined } from "./util.ts";
import type { Actor } from "../audit/entry.ts";
import { rotatePassword } from "../lifecycle/rotate_password.ts";
import { checkComplexity, type ComplexityRule } from "../lifecycle/complexity.ts";
import { isDue, lastRotation, nextRotation, rotateEveryOf } from "../lifecycle/schedule.ts";
import {
  firstHistory,
  historyOf,
  recordChange,
  secretsOfVersion,
  versionList,
  withKeep,
} from "../lifecycle/history.ts";

/**
 * A profile as listed: no secrets at all.
 *
 * @example
 * ```ts ignore
 * for (const p of vault.profiles.list()) console.log(p.name, p.engine, p.host);
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
 * What {@link VaultProfiles.add} takes.
 *
 * @example
 * ```ts ignore
 * await vault.profiles.add({
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
  /** Whole-connection secrets (`from`), source timeout, offline cache (docs/SOURCES.md). */
  sources?: SourceSettings | undefined;
  /** Marks an imported profile that cannot be used until completed (src/incomplete.ts). */
  incomplete?: IncompleteMarker | undefined;
  /** A complexity rule for the stored password, checked now and on every edit. */
  complexity?: ComplexityRule | undefined;
  /** Rotate the password on the server this often (milliseconds; `hecate rotate-due`). */
  rotateEveryMs?: number | undefined;
}

/**
 * Changes for {@link VaultProfiles.edit}: fields to set; `null` removes an optional field or a secret.
 *
 * @example
 * ```ts ignore
 * await vault.profiles.edit("billing", { port: 6432, tags: null, rename: "billing-ro" });
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
  /** New source settings, replacing the stored ones; `null` removes them. */
  sources?: SourceSettings | null;
  /** A new name for the profile. */
  rename?: string;
  /** How many previous secret versions to keep (0 to 100). @default {5} */
  keepVersions?: number;
  /** A complexity rule for the stored password; `null` removes it. */
  complexity?: ComplexityRule | null;
  /** The rotation schedule in milliseconds; `null` removes it. */
  rotateEveryMs?: number | null;
}

/**
 * The profiles' index entries sorted by name (as {@link VaultProfiles.list} returns them), the
 * vault's own objects.
 */
function sortedSummaries(core: VaultCore): Readonly<JsonObject>[] {
  return core.profileSummaries().sort((a, b) => (a.name as string).localeCompare(b.name as string));
}

/** A profiles object's core: set by {@link VaultProfiles}' static block. */
let coreOf: (profiles: VaultProfiles) => VaultCore;

/**
 * For `server list`'s table (not library API: mod.ts does not export it): the summaries
 * {@link VaultProfiles.list} returns, in its order, without its copies. They are the vault's own
 * objects (a listing at 10,000 profiles would spend more on copying them than on printing):
 * read-only, and with the members `list()` leaves out (`totp`).
 *
 * @param profiles `vault.profiles`.
 * @returns The summaries, sorted by name.
 */
export function listedSummaries(profiles: VaultProfiles): readonly Readonly<ProfileSummary>[] {
  return sortedSummaries(coreOf(profiles)) as unknown as Readonly<ProfileSummary>[];
}

/**
 * The profiles of an open vault (`vault.profiles`). Reading works with an API key (its scope
 * only); changes need the master password and are audited as `profile.add`, `profile.edit` and
 * `profile.remove`.
 *
 * @example
 * ```ts ignore
 * for (const p of vault.profiles.list()) console.log(p.name, p.engine, p.host);
 * console.log(await vault.profiles.show("billing")); // secrets masked
 * await vault.profiles.edit("billing", { port: 6432 });
 * ```
 */
export class VaultProfiles {
  readonly #core: VaultCore;

  /** @internal Reached as `vault.profiles`. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  static {
    coreOf = (profiles) => profiles.#core;
  }

  /**
   * Lists profiles without secrets, sorted by name (with an API key: only those in its scope).
   *
   * @returns Summaries.
   */
  list(): ProfileSummary[] {
    // From the profile index: no record is opened (docs/FORMAT.md, "Meta JSON").
    return sortedSummaries(this.#core).map((summary) => {
      const { totp: _totp, tags, incomplete, ...p } = summary;
      // Copies of the arrays: the index's own objects must not reach the caller.
      return {
        ...p,
        ...(Array.isArray(tags) ? { tags: [...tags] } : {}),
        ...(Array.isArray(incomplete) ? { incomplete: [...incomplete] } : {}),
      } as unknown as ProfileSummary;
    });
  }

  /**
   * Shows one profile with secret values masked.
   *
   * @param name Profile name.
   * @returns A plain object safe to print.
   */
  async show(name: string): Promise<Record<string, unknown>> {
    const { profile, totp } = await this.#core.find(name);
    const next = nextRotation(profile);
    return {
      ...maskedProfile(profile),
      ...(totp ? { totp: "required" } : {}),
      ...(next ? { lastRotation: lastRotation(profile), nextRotation: next } : {}),
    };
  }

  /** Whether a profile of that name exists (with an API key: in its scope). */
  has(name: string): boolean {
    return this.#core.summaries().some((r) => r.summary.name === name);
  }

  /**
   * Adds a profile.
   *
   * @param input The profile's fields and secrets.
   * @throws {HecateError} `already_exists` for a taken name, `invalid_profile` for missing fields.
   */
  async add(input: ProfileInput): Promise<void> {
    await this.#core.audited("profile.add", input.name, async () => {
      const profile = profileOf(
        input,
        new Date().toISOString(),
        this.#core.actor,
        "add",
        vaultComplexity(this.#core),
      );
      await this.#core.mutate((state) => {
        if (state.recordIdByName(profile.name) !== undefined) throw taken(profile.name);
        state.putRecord(profile as unknown as Record<string, unknown>);
      });
    });
  }

  /**
   * Adds many profiles with one write of the vault (an import): each input is checked on its
   * own, the valid ones are written together as one generation, and each input gets its own
   * `profile.add` audit record (`ok`, or `fail` with the reason).
   *
   * @param inputs The profiles to add.
   * @returns One result per input, in order: `error` set when that profile was refused
   * (`already_exists`, `invalid_profile`, or what its provider throws).
   * @throws {HecateError} `no_credential` with an API key; whatever the write throws (then no
   * profile was added).
   *
   * @example
   * ```ts ignore
   * const results = await vault.profiles.addMany([
   *   { name: "db1", engine: "postgres", host: "db1", user: "app" },
   *   { name: "db2", engine: "postgres", host: "db2", user: "app" },
   * ]);
   * for (const r of results) if (r.error) console.error(r.name, r.error.message);
   * ```
   */
  async addMany(inputs: readonly ProfileInput[]): Promise<AddResult[]> {
    const core = this.#core;
    core.unlocked();
    const now = new Date().toISOString();
    const results: AddResult[] = [];
    const valid: { index: number; profile: Profile }[] = [];
    for (const [index, input] of inputs.entries()) {
      try {
        valid.push({
          index,
          profile: profileOf(input, now, core.actor, "import", vaultComplexity(core)),
        });
        results.push({ name: input.name });
      } catch (e) {
        if (!(e instanceof HecateError)) throw e;
        results.push({ name: input.name, error: e });
      }
    }
    if (valid.length > 0) {
      try {
        await core.mutate((state) => {
          // The names once, not a scan of the index per input (an import brings thousands).
          const names = new Set(core.summaries(state).map((s) => s.summary.name));
          for (const { index, profile } of valid) {
            if (names.has(profile.name)) {
              results[index] = { name: profile.name, error: taken(profile.name) };
              continue;
            }
            state.putRecord(profile as unknown as Record<string, unknown>);
            names.add(profile.name);
          }
        });
      } catch (e) {
        // Nothing was written: every input is recorded as failed (best effort), then rethrown.
        await this.#auditAdds(
          results.map((r) => ({ name: r.name, reason: reasonOf(r.error ?? e) })),
        )
          .catch(() => {});
        throw e;
      }
    }
    await this.#auditAdds(
      results.map((r) => ({ name: r.name, ...(r.error ? { reason: reasonOf(r.error) } : {}) })),
    );
    return results;
  }

  /** One `profile.add` record per input; they must reach the disk before the call returns. */
  async #auditAdds(outcomes: readonly { name: string; reason?: string }[]): Promise<void> {
    const audit = this.#core.audit;
    const actor = this.#core.access.actor;
    const events = outcomes.map((r) => ({
      event: "profile.add" as const,
      actor,
      profile: r.name,
      ...(r.reason ? { outcome: "fail" as const, reason: r.reason } : { outcome: "ok" as const }),
    }));
    if (audit.enqueue && audit.flush) {
      for (const e of events) audit.enqueue(e);
      await audit.flush();
    } else {
      for (const e of events) await audit.append(e);
    }
  }

  /**
   * Changes fields of a profile. Secrets given replace stored ones; `null` removes a field.
   *
   * @param name Profile name.
   * @param changes What to change.
   */
  async edit(name: string, changes: ProfileChanges): Promise<void> {
    await this.#core.audited("profile.edit", name, async () => {
      if (changes.rename !== undefined) validateName(changes.rename);
      await this.#core.mutate(async (state) => {
        const { id, profile, totp } = await this.#core.find(name, state);
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
        if (changes.rotateEveryMs === null) delete next.rotateEveryMs;
        else if (changes.rotateEveryMs !== undefined) next.rotateEveryMs = changes.rotateEveryMs;
        if (changes.complexity === null) delete next.complexity;
        else if (changes.complexity !== undefined) next.complexity = changes.complexity;
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
        if (changes.sources === null) delete next.sources;
        else if (changes.sources !== undefined) {
          const merged = stripUndefined({ ...changes.sources });
          if (Object.keys(merged).length) next.sources = merged;
          else delete next.sources;
        }
        if (changes.rename !== undefined && changes.rename !== name) {
          if (state.recordIdByName(changes.rename) !== undefined) {
            throw new HecateError(
              "already_exists",
              `A profile named "${changes.rename}" already exists`,
            );
          }
          next.name = changes.rename;
        }
        const updated = new Date().toISOString();
        next.updated = updated;
        // A change of secrets keeps the old ones as a previous version.
        let history = recordChange(
          profile,
          secrets,
          this.#core.actor,
          "edit",
          updated,
          this.#core.policy().historyKeep,
        );
        if (changes.keepVersions !== undefined) history = withKeep(history, changes.keepVersions);
        next.history = history;
        const p = next as unknown as Profile;
        settleIncomplete(p);
        validateRefs(p, {
          secrets: Object.keys(changes.secrets ?? {}),
          from: changes.sources?.from !== undefined,
        });
        validateProfile(p);
        checkComplexity(p, vaultComplexity(this.#core));
        providerFor(p);
        state.putRecord(totp ? { ...next, totp } : next, id);
      });
    });
  }

  /**
   * The versions of a profile's secrets, newest first (version, time, actor, reason; never a
   * value). Works with an API key for the profiles in its scope; audited as `profile.history`.
   *
   * @param name Profile name.
   * @returns The versions, the current one marked.
   * @throws {HecateError} `profile_not_found` (also outside an API key's scope).
   */
  async history(name: string): Promise<ProfileVersion[]> {
    const base = { event: "profile.history" as const, actor: this.#core.actor, profile: name };
    try {
      const { profile } = await this.#core.find(name);
      const list = versionList(profile);
      await this.#core.audit.append({ ...base, outcome: "ok" });
      return list;
    } catch (e) {
      await this.#core.audit.append({ ...base, outcome: "fail", reason: reasonOf(e) })
        .catch(() => {});
      throw e;
    }
  }

  /**
   * Makes a kept previous version of a profile's secrets current again; the replaced secrets
   * become a previous version in turn. Only the stored secrets change: a password changed on
   * the server since must be set back there too (docs/SECURITY.md). Audited as
   * `profile.rollback` (detail: from and to version numbers).
   *
   * @param name Profile name.
   * @param version The version to restore.
   * @param options `onServer`: set the restored password on the database server too, through
   * the rotation steps (pending, server change, fresh login, commit; only the `password` field
   * is restored then); `admin`: an administrator profile for that change.
   * @returns The new current version number.
   * @throws {HecateError} `usage` for the current or an unkept version, `no_credential` with an
   * API key.
   */
  async rollback(
    name: string,
    version: number,
    options: { onServer?: boolean; admin?: string | undefined } = {},
  ): Promise<number> {
    if (options.onServer) return await this.#rollbackOnServer(name, version, options.admin);
    let from = 0;
    let to = 0;
    await this.#core.audited("profile.rollback", name, async () => {
      await this.#core.mutate(async (state) => {
        const { id, profile, totp } = await this.#core.find(name, state);
        const secrets = secretsOfVersion(profile, version);
        from = historyOf(profile).current.version;
        const now = new Date().toISOString();
        const history = recordChange(
          profile,
          secrets,
          this.#core.actor,
          `rollback to ${version}`,
          now,
          this.#core.policy().historyKeep,
        );
        to = history.current.version;
        const next = { ...profile, secrets, history, updated: now } as Profile;
        validateProfile(next);
        const record = next as unknown as Record<string, unknown>;
        state.putRecord(totp ? { ...record, totp } : record, id);
      });
    }, () => ({ from, restored: version, to }));
    return to;
  }

  /** Rollback of the password through the rotation steps, so the server gets it back too. */
  async #rollbackOnServer(name: string, version: number, admin?: string): Promise<number> {
    let to = 0;
    await this.#core.audited("profile.rollback", name, async () => {
      const { profile } = await this.#core.find(name);
      const kept = secretsOfVersion(profile, version).password;
      if (!kept || !("value" in kept)) {
        throw new HecateError("usage", `Version ${version} of "${name}" holds no stored password`);
      }
      to = await rotatePassword(this.#core, name, undefined, admin, {
        password: kept.value,
        reason: `rollback to ${version} (on the server)`,
      });
    }, () => ({ restored: version, to, on_server: true }));
    return to;
  }

  /**
   * Rotates on the server every profile whose schedule is due (`rotateEveryMs`), one after the
   * other; a failure does not stop the others.
   *
   * @param now The time to judge by. @default {now}
   * @returns One result per due profile, in name order: `error` set when it failed.
   */
  async rotateDue(now: Date = new Date()): Promise<RotateDueResult[]> {
    const out: RotateDueResult[] = [];
    for (const { summary } of this.#core.summaries()) {
      const name = String(summary.name);
      const { profile } = await this.#core.find(name);
      if (rotateEveryOf(profile) === undefined || !isDue(profile, now)) continue;
      out.push({ name });
    }
    out.sort((a, b) => a.name.localeCompare(b.name));
    for (const r of out) {
      try {
        r.version = await rotatePassword(this.#core, r.name);
      } catch (e) {
        if (!(e instanceof Error)) throw e;
        r.error = e;
      }
    }
    return out;
  }

  /**
   * Changes the profile's database password on its server with its own login (PostgreSQL sends
   * a SCRAM verifier, MySQL/MariaDB the password, SQL Server ALTER LOGIN), proves a fresh login, and stores it as the
   * new current version. Audited `rotation.start`, `rotation.server`, `rotation.verify`,
   * `rotation.commit`.
   *
   * @param name Profile name.
   * @param options `length` of the generated password (16-128, default 32); `admin`: a
   * profile (same engine) whose login changes this profile's login instead of its own.
   * @returns The new current version number.
   * @throws {HecateError} `invalid_profile` for SQLite, non-password logins and
   * passwords from a secret source; `no_credential` with an API key.
   */
  rotatePassword(
    name: string,
    options: { length?: number | undefined; admin?: string | undefined } = {},
  ): Promise<number> {
    return rotatePassword(this.#core, name, options.length, options.admin);
  }

  /**
   * Removes a profile.
   *
   * @param name Profile name.
   */
  async remove(name: string): Promise<void> {
    await this.#core.audited("profile.remove", name, async () => {
      if (!this.has(name)) await this.#core.find(name); // profile_not_found
      await writeAutoBackup(this.#core, "profile-remove");
      let removed: string | undefined;
      await this.#core.mutate((state) => {
        const id = state.recordIdByName(name);
        if (id === undefined) return void this.#core.find(name, state);
        state.deleteRecord(id);
        removed = id;
      });
      // Its cached secrets could not be opened any more; remove them too.
      if (removed) await dropCache(this.#core.home, removed);
    });
  }
}

/**
 * One version of a profile's secrets as {@link VaultProfiles.history} lists it (never a value).
 *
 * @example
 * ```ts ignore
 * for (const v of await vault.profiles.history("billing")) console.log(v.version, v.reason);
 * ```
 */
export interface ProfileVersion {
  /** Version number: 1 for the first secrets, one more per change. */
  version: number;
  /** ISO time the version was made. */
  time: string;
  /** `password`, `apikey:<name>`, `none`, or `unknown` for a record older than history. */
  actor: string;
  /** `add`, `import`, `edit`, `rollback to N`, or `initial`. */
  reason: string;
  /** Whether these are the profile's secrets now. */
  current: boolean;
}

/**
 * What {@link VaultProfiles.rotateDue} reports for one due profile.
 *
 * @example
 * ```ts ignore
 * for (const r of await vault.profiles.rotateDue()) console.log(r.name, r.error?.message ?? r.version);
 * ```
 */
export interface RotateDueResult {
  /** Profile name. */
  name: string;
  /** The new current version, when it was rotated. */
  version?: number;
  /** Why it was not. */
  error?: Error;
}

/**
 * What {@link VaultProfiles.addMany} reports for one input.
 *
 * @example
 * ```ts ignore
 * const [r]: AddResult[] = await vault.profiles.addMany([input]);
 * ```
 */
export interface AddResult {
  /** The input's profile name. */
  name: string;
  /** Why it was not added; absent when it was. */
  error?: HecateError;
}

function taken(name: string): HecateError {
  return new HecateError("already_exists", `A profile named "${name}" already exists`, {
    hint: "use 'hecate server edit' to change it",
  });
}

/** The vault policy's default complexity rule (a profile's own rule overrides it). */
function vaultComplexity(core: VaultCore): ComplexityRule {
  const p = core.policy();
  return { minLength: p.complexityMinLength, classes: p.complexityClasses };
}

/** The stored profile for an input, checked (as `add` stores it). */
function profileOf(
  input: ProfileInput,
  now: string,
  actor: Actor,
  reason: string,
  vaultDefault?: ComplexityRule,
): Profile {
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
    sources: input.sources && Object.keys(input.sources).length ? input.sources : undefined,
    incomplete: input.incomplete,
    history: firstHistory(actor, reason, now),
    complexity: input.complexity,
    rotateEveryMs: input.rotateEveryMs,
    created: now,
    updated: now,
  }) as Profile;
  settleIncomplete(profile);
  // Each reference through its source first: a malformed one is a usage error (exit 2).
  validateRefs(profile);
  validateProfile(profile);
  checkComplexity(profile, vaultDefault);
  providerFor(profile);
  return profile;
}
