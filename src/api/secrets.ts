/**
 * `vault.secrets`: secrets that are not database logins (API tokens, webhook keys), each sealed
 * in its own record of kind `secret` (docs/FORMAT.md, "Secret JSON"), versioned like a profile's
 * secrets, and covered by API-key scopes: a key reads only the secrets named in its scope.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import type { ComplexityRule } from "../lifecycle/complexity.ts";
import { versionList } from "../lifecycle/history.ts";
import {
  type LifecycleDefaults,
  nextSecret,
  secretOf,
  type SecretRecord,
} from "../lifecycle/secret_record.ts";
import type { AuditEventName } from "../audit/events.ts";
import { recordKindOf, summaryKindOf } from "../vault/record_index.ts";
import type { ScopedVault } from "../vault/scoped.ts";
import { UnlockedVault } from "../vault/vault.ts";
import type { VaultCore } from "./_core.ts";
import { writeAutoBackup } from "./backups.ts";
import type { ProfileVersion } from "./profiles.ts";
import { reasonOf } from "./util.ts";
import type { SecretMapping } from "../run/env.ts";
import { spawnWithEnv } from "../run/spawn.ts";

/** A stored secret as listed: never its value. */
export interface SecretSummary {
  /** The secret's name. */
  name: string;
  /** Its current version (1 for the first value, one more per change). */
  version: number;
  /** ISO time of the last change. */
  updated: string;
}

/** Options for {@link VaultSecrets.set}. */
export interface SetSecretOptions {
  /** A complexity rule the secret keeps and every value must meet (`minLength`, `classes`). */
  complexity?: ComplexityRule | undefined;
  /** How many previous values to keep (0-100; default 5). */
  keep?: number | undefined;
  /** Vault-wide defaults for the rule and the number kept, where the secret sets none. */
  defaults?: LifecycleDefaults | undefined;
}

/**
 * The stored secrets of an open vault (`vault.secrets`). Setting and removing need the master
 * password; reading, listing and history work with an API key too, for the secrets in its scope
 * only. Every set, read, history and removal is audited with the secret's name, never its value.
 *
 * @example
 * ```ts ignore
 * await vault.secrets.set("stripe", token);
 * const value = await vault.secrets.get("stripe"); // audited as secret.read
 * ```
 */
export class VaultSecrets {
  readonly #core: VaultCore;

  /** @internal Reached as `vault.secrets`. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  /**
   * Stores a value as a secret's next version (the first one for a new secret); the value it
   * replaces is kept as a previous version. Audited as `secret.set`.
   *
   * @param name The secret's name (1-64 letters, digits, '.', '_' or '-').
   * @param value The value.
   * @param options A complexity rule and number of versions to keep.
   * @returns The version now current.
   * @throws {HecateError} `no_credential` with an API key, `invalid_profile` for a bad name,
   * `usage` for an empty, oversized or too weak value.
   */
  async set(name: string, value: string, options: SetSecretOptions = {}): Promise<number> {
    const core = this.#core;
    let version = 0;
    await core.audited("secret.set", undefined, async () => {
      await core.mutate(async (state) => {
        const id = state.recordIdByName(name, "secret");
        const before = id === undefined ? undefined : secretOf(await state.record(id));
        const next = nextSecret(before, name, value, core.actor, new Date().toISOString(), {
          ...options,
          defaults: options.defaults ?? policyDefaults(core),
        });
        version = next.history!.current.version;
        state.putRecord(next as unknown as Record<string, unknown>, id);
      });
    }, () => ({ secret: name, ...(version ? { version } : {}) }));
    return version;
  }

  /**
   * A secret's current value. The `secret.read` record is written before the value is released:
   * if it cannot be, nothing is.
   *
   * @param name The secret's name.
   * @returns The value.
   * @throws {HecateError} `profile_not_found` when there is no such secret, or it is outside an
   * API key's scope (the same answer: a key cannot tell the two apart).
   */
  async get(name: string): Promise<string> {
    const secret = await this.#reported("secret.read", name, () => this.#find(name));
    return secret.secrets.value.value;
  }

  /**
   * Runs a program with stored secrets in its environment and no profile (`hecate secret run`):
   * every secret is read first (each audited as `secret.read`, a missing one fails before anything
   * starts), then the program runs with this process's environment plus those variables (the
   * variables that unlock a vault withheld, as for `hecate run`), and the run is audited as `run`
   * with the program's name and exit code, never its arguments or environment.
   *
   * @param command The program (looked up on PATH).
   * @param args Its arguments.
   * @param mappings Which variable gets which secret.
   * @returns The program's exit code.
   * @throws {HecateError} `usage` without a mapping or when the program cannot start;
   * `profile_not_found` for a secret that is missing or out of scope.
   */
  async run(
    command: string,
    args: readonly string[],
    mappings: readonly SecretMapping[],
  ): Promise<number> {
    if (mappings.length === 0) {
      throw new HecateError("usage", "Name at least one secret to pass", {
        hint: "use --secret VAR=NAME (repeatable)",
      });
    }
    const env: Record<string, string> = {};
    for (const m of mappings) env[m.variable] = await this.get(m.secret);
    let code: number | undefined;
    let failure: unknown;
    try {
      code = await spawnWithEnv(command, args, env);
      return code;
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      const record = this.#core.audit.append({
        event: "run",
        actor: this.#core.actor,
        outcome: code === 0 ? "ok" : "fail",
        ...(failure !== undefined ? { reason: reasonOf(failure) } : {}),
        detail: {
          command,
          secrets: mappings.map((m) => m.secret).join(","),
          ...(code !== undefined ? { exit_code: code } : {}),
        },
      });
      if (failure === undefined) await record;
      else await record.catch(() => {});
    }
  }

  /**
   * The secrets readable in this session (with an API key: its scope), by name; never a value.
   *
   * @returns Name, version and time of the last change of each.
   */
  async list(): Promise<SecretSummary[]> {
    const out: SecretSummary[] = [];
    for (const s of await this.#all()) {
      const h = s.history;
      out.push({ name: s.name, version: h?.current.version ?? 1, updated: s.updated });
    }
    return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  /**
   * Every version of a secret: version, time, actor, reason; never a value. Audited as
   * `secret.history`.
   *
   * @param name The secret's name.
   * @returns Newest first, the current one marked.
   * @throws {HecateError} `profile_not_found` as for {@link VaultSecrets.get}.
   */
  async history(name: string): Promise<ProfileVersion[]> {
    const secret = await this.#reported("secret.history", name, () => this.#find(name));
    return versionList(secret);
  }

  /**
   * Removes a secret and every kept version of it (an automatic backup bundle is written first).
   * Audited as `secret.remove`.
   *
   * @param name The secret's name.
   * @throws {HecateError} `no_credential` with an API key, `profile_not_found` when there is no
   * such secret.
   */
  async remove(name: string): Promise<void> {
    const core = this.#core;
    await core.audited("secret.remove", undefined, async () => {
      await this.#find(name);
      await writeAutoBackup(core, "secret-remove");
      await core.mutate((state) => {
        const id = state.recordIdByName(name, "secret");
        if (id === undefined) throw notFound(name, false);
        state.deleteRecord(id);
      });
    }, () => ({ secret: name }));
  }

  /** Runs a read and audits it (ok or fail), the record written before anything is returned. */
  async #reported<T>(event: AuditEventName, name: string, fn: () => Promise<T>): Promise<T> {
    const base = { event, actor: this.#core.actor, detail: { secret: name } };
    let out: T;
    try {
      out = await fn();
    } catch (e) {
      await this.#core.audit.append({ ...base, outcome: "fail", reason: reasonOf(e) })
        .catch(() => {});
      throw e;
    }
    await this.#core.audit.append({ ...base, outcome: "ok" });
    return out;
  }

  /** The secret of this name readable in this session. */
  async #find(name: string): Promise<SecretRecord> {
    const state = this.#core.state;
    if (state instanceof UnlockedVault) {
      const id = state.recordIdByName(name, "secret");
      if (id !== undefined) return secretOf(await state.record(id));
    } else {
      const hit = scopedSecrets(state).find((v) => v.name === name);
      if (hit) return secretOf(hit);
    }
    throw notFound(name, this.#core.actor.kind === "apikey");
  }

  /** Every secret readable in this session. */
  async #all(): Promise<SecretRecord[]> {
    const state = this.#core.state;
    if (state instanceof UnlockedVault) {
      const out: SecretRecord[] = [];
      for (const { id, summary } of state.summaries()) {
        if (summaryKindOf(summary) === "secret") out.push(secretOf(await state.record(id)));
      }
      return out;
    }
    return scopedSecrets(state).map((v) => secretOf(v));
  }
}

/** The secret records an API key's scope holds. */
function scopedSecrets(state: ScopedVault): Record<string, unknown>[] {
  return state.records().map((r) => r.value).filter((v) => recordKindOf(v) === "secret");
}

function notFound(name: string, apiKey: boolean): HecateError {
  return new HecateError("profile_not_found", `No secret named "${name}"`, {
    hint: apiKey
      ? "this API key may read only the secrets in its scope"
      : "list secrets with 'hecate secret list'",
  });
}

/** The vault policy's defaults for stored secrets (a 0 in the policy means "no requirement"). */
function policyDefaults(core: VaultCore): LifecycleDefaults {
  const p = core.policy();
  const complexity = {
    ...(p.complexityMinLength ? { minLength: p.complexityMinLength } : {}),
    ...(p.complexityClasses ? { classes: p.complexityClasses } : {}),
  };
  return {
    keep: p.historyKeep,
    ...(complexity.minLength || complexity.classes ? { complexity } : {}),
  };
}
