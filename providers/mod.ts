/**
 * Authentication providers: each turns a profile and its resolved secrets into the credential part
 * of a driver's connection settings. One registry, chosen by the profile's `auth` field.
 *
 * @module
 */

import type { ConnectSettings, Engine } from "../src/db/driver.ts";
import { HecateError } from "../src/errors.ts";
import { DEFAULT_PORTS, type Profile, refsOf } from "../src/profile.ts";
import { incompleteError } from "../src/incomplete.ts";
import { type HeldLease, type ResolveOptions, resolveProfile } from "./sources/resolve.ts";
import { sourceFor } from "./sources/registry.ts";
import { windowsLogin } from "./windows.ts";
import { tokenLogin } from "./token.ts";
import { certificateAuth } from "./certificate.ts";

/** One authentication method. */
export interface AuthProvider {
  /** The `auth` value that selects this provider. */
  readonly type: string;
  /** Engines it supports. */
  readonly engines: readonly Engine[];
  /** Secret fields it needs, in the order a prompt asks for them. */
  readonly secretFields: readonly string[];
  /** Secret fields it can use but does not need (e.g. a key passphrase). */
  readonly optionalSecretFields?: readonly string[];
  /** Non-secret profile fields it needs. */
  readonly requiredFields: readonly ("host" | "user" | "database")[];
  /** Method-specific non-secret fields it needs in `profile.params` (e.g. `domain`). */
  readonly requiredParams?: readonly string[];
  /**
   * For methods whose fields depend on a param (e.g. the token mode): the fields for these params,
   * replacing `requiredParams`, `secretFields` and `optionalSecretFields`.
   */
  fieldsFor?(params: Readonly<Record<string, string>>): ProviderFields;
  /**
   * Checks rules that the field lists cannot express (e.g. one of a fixed set, one of two fields).
   *
   * @throws {HecateError} `invalid_profile` naming the field.
   */
  validate?(profile: Profile): void;
  /**
   * Which optional secret fields a profile with these params needs (e.g. a pass phrase because
   * the key file is encrypted); asked for when a profile is added.
   */
  wantedOptionalSecrets?(params: Readonly<Record<string, string>>): Promise<readonly string[]>;
  /**
   * Builds the credential part of the settings. May do I/O (e.g. fetch a token).
   *
   * @param profile The profile.
   * @param secrets Resolved secrets by field.
   */
  credentials(
    profile: Profile,
    secrets: Record<string, string>,
  ): Partial<ConnectSettings> | Promise<Partial<ConnectSettings>>;
}

/** The fields a provider needs for given params. */
export interface ProviderFields {
  requiredParams: readonly string[];
  secretFields: readonly string[];
  optionalSecretFields?: readonly string[];
}

/**
 * The fields a provider needs for a profile's params.
 *
 * @param provider The provider.
 * @param params The profile's params.
 * @returns Required params, required and optional secret fields.
 */
export function fieldsOf(
  provider: AuthProvider,
  params: Readonly<Record<string, string>> = {},
): ProviderFields {
  if (provider.fieldsFor) return provider.fieldsFor(params);
  return {
    requiredParams: provider.requiredParams ?? [],
    secretFields: provider.secretFields,
    ...(provider.optionalSecretFields
      ? { optionalSecretFields: provider.optionalSecretFields }
      : {}),
  };
}

/** SQL login: user name and password, for every engine with logins. */
export const sqlLogin: AuthProvider = {
  type: "sql",
  engines: ["postgres", "mysql", "mssql"],
  secretFields: ["password"],
  requiredFields: ["host", "user"],
  credentials: (p, s) => ({
    ...(p.user !== undefined ? { user: p.user } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
  }),
};

/** No credential: SQLite files, guarded by file permissions. */
export const noAuth: AuthProvider = {
  type: "none",
  engines: ["sqlite"],
  secretFields: [],
  requiredFields: ["database"],
  credentials: () => ({}),
};

const providers = new Map<string, AuthProvider>(
  [sqlLogin, noAuth, windowsLogin, tokenLogin, certificateAuth].map((p) => [p.type, p]),
);

/**
 * Registers an authentication provider.
 *
 * @param provider The provider.
 */
export function registerProvider(provider: AuthProvider): void {
  providers.set(provider.type, provider);
}

/**
 * Returns the provider registered for an `auth` value.
 *
 * @param type The method name.
 * @returns The provider, or undefined.
 */
export function providerByType(type: string): AuthProvider | undefined {
  return providers.get(type);
}

/**
 * Looks up the provider for a profile and checks the profile has what it needs.
 *
 * @param profile The profile.
 * @returns Its provider.
 * @throws {HecateError} `invalid_profile` naming the unknown method or the missing field.
 */
export function providerFor(profile: Profile): AuthProvider {
  const p = providers.get(profile.auth);
  if (!p) {
    throw new HecateError(
      "invalid_profile",
      `Profile "${profile.name}" is invalid: unknown auth method "${profile.auth}" (known: ${
        [...providers.keys()].join(", ")
      })`,
    );
  }
  if (!p.engines.includes(profile.engine)) {
    throw new HecateError(
      "invalid_profile",
      `Profile "${profile.name}" is invalid: auth "${p.type}" does not work with engine "${profile.engine}"`,
    );
  }
  // An incomplete profile may lack what its marker names; it is refused at use instead. Fields a
  // secret source supplies at connect time (docs/SOURCES.md) are not required in the profile.
  const excused = new Set([...(profile.incomplete?.missing ?? []), ...suppliedBySources(profile)]);
  for (const f of p.requiredFields) {
    if (!profile[f] && !excused.has(f)) {
      throw new HecateError(
        "invalid_profile",
        `Profile "${profile.name}" is invalid: missing field '${f}'`,
      );
    }
  }
  const fields = fieldsOf(p, profile.params);
  for (const f of fields.requiredParams) {
    if (!profile.params?.[f] && !excused.has(`params.${f}`)) {
      throw new HecateError(
        "invalid_profile",
        `Profile "${profile.name}" is invalid: missing field '${f}' for auth "${p.type}"`,
      );
    }
  }
  for (const f of fields.secretFields) {
    if (!profile.secrets[f] && !excused.has(`secrets.${f}`)) {
      throw new HecateError(
        "invalid_profile",
        `Profile "${profile.name}" is invalid: missing secret '${f}' for auth "${p.type}"`,
      );
    }
  }
  // The method's own rules are checked once the profile is complete.
  if (profile.incomplete) return p;
  p.validate?.(profile);
  return p;
}

/**
 * The profile fields that its secret sources supply at connect time: everything of the common
 * shape for a profile with `sources.from`; the user when the password comes from a dynamic
 * source (its login is made for each use).
 *
 * @param profile The profile.
 * @returns Items as {@link missingFor} names them (`host`, `user`, `secrets.password`, ...).
 */
export function suppliedBySources(profile: Profile): string[] {
  if (profile.sources?.from?.length) return ["host", "user", "database", "secrets.password"];
  const pw = profile.secrets.password;
  const refs = pw ? refsOf(pw) : undefined;
  if (refs?.some((r) => sourceFor(r.slice(0, r.indexOf(":")))?.dynamic)) return ["user"];
  return [];
}

/**
 * What a profile lacks for its method (items as in src/incomplete.ts: `host`, `user`,
 * `params.NAME`, `secrets.NAME`). An unknown method or engine is not "missing":
 * {@link providerFor} reports those.
 *
 * @param profile The profile.
 * @returns The missing items, in the order a person would supply them.
 */
export function missingFor(profile: Profile): string[] {
  const p = providers.get(profile.auth);
  const out: string[] = [];
  const supplied = new Set(suppliedBySources(profile));
  if (profile.engine !== "sqlite" && !profile.host && !supplied.has("host")) out.push("host");
  if (!p || !p.engines.includes(profile.engine)) return out;
  for (const f of p.requiredFields) {
    if (!profile[f] && !out.includes(f) && !supplied.has(f)) out.push(f);
  }
  const fields = fieldsOf(p, profile.params);
  for (const f of fields.requiredParams) if (!profile.params?.[f]) out.push(`params.${f}`);
  for (const f of fields.secretFields) {
    if (!profile.secrets[f] && !supplied.has(`secrets.${f}`)) out.push(`secrets.${f}`);
  }
  return out;
}

/**
 * Brings an incomplete profile's marker up to date before it is stored: what is still missing
 * for its (possibly changed) method, plus an SSH tunnel the source named but that is still
 * absent. When nothing is missing any more the marker is removed, and the profile is checked
 * like any other from then on. Profiles without a marker are left alone.
 *
 * @param profile The profile about to be stored (changed in place).
 */
export function settleIncomplete(profile: Profile): void {
  const marker = profile.incomplete;
  if (!marker) return;
  const missing = missingFor(profile);
  if (marker.missing.includes("ssh") && !profile.ssh) missing.push("ssh");
  if (missing.length === 0) delete profile.incomplete;
  else profile.incomplete = { ...marker, missing };
}

/** Options for {@link resolveConnection}. */
export interface ConnectSettingsOptions extends ResolveOptions {
  /** Default connect timeout in milliseconds. @default {15000} */
  connectTimeoutMs?: number;
}

/** Driver settings with the leases their secrets hold. */
export interface ResolvedConnection {
  /** Settings ready for a driver (secrets in clear, in memory only). */
  settings: ConnectSettings;
  /** Tunnel secrets (`ssh.N.*`) resolved with the rest, for the SSH hops. */
  secrets: Record<string, string>;
  /**
   * Leases on dynamic credentials obtained for these settings: the caller keeps them alive while
   * the settings are in use and revokes them after (the lease keeper does both).
   */
  leases: HeldLease[];
}

/**
 * Resolves a profile's secrets through their sources (failover, timeout, cache, audit hook) and
 * builds complete driver settings. Connection fields of `sources.from` fill what the profile does
 * not set itself; a dynamic password source supplies the user.
 *
 * @param profile The profile.
 * @param options Defaults and resolution options.
 * @returns The settings, the resolved tunnel secrets and the leases held.
 * @throws {HecateError} `invalid_profile` for an incomplete profile (with the command that
 * completes it) or a missing field, `secret_unresolved`.
 */
export async function resolveConnection(
  profile: Profile,
  options: ConnectSettingsOptions = {},
): Promise<ResolvedConnection> {
  // Every use (connect, query, run, env, server test, the library) comes through here.
  if (profile.incomplete) throw incompleteError(profile.name, profile.incomplete);
  const provider = providerFor(profile);
  const resolved = await resolveProfile(profile, options);
  const from = resolved.from ?? {};
  const secrets = { ...resolved.secrets };
  if (secrets.password === undefined && from.password !== undefined) {
    secrets.password = from.password;
  }
  // The profile's own fields override the whole-connection secret; a dynamic login's user wins
  // over both, since the login exists only under that name.
  const user = resolved.user ?? profile.user ?? from.user;
  const effective: Profile = {
    ...profile,
    ...(profile.host ?? from.host ? { host: profile.host ?? from.host } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(profile.database ?? from.database ? { database: profile.database ?? from.database } : {}),
  };
  const port = profile.port ?? from.port ?? DEFAULT_PORTS[profile.engine];
  const settings: ConnectSettings = {
    engine: profile.engine,
    ...(effective.host !== undefined ? { host: effective.host } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(effective.database !== undefined ? { database: effective.database } : {}),
    tls: {
      mode: profile.tls.mode,
      ...(profile.tls.caFile ? { caFile: profile.tls.caFile } : {}),
      ...(profile.tls.allowPlainAuth === true ? { allowPlainAuth: true } : {}),
    },
    connectTimeoutMs: profile.connectTimeoutMs ?? options.connectTimeoutMs ?? 15_000,
    ...(await provider.credentials(effective, secrets)),
  };
  return { settings, secrets, leases: resolved.leases };
}

/**
 * Resolves a profile's secrets and builds complete driver settings, for callers that hold no
 * lease (tests, tools): use {@link resolveConnection} where a source may hand out dynamic
 * credentials, so their leases can be renewed and revoked.
 *
 * @param profile The profile.
 * @param options Defaults.
 * @returns Settings ready for a driver (secrets in clear, in memory only).
 * @throws {HecateError} `invalid_profile`, `secret_unresolved`.
 */
export async function connectSettings(
  profile: Profile,
  options: ConnectSettingsOptions = {},
): Promise<ConnectSettings> {
  return (await resolveConnection(profile, options)).settings;
}
