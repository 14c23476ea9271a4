/**
 * The environment variables that carry a profile's connection to another program (`hecate run`,
 * `hecate env`): each engine's own client variables, a `DATABASE_URL`, Hecate's `HECATE_*` names,
 * and mappings the caller asks for (`--env NAME=field`). Pure: no I/O.
 *
 * @module
 */

import type { ConnectSettings } from "../db/driver.ts";
import { HecateError } from "../errors.ts";

/**
 * Fields a `--env NAME=field` mapping can name.
 *
 * @example
 * ```ts
 * import { ENV_FIELDS } from "./env.ts";
 * console.log(ENV_FIELDS.includes("url")); // true
 * ```
 */
export const ENV_FIELDS = [
  "profile",
  "engine",
  "host",
  "port",
  "database",
  "user",
  "password",
  "url",
  "sslmode",
] as const;

/**
 * One of {@link ENV_FIELDS}.
 *
 * @example
 * ```ts
 * import type { EnvField } from "./env.ts";
 * const field: EnvField = "password";
 * console.log(field);
 * ```
 */
export type EnvField = typeof ENV_FIELDS[number];

/**
 * A `--env NAME=field` mapping.
 *
 * @example
 * ```ts ignore
 * await vault.run("billing", "./job.sh", [], { env: [{ name: "DB_PASS", field: "password" }] });
 * ```
 */
export interface EnvMapping {
  /** The variable to set. */
  name: string;
  /** The field whose value it gets. */
  field: EnvField;
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses `NAME=field`.
 *
 * @param text The option value.
 * @returns The mapping.
 * @throws {HecateError} `usage` for a malformed name or an unknown field.
 *
 * @example
 * ```ts
 * import { parseEnvMapping } from "./env.ts";
 * console.log(parseEnvMapping("DB_URL=url")); // { name: "DB_URL", field: "url" }
 * ```
 */
export function parseEnvMapping(text: string): EnvMapping {
  const at = text.indexOf("=");
  const name = at < 0 ? text : text.slice(0, at);
  const field = at < 0 ? "" : text.slice(at + 1);
  if (!VAR_NAME.test(name)) {
    throw new HecateError("usage", `Invalid variable name in --env "${text.slice(0, 80)}"`, {
      hint: "use --env NAME=field, NAME made of letters, digits and '_'",
    });
  }
  if (!(ENV_FIELDS as readonly string[]).includes(field)) {
    throw new HecateError("usage", `Unknown field "${field.slice(0, 40)}" in --env ${name}=...`, {
      hint: `fields: ${ENV_FIELDS.join(", ")}`,
    });
  }
  return { name, field: field as EnvField };
}

/** A stored secret to set as a variable (`hecate run --secret VAR=NAME`). */
export interface SecretMapping {
  /** The variable's name. */
  variable: string;
  /** The stored secret's name. */
  secret: string;
}

/**
 * Parses `VAR=NAME` for `hecate run --secret`.
 *
 * @param text The option's value.
 * @returns The mapping.
 * @throws {HecateError} `usage` when it is not `VAR=NAME`.
 *
 * @example
 * ```ts
 * console.log(parseSecretMapping("STRIPE_KEY=stripe")); // { variable: "STRIPE_KEY", secret: "stripe" }
 * ```
 */
export function parseSecretMapping(text: string): SecretMapping {
  const at = text.indexOf("=");
  const variable = at < 0 ? text : text.slice(0, at);
  const secret = at < 0 ? "" : text.slice(at + 1);
  if (!VAR_NAME.test(variable) || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(secret)) {
    throw new HecateError("usage", `Invalid --secret "${text.slice(0, 80)}"`, {
      hint: "use --secret VAR=NAME: VAR of letters, digits and '_', NAME a stored secret",
    });
  }
  return { variable, secret };
}

/** libpq's `sslmode` for a TLS mode: verify → verify-full, insecure → require. */
function sslMode(s: ConnectSettings): string | undefined {
  if (s.engine === "sqlite") return undefined;
  return { verify: "verify-full", insecure: "require", disable: "disable" }[s.tls.mode];
}

const SCHEMES = { postgres: "postgresql", mysql: "mysql", mssql: "sqlserver" } as const;

/**
 * The connection as a URL, credentials percent-encoded: `postgresql://user:pw@host:port/db
 * ?sslmode=...`, `mysql://...`, `sqlserver://...`, or `sqlite:PATH`.
 *
 * @param s Resolved settings.
 * @returns The URL.
 */
export function databaseUrl(s: ConnectSettings): string {
  if (s.engine === "sqlite") return `sqlite:${s.database ?? ""}`;
  const enc = encodeURIComponent;
  const auth = s.user !== undefined
    ? `${enc(s.user)}${s.password !== undefined ? `:${enc(s.password)}` : ""}@`
    : "";
  const host = (s.host ?? "localhost").includes(":") ? `[${s.host}]` : (s.host ?? "localhost");
  const port = s.port !== undefined ? `:${s.port}` : "";
  const db = s.database !== undefined ? `/${enc(s.database)}` : "";
  const query = s.engine === "postgres" ? `?sslmode=${sslMode(s)}` : "";
  return `${SCHEMES[s.engine]}://${auth}${host}${port}${db}${query}`;
}

/**
 * A field's value, or undefined when the profile has none.
 *
 * @param field The field.
 * @param profile The profile name.
 * @param s Resolved settings.
 * @returns The value.
 */
export function fieldValue(
  field: EnvField,
  profile: string,
  s: ConnectSettings,
): string | undefined {
  switch (field) {
    case "profile":
      return profile;
    case "engine":
      return s.engine;
    case "host":
      return s.host;
    case "port":
      return s.port === undefined ? undefined : String(s.port);
    case "database":
      return s.database;
    case "user":
      return s.user;
    case "password":
      return s.password;
    case "url":
      return databaseUrl(s);
    case "sslmode":
      return sslMode(s);
  }
}

/**
 * Every variable for a profile's connection. Variables whose value is unknown are left out.
 *
 * - all engines: `HECATE_PROFILE`, `HECATE_ENGINE`, `HECATE_HOST`, `HECATE_PORT`,
 *   `HECATE_DATABASE`, `HECATE_USER`, `HECATE_PASSWORD` (the database password), `DATABASE_URL`;
 * - PostgreSQL (read by libpq: psql, pg_dump, ...): `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
 *   `PGDATABASE`, `PGSSLMODE`, and `PGSSLROOTCERT` when the profile names a CA file;
 * - MySQL / MariaDB: `MYSQL_HOST`, `MYSQL_TCP_PORT`, `MYSQL_PWD` (read by the `mysql` and
 *   `mariadb` clients), `MYSQL_USER` and `MYSQL_DATABASE` (not read by the clients: pass
 *   `--user "$MYSQL_USER"`; `USER` is left alone because every program takes it as the login
 *   name of the person);
 * - SQL Server (read by `sqlcmd`): `SQLCMDSERVER` (`tcp:host,port`), `SQLCMDUSER`,
 *   `SQLCMDPASSWORD`, `SQLCMDDBNAME`;
 * - then each mapping, in order (a mapping may replace any of the above).
 *
 * @param profile The profile name.
 * @param s Resolved settings.
 * @param mappings `--env NAME=field` mappings.
 * @returns Variables by name.
 *
 * @example
 * ```ts
 * import { connectionEnv } from "./env.ts";
 * const env = connectionEnv("billing", {
 *   engine: "postgres", host: "db", port: 5432, user: "app", password: "s3cret",
 *   database: "billing", tls: { mode: "verify" }, connectTimeoutMs: 15000,
 * });
 * console.log(env.PGHOST, env.DATABASE_URL);
 * ```
 */
export function connectionEnv(
  profile: string,
  s: ConnectSettings,
  mappings: readonly EnvMapping[] = [],
): Record<string, string> {
  const out: Record<string, string> = {};
  const set = (name: string, v: string | undefined) => {
    if (v !== undefined) out[name] = v;
  };
  const port = s.port === undefined ? undefined : String(s.port);
  set("HECATE_PROFILE", profile);
  set("HECATE_ENGINE", s.engine);
  set("HECATE_HOST", s.host);
  set("HECATE_PORT", port);
  set("HECATE_DATABASE", s.database);
  set("HECATE_USER", s.user);
  set("HECATE_PASSWORD", s.password);
  set("DATABASE_URL", databaseUrl(s));
  switch (s.engine) {
    case "postgres":
      set("PGHOST", s.host);
      set("PGPORT", port);
      set("PGUSER", s.user);
      set("PGPASSWORD", s.password);
      set("PGDATABASE", s.database);
      set("PGSSLMODE", sslMode(s));
      if (s.tls.mode === "verify") set("PGSSLROOTCERT", s.tls.caFile);
      break;
    case "mysql":
      set("MYSQL_HOST", s.host);
      set("MYSQL_TCP_PORT", port);
      set("MYSQL_PWD", s.password);
      set("MYSQL_USER", s.user);
      set("MYSQL_DATABASE", s.database);
      break;
    case "mssql":
      set("SQLCMDSERVER", `tcp:${s.host ?? "localhost"}${port ? `,${port}` : ""}`);
      set("SQLCMDUSER", s.user);
      set("SQLCMDPASSWORD", s.password);
      set("SQLCMDDBNAME", s.database);
      break;
    case "sqlite":
      break;
  }
  for (const m of mappings) set(m.name, fieldValue(m.field, profile, s));
  return out;
}

/** Output formats of `hecate env`. */
export type EnvFormat = "dotenv" | "shell" | "json";

/** Quotes a value for a .env file (as the `dotenv` parser reads it). */
function dotenvValue(name: string, v: string): string {
  if (/^[A-Za-z0-9_./:@%+,=-]*$/.test(v)) return v;
  if (v.includes("\n") || v.includes("\r")) {
    // Only double quotes turn \n back into a newline, and they do not unescape \" .
    if (v.includes('"')) throw unrepresentable(name);
    return `"${v.replaceAll("\r", "\\r").replaceAll("\n", "\\n")}"`;
  }
  for (const q of ["'", '"', "`"]) if (!v.includes(q)) return `${q}${v}${q}`;
  throw unrepresentable(name);
}

function unrepresentable(name: string): HecateError {
  return new HecateError(
    "usage",
    `The value of ${name} cannot be written in a .env file (it holds every quote character)`,
    { hint: "use --format shell or json" },
  );
}

/** Quotes a value for a POSIX shell: single quotes, with ' written as '\''. */
function shellValue(v: string): string {
  return `'${v.replaceAll("'", `'\\''`)}'`;
}

/**
 * Renders variables as a .env file, `export` lines for a POSIX shell, or a JSON object.
 *
 * @param env Variables.
 * @param format The format.
 * @returns The text, ending with a newline.
 */
export function renderEnv(env: Record<string, string>, format: EnvFormat): string {
  const names = Object.keys(env);
  switch (format) {
    case "json":
      return JSON.stringify(env, null, 2) + "\n";
    case "shell":
      return names.map((n) => `export ${n}=${shellValue(env[n]!)}\n`).join("");
    case "dotenv":
      return names.map((n) => `${n}=${dotenvValue(n, env[n]!)}\n`).join("");
  }
}
