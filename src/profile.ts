/**
 * Connection profiles: what is stored per server, how it is validated, and how it is shown with
 * secrets masked.
 *
 * @module
 */

import type { Engine } from "./db/driver.ts";
import { HecateError } from "./errors.ts";

/**
 * A stored secret: the value itself, or a reference resolved at connect time.
 *
 * @example
 * ```ts
 * import type { SecretValue } from "./profile.ts";
 * const stored: SecretValue = { ref: "env:BILLING_PW" };
 * console.log(stored);
 * ```
 */
export type SecretValue = { value: string } | { ref: string };

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
  /** Secret fields by name (e.g. `password`). */
  secrets: Record<string, SecretValue>;
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
    return;
  }
  if (!p.host) throw invalid(p.name, "missing field 'host'");
  if (p.port !== undefined && (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535)) {
    throw invalid(p.name, `port ${p.port} is not between 1 and 65535`);
  }
  if (!["verify", "insecure", "disable"].includes(p.tls.mode)) {
    throw invalid(p.name, `unknown TLS mode "${p.tls.mode}"`);
  }
  for (const [field, s] of Object.entries(p.secrets)) {
    if ("ref" in s && !/^[a-z][a-z0-9-]*:.+/.test(s.ref)) {
      throw invalid(p.name, `secret '${field}' has a malformed reference`);
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
  const secrets: Record<string, string> = {};
  for (const [k, s] of Object.entries(p.secrets)) secrets[k] = "ref" in s ? s.ref : "********";
  const { secrets: _, ...rest } = p;
  return { ...rest, secrets };
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
  return value as unknown as Profile;
}
