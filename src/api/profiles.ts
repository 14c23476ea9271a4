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
  type SshProfile,
  type TlsProfile,
  validateName,
  validateProfile,
} from "../profile.ts";
import { providerFor, settleIncomplete } from "../../providers/mod.ts";
import type { IncompleteMarker } from "../incomplete.ts";
import type { VaultCore } from "./_core.ts";
import { writeAutoBackup } from "./backups.ts";
import { stripUndefined } from "./util.ts";

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
  /** Marks an imported profile that cannot be used until completed (src/incomplete.ts). */
  incomplete?: IncompleteMarker | undefined;
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
  /** A new name for the profile. */
  rename?: string;
}

/**
 * The profiles of an open vault (`vault.profiles`). Reading works with an API key (its scope
 * only); changes need the master password and are audited as `profile.add`, `profile.edit` and
 * `profile.remove`.
 *
 * @example
 * ```ts ignore
 * for (const p of vault.profiles.list()) console.log(p.name, p.engine, p.host);
 * console.log(vault.profiles.show("billing")); // secrets masked
 * await vault.profiles.edit("billing", { port: 6432 });
 * ```
 */
export class VaultProfiles {
  readonly #core: VaultCore;

  /** @internal Reached as `vault.profiles`. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  /**
   * Lists profiles without secrets, sorted by name (with an API key: only those in its scope).
   *
   * @returns Summaries.
   */
  list(): ProfileSummary[] {
    return this.#core.all().map(({ profile: p }) =>
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
  show(name: string): Record<string, unknown> {
    const { profile, totp } = this.#core.find(name);
    return { ...maskedProfile(profile), ...(totp ? { totp: "required" } : {}) };
  }

  /** Whether a profile of that name exists (with an API key: in its scope). */
  has(name: string): boolean {
    return this.#core.all().some((r) => r.profile.name === name);
  }

  /**
   * Adds a profile.
   *
   * @param input The profile's fields and secrets.
   * @throws {HecateError} `already_exists` for a taken name, `invalid_profile` for missing fields.
   */
  async add(input: ProfileInput): Promise<void> {
    await this.#core.audited("profile.add", input.name, async () => {
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
      await this.#core.mutate((state) => {
        if (this.#core.all(state).some((r) => r.profile.name === profile.name)) {
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
  async edit(name: string, changes: ProfileChanges): Promise<void> {
    await this.#core.audited("profile.edit", name, async () => {
      if (changes.rename !== undefined) validateName(changes.rename);
      await this.#core.mutate((state) => {
        const { id, profile, totp } = this.#core.find(name, state);
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
          if (this.#core.all(state).some((r) => r.profile.name === changes.rename)) {
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
  async remove(name: string): Promise<void> {
    await this.#core.audited("profile.remove", name, async () => {
      this.#core.find(name);
      await writeAutoBackup(this.#core, "profile-remove");
      await this.#core.mutate((state) => {
        state.deleteRecord(this.#core.find(name, state).id);
      });
    });
  }
}
