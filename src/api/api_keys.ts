/**
 * `vault.apiKeys`: API keys that open a scope of profiles read-only.
 *
 * @module
 */

import { apiKeyLastUsed, forgetApiKey } from "../access/apikey_state.ts";
import { HecateError } from "../errors.ts";
import type { ApiKeyPolicy } from "../vault/apikey.ts";
import type { VaultCore } from "./_core.ts";

/** An API key as listed: never the key text. */
export interface ApiKeySummary {
  /** Key id (the middle part of the key text; not a secret). */
  id: string;
  /** The key's name. */
  name: string;
  /** Profile names in scope (a removed profile or secret shows as `(removed)`). */
  profiles: string[];
  /** Stored secret names in scope (`hecate secret`). */
  secrets: string[];
  /** ISO time of creation. */
  created: string;
  /** ISO time, or null for never. */
  expires: string | null;
  /** ISO time of the last successful use, if any (informational, see docs/SECURITY.md). */
  lastUsed: string | null;
  /** Zero-trust checks the gateway applies (empty: none). */
  policy: ApiKeyPolicy;
}

/** Options for {@link VaultApiKeys.create}. */
export interface CreateApiKeyOptions {
  /** Unique name. */
  name: string;
  /** Profile names the key may use. */
  profiles: string[];
  /** Stored secrets the key may read (`hecate secret`); none when left out. */
  secrets?: string[] | undefined;
  /** Expiry time, or null for never. */
  expires: Date | null;
  /** Zero-trust checks for the gateway (client CIDRs, User-Agent pattern, rate). */
  policy?: ApiKeyPolicy | undefined;
}

/**
 * The API keys of an open vault (`vault.apiKeys`); all need the master password. Creating and
 * revoking are audited as `apikey.create` and `apikey.revoke`.
 *
 * @example
 * ```ts ignore
 * const key = await vault.apiKeys.create({ name: "ci", profiles: ["billing"], expires: null });
 * console.log((await vault.apiKeys.list()).length); // never the key text
 * await vault.apiKeys.revoke("ci");
 * ```
 */
export class VaultApiKeys {
  readonly #core: VaultCore;

  /** @internal Reached as `vault.apiKeys`. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  /**
   * Creates an API key for some profiles. Its slot wraps only those profiles' data keys.
   *
   * @param options Name, profiles, expiry.
   * @returns The key text: show it once; it is stored nowhere.
   * @throws {HecateError} `already_exists`, `profile_not_found` (a profile or secret named does
   * not exist), `usage` (empty name or scope).
   */
  async create(options: CreateApiKeyOptions): Promise<string> {
    const core = this.#core;
    let text = "";
    await core.audited("apikey.create", undefined, async () => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(options.name)) {
        throw new HecateError("usage", "An API key name is 1-64 letters, digits, '.', '_' or '-'");
      }
      if (options.profiles.length === 0 && (options.secrets ?? []).length === 0) {
        throw new HecateError(
          "usage",
          "An API key needs at least one profile or secret in its scope",
        );
      }
      await core.mutate(async (state) => {
        const scope: string[] = [];
        for (const n of options.profiles) scope.push((await core.find(n, state)).id);
        for (const n of options.secrets ?? []) {
          const id = state.recordIdByName(n, "secret");
          if (id === undefined) {
            throw new HecateError("profile_not_found", `No secret named "${n}"`, {
              hint: "list secrets with 'hecate secret list'",
            });
          }
          scope.push(id);
        }
        text = await state.addApiKey({
          name: options.name,
          scope,
          created: core.access.now(),
          expires: options.expires,
          policy: options.policy,
        });
      });
    }, () => ({
      key_name: options.name,
      scope: [...options.profiles],
      ...(options.secrets?.length ? { secrets: [...options.secrets] } : {}),
    }));
    return text;
  }

  /**
   * Lists API keys: names, scopes, times; never the key text.
   *
   * @param options `profile`: only the keys whose scope includes that profile.
   * @returns The keys, oldest first.
   * @throws {HecateError} `profile_not_found` when `profile` names no profile.
   */
  async list(options: { profile?: string | undefined } = {}): Promise<ApiKeySummary[]> {
    const core = this.#core;
    const state = core.unlocked();
    const names = new Map(core.summaries(state).map((r) => [r.id, String(r.summary.name)]));
    const secretNames = new Map(
      state.summaries().filter((r) => r.summary.kind === "secret")
        .map((r) => [r.id, String(r.summary.name)]),
    );
    // By record id, not name: the scope stores ids, and no record needs decrypting for this.
    const only = options.profile === undefined ? undefined : state.recordIdByName(options.profile);
    if (options.profile !== undefined && only === undefined) {
      throw new HecateError("profile_not_found", `No profile named "${options.profile}"`, {
        hint: "list profiles with 'hecate server list'",
      });
    }
    const used = await apiKeyLastUsed(core.home);
    const keys = only === undefined
      ? state.apiKeys()
      : state.apiKeys().filter((k) => k.scope.includes(only));
    return keys.map((k) => ({
      id: k.id,
      name: k.name,
      profiles: k.scope.filter((id) => !secretNames.has(id))
        .map((id) => names.get(id) ?? "(removed)"),
      secrets: k.scope.flatMap((id) => secretNames.has(id) ? [secretNames.get(id)!] : []),
      created: k.created,
      expires: k.expires,
      lastUsed: used[k.id] ?? null,
      policy: k.policy ?? {},
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
  async revoke(name: string): Promise<void> {
    const core = this.#core;
    let id = "";
    await core.audited("apikey.revoke", undefined, async () => {
      await core.mutate((state) => {
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
    await forgetApiKey(core.home, id).catch(() => {});
  }
}
