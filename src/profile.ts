/**
 * Connection profiles: what is stored per server, how it is validated, and how it is shown with
 * secrets masked.
 *
 * @module
 */

import type { Engine } from "./db/driver.ts";
import { HecateError } from "./errors.ts";
import { type IncompleteMarker, incompleteOf } from "./incomplete.ts";
import type { ProfileHistory } from "./lifecycle/history.ts";

/**
 * A stored secret: the value itself, a reference resolved at connect time, or several references
 * in priority order (the first source that answers wins; see docs/SOURCES.md).
 *
 * @example
 * ```ts
 * import type { SecretValue } from "./profile.ts";
 * const stored: SecretValue = { ref: "env:BILLING_PW" };
 * const failover: SecretValue = { refs: ["vault:secret/billing#password", "file:/run/pw"] };
 * console.log(stored, failover);
 * ```
 */
export type SecretValue = { value: string } | { ref: string } | { refs: string[] };

/**
 * The references of a stored secret, in priority order; undefined for a stored value.
 *
 * @param s The stored secret.
 * @returns The references, or undefined.
 */
export function refsOf(s: SecretValue): readonly string[] | undefined {
  if ("refs" in s) return s.refs;
  if ("ref" in s) return [s.ref];
  return undefined;
}

/**
 * How a profile uses secret sources beyond single references (docs/SOURCES.md).
 *
 * @example
 * ```ts
 * import type { SourceSettings } from "./profile.ts";
 * const s: SourceSettings = { from: ["vault:secret/billing"], timeoutMs: 2000, cacheTtlMs: 3_600_000 };
 * console.log(s);
 * ```
 */
export interface SourceSettings {
  /**
   * Whole-connection secrets in priority order: the first that answers gives `host`, `port`,
   * `dbname`/`database`, `username`/`user` and `password`; the profile's own fields override them.
   */
  from?: string[];
  /** Milliseconds each source may take before the next is tried. @default {5000} */
  timeoutMs?: number;
  /** Keep the last resolved values, sealed, for this long, for use when every source fails. */
  cacheTtlMs?: number;
}

/**
 * TLS settings stored in a profile.
 *
 * @example
 * ```ts
 * import type { TlsProfile } from "./profile.ts";
 * const tls: TlsProfile = { mode: "verify", caFile: "/etc/ssl/db-ca.pem" };
 * console.log(tls.mode);
 * ```
 */
export interface TlsProfile {
  /** `verify` (default), `insecure` (encrypt, no verification; warned) or `disable`. */
  mode: "verify" | "insecure" | "disable";
  /** CA bundle file for verifying the server. */
  caFile?: string;
  /**
   * PostgreSQL and MySQL: answer a request for the password itself (PostgreSQL cleartext or MD5;
   * MySQL cleartext, or `caching_sha2_password` full authentication with an RSA key the server
   * sends) also when TLS is not verified (like libpq's `require_auth`, which this relaxes). Off by
   * default: see docs/SECURITY.md.
   */
  allowPlainAuth?: boolean;
}

/** How an SSH hop authenticates. */
export type SshAuth = "password" | "key" | "agent";

/** One SSH server on the way to the database (a bastion or a jump host). */
export interface SshHop {
  /** Host name or address of the SSH server. */
  host: string;
  /** SSH port. @default {22} */
  port?: number;
  /** Login name on the SSH server. */
  user: string;
  /** `password` (secret `ssh.N.password`), `key` (`keyFile`, optional secret
   * `ssh.N.passphrase`) or `agent` (`SSH_AUTH_SOCK`). */
  auth: SshAuth;
  /** Private key file (OpenSSH or PEM) for `auth: "key"`. */
  keyFile?: string;
  /** Pinned host key fingerprint, `SHA256:` + unpadded base64; when set, known_hosts is not read. */
  hostKey?: string;
}

/** An SSH tunnel in front of the database: hops in path order, the last one forwards to it. */
export interface SshProfile {
  /** The SSH servers in path order; the last one forwards to the database. */
  hops: SshHop[];
  /** Accept an unknown host key once and pin it in the profile (like `accept-new`). */
  acceptNew?: boolean;
  /** known_hosts file to verify against. @default {$HECATE_KNOWN_HOSTS or ~/.ssh/known_hosts} */
  knownHostsFile?: string;
  /** Milliseconds between keepalives. @default {15000} */
  keepaliveMs?: number;
  /** Unanswered keepalives before the tunnel counts as dead. @default {3} */
  keepaliveCountMax?: number;
  /** Milliseconds to wait for each SSH handshake and login. @default {the connect timeout} */
  readyTimeoutMs?: number;
}

/** A connection profile as stored in one vault record. */
export interface Profile {
  name: string;
  engine: Engine;
  host?: string;
  port?: number;
  /** Database name; for SQLite, the database file path. */
  database?: string;
  user?: string;
  /** Authentication method; see providers/. */
  auth: string;
  /** Method-specific non-secret fields (e.g. `domain`, `certFile`, `tenantId`). */
  params?: Record<string, string>;
  tls: TlsProfile;
  /** Milliseconds to wait for connect and login. */
  connectTimeoutMs?: number;
  tags?: string[];
  /** An SSH tunnel in front of the database (any engine but SQLite). */
  ssh?: SshProfile;
  /** Secret fields by name (e.g. `password`, `ssh.0.password`). */
  secrets: Record<string, SecretValue>;
  /** Whole-connection secrets, source timeout and offline cache (docs/SOURCES.md). */
  sources?: SourceSettings;
  /**
   * Set on an imported profile that cannot be used yet: what is missing (see src/incomplete.ts).
   * Every use is refused until `hecate server edit` supplies it, which removes the marker.
   */
  incomplete?: IncompleteMarker;
  /** Previous secrets, sealed with the record, and who changed them (src/lifecycle/history.ts). */
  history?: ProfileHistory;
  created: string;
  updated: string;
}

/** The engines this build accepts in profiles. */
export const ENGINES: readonly Engine[] = ["sqlite", "postgres", "mysql", "mssql"];

/** Default ports per engine. */
export const DEFAULT_PORTS: Record<Engine, number | undefined> = {
  sqlite: undefined,
  postgres: 5432,
  mysql: 3306,
  mssql: 1433,
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Checks a profile name: 1 to 64 letters, digits, `.`, `_`, `-`, starting with a letter or digit.
 *
 * @param name The name.
 * @throws {HecateError} `invalid_profile` when it does not fit.
 */
export function validateName(name: string): void {
  if (!NAME.test(name)) {
    throw new HecateError(
      "invalid_profile",
      `Invalid profile name "${name.slice(0, 80)}": use 1-64 letters, digits, '.', '_' or '-'`,
    );
  }
}

function invalid(name: string, what: string): HecateError {
  return new HecateError("invalid_profile", `Profile "${name}" is invalid: ${what}`);
}

/**
 * Checks the fields every profile needs, independent of the authentication method.
 *
 * @param p The profile.
 * @throws {HecateError} `invalid_profile` naming the first problem.
 */
export function validateProfile(p: Profile): void {
  validateName(p.name);
  if (!ENGINES.includes(p.engine)) throw invalid(p.name, `unknown engine "${p.engine}"`);
  if (p.engine === "sqlite") {
    if (!p.database) throw invalid(p.name, "missing field 'database' (the SQLite file path)");
    if (p.ssh) throw invalid(p.name, "an SSH tunnel cannot lead to a SQLite file");
    return;
  }
  // An incomplete profile (src/incomplete.ts) may lack the fields its marker names.
  // A whole-connection secret (`sources.from`) may supply the host at connect time.
  if (!p.host && !p.incomplete?.missing.includes("host") && !p.sources?.from?.length) {
    throw invalid(p.name, "missing field 'host'");
  }
  if (p.port !== undefined && (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535)) {
    throw invalid(p.name, `port ${p.port} is not between 1 and 65535`);
  }
  if (!["verify", "insecure", "disable"].includes(p.tls.mode)) {
    throw invalid(p.name, `unknown TLS mode "${p.tls.mode}"`);
  }
  if (p.tls.allowPlainAuth !== undefined && typeof p.tls.allowPlainAuth !== "boolean") {
    throw invalid(p.name, "tls.allowPlainAuth must be true or false");
  }
  if (p.ssh !== undefined) validateSsh(p);
  for (const [field, s] of Object.entries(p.secrets)) {
    if (
      "refs" in s && (!Array.isArray(s.refs) || s.refs.length === 0 || s.refs.length > MAX_REFS)
    ) {
      throw invalid(p.name, `secret '${field}' must list 1 to ${MAX_REFS} references`);
    }
    for (const ref of refsOf(s) ?? []) {
      if (typeof ref !== "string" || !REF.test(ref)) {
        throw invalid(p.name, `secret '${field}' has a malformed reference`);
      }
    }
  }
  if (p.sources !== undefined) validateSources(p);
  const every = (p as { rotateEveryMs?: unknown }).rotateEveryMs;
  if (every !== undefined && !positiveInt(every)) {
    throw invalid(p.name, "rotateEveryMs must be a positive whole number");
  }
}

const REF = /^[a-z][a-z0-9-]*:.+/;
/** At most this many references per secret field (and `--from` entries). */
export const MAX_REFS = 8;

function validateSources(p: Profile): void {
  const s = p.sources!;
  if (typeof s !== "object" || s === null) throw invalid(p.name, "'sources' must be an object");
  if (s.from !== undefined) {
    if (!Array.isArray(s.from) || s.from.length === 0 || s.from.length > MAX_REFS) {
      throw invalid(p.name, `sources.from must list 1 to ${MAX_REFS} references`);
    }
    for (const ref of s.from) {
      if (typeof ref !== "string" || !REF.test(ref)) {
        throw invalid(p.name, "sources.from has a malformed reference");
      }
    }
  }
  for (const f of ["timeoutMs", "cacheTtlMs"] as const) {
    if (s[f] !== undefined && !positiveInt(s[f])) {
      throw invalid(p.name, `sources.${f} must be a positive whole number`);
    }
  }
}

/** The OpenSSH form of a SHA-256 host key fingerprint. */
export const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

const SSH_AUTHS: readonly SshAuth[] = ["password", "key", "agent"];

function positiveInt(v: unknown): boolean {
  return typeof v === "number" && Number.isInteger(v) && v > 0;
}

/** Checks the `ssh` field: every hop complete, its secrets present. */
function validateSsh(p: Profile): void {
  const ssh = p.ssh!;
  if (!Array.isArray(ssh.hops) || ssh.hops.length === 0) {
    throw invalid(p.name, "missing field 'ssh.hops' (at least one SSH server)");
  }
  if (ssh.hops.length > 8) throw invalid(p.name, "more than 8 SSH hops");
  for (const [i, h] of ssh.hops.entries()) {
    const at = `ssh.hops[${i}]`;
    if (!h || typeof h.host !== "string" || !h.host) {
      throw invalid(p.name, `missing field '${at}.host'`);
    }
    if (typeof h.user !== "string" || !h.user) throw invalid(p.name, `missing field '${at}.user'`);
    if (h.port !== undefined && (!Number.isInteger(h.port) || h.port < 1 || h.port > 65535)) {
      throw invalid(p.name, `${at}.port ${h.port} is not between 1 and 65535`);
    }
    if (!SSH_AUTHS.includes(h.auth)) {
      throw invalid(p.name, `${at}.auth must be one of ${SSH_AUTHS.join(", ")}`);
    }
    if (h.auth === "key" && !h.keyFile) throw invalid(p.name, `missing field '${at}.keyFile'`);
    if (h.auth === "password" && !p.secrets[`ssh.${i}.password`]) {
      throw invalid(p.name, `missing secret 'ssh.${i}.password'`);
    }
    if (h.hostKey !== undefined && !FINGERPRINT.test(h.hostKey)) {
      throw invalid(
        p.name,
        `${at}.hostKey is not a fingerprint like SHA256:<43 base64 characters>`,
      );
    }
  }
  for (const f of ["keepaliveMs", "keepaliveCountMax", "readyTimeoutMs"] as const) {
    if (ssh[f] !== undefined && !positiveInt(ssh[f])) {
      throw invalid(p.name, `ssh.${f} must be a positive whole number`);
    }
  }
}

/**
 * Returns a copy of the profile fit to print: secret values replaced by `********`, references
 * shown (they name where a secret lives, not the secret).
 *
 * @param p The profile.
 * @returns A plain object safe for output.
 */
export function maskedProfile(p: Profile): Record<string, unknown> {
  // References name where a secret lives, not the secret; several are shown space-separated.
  const secrets: Record<string, string> = {};
  for (const [k, s] of Object.entries(p.secrets)) {
    secrets[k] = "value" in s ? "********" : refsOf(s)!.join(" ");
  }
  // The history holds old secret values: only the current version number is shown.
  // So does a pending rotation: only that there is one.
  const { secrets: _, history, pending, ...rest } = p as Profile & { pending?: unknown };
  return {
    ...rest,
    secrets,
    ...(history ? { version: history.current?.version } : {}),
    ...(pending ? { pending: "rotation not settled" } : {}),
  };
}

/**
 * Reads a profile back from a stored record, checking its shape.
 *
 * @param value The record's JSON object.
 * @returns The profile.
 * @throws {HecateError} `vault_integrity` when the record is not a profile.
 */
export function profileFromRecord(value: Record<string, unknown>): Profile {
  if (typeof value.name !== "string" || typeof value.engine !== "string") {
    throw new HecateError("vault_integrity", "A vault record is not a valid profile");
  }
  if (value.incomplete !== undefined) {
    // A malformed marker still keeps the profile from being used (fail closed).
    const marker = incompleteOf(value.incomplete) ?? { source: "", reason: "", missing: [] };
    return { ...value, incomplete: marker } as unknown as Profile;
  }
  return value as unknown as Profile;
}
