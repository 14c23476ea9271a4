/**
 * Import from `.env` files (parsed with the `dotenv` package) and from `~/.pgpass`. Source files
 * are only read.
 *
 * @module
 */

import type { ProfileInput } from "../api/profiles.ts";
import type { Engine } from "../db/driver.ts";
import { HecateError } from "../errors.ts";
import type { TlsProfile } from "../profile.ts";
import { type ImportNote, type ImportPlan, profileNameFrom } from "./plan.ts";

const URL_ENGINES: Record<string, Engine> = {
  "postgres:": "postgres",
  "postgresql:": "postgres",
  "mysql:": "mysql",
  "mariadb:": "mysql",
  "sqlserver:": "mssql",
  "mssql:": "mssql",
};

/** Maps libpq's sslmode to a TLS mode, with a note where the meaning changes. */
function tlsFromSslmode(mode: string | undefined, notes: string[]): TlsProfile | undefined {
  switch (mode) {
    case undefined:
    case "":
      return undefined;
    case "disable":
      return { mode: "disable" };
    case "verify-full":
      return { mode: "verify" };
    case "verify-ca":
      notes.push("sslmode verify-ca became TLS verify (Hecate also checks the host name)");
      return { mode: "verify" };
    case "require":
      return { mode: "insecure" };
    case "allow":
    case "prefer":
      notes.push(`sslmode ${mode} became TLS insecure (encrypted, not verified, never plain)`);
      return { mode: "insecure" };
    default:
      notes.push(`unknown sslmode "${mode.slice(0, 20)}" ignored: TLS verify`);
      return undefined;
  }
}

function readText(path: string): Promise<string> {
  return Deno.readTextFile(path).catch((e) => {
    const why = e instanceof Deno.errors.NotFound ? "not found" : "cannot be read";
    throw new HecateError("usage", `"${path}" ${why}`, { cause: e });
  });
}

/**
 * A profile from a database URL (`postgresql://user:pw@host:5432/db?sslmode=require`,
 * `mysql://...`, `sqlserver://...`, `sqlite:PATH`). Credentials are percent-decoded.
 *
 * @param name Profile name.
 * @param url The URL.
 * @param notes Receives caveats.
 * @returns The profile.
 * @throws {HecateError} `usage` for a URL that is not a database URL (the URL is not echoed: it
 * may hold a password).
 */
export function profileFromUrl(name: string, url: string, notes: string[]): ProfileInput {
  if (url.startsWith("sqlite:")) {
    const path = url.replace(/^sqlite:(\/\/)?/, "");
    return { name, engine: "sqlite", database: path };
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new HecateError("usage", "DATABASE_URL is not a valid URL");
  }
  const engine = URL_ENGINES[u.protocol];
  if (!engine) {
    throw new HecateError("usage", `DATABASE_URL has an unknown scheme "${u.protocol}"`);
  }
  const dec = decodeURIComponent;
  const password = u.password ? dec(u.password) : undefined;
  const tls = tlsFromSslmode(
    u.searchParams.get("sslmode") ?? u.searchParams.get("ssl-mode")?.toLowerCase() ?? undefined,
    notes,
  );
  const db = u.pathname.replace(/^\//, "");
  return {
    name,
    engine,
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    ...(u.port ? { port: Number(u.port) } : {}),
    ...(db ? { database: dec(db) } : {}),
    ...(u.username ? { user: dec(u.username) } : {}),
    ...(tls ? { tls } : {}),
    secrets: password !== undefined ? { password: { value: password } } : {},
  };
}

/**
 * Plans a profile from a `.env` file: `DATABASE_URL` if present, else `PG*` variables, else
 * `MYSQL_*` variables (`MYSQL_HOST`, `MYSQL_TCP_PORT`, `MYSQL_USER`, `MYSQL_PWD` or
 * `MYSQL_PASSWORD`, `MYSQL_DATABASE`).
 *
 * @param path The file.
 * @param name The profile name.
 * @returns The plan.
 *
 * @example
 * ```ts ignore
 * await applyImport(vault, await planDotenvImport("/srv/app/.env", "app"));
 * ```
 */
export async function planDotenvImport(path: string, name: string): Promise<ImportPlan> {
  // dotenv pulls in node:crypto (~30 ms to load): only this import pays for it.
  const { parse: parseDotenv } = await import("dotenv");
  const vars = parseDotenv(await readText(path));
  const notes: string[] = [];
  let input: ProfileInput;
  if (vars.DATABASE_URL) {
    input = profileFromUrl(name, vars.DATABASE_URL, notes);
  } else if (vars.PGHOST || vars.PGUSER || vars.PGDATABASE) {
    const tls = tlsFromSslmode(vars.PGSSLMODE, notes);
    input = {
      name,
      engine: "postgres",
      host: vars.PGHOST ?? "localhost",
      ...(vars.PGPORT ? { port: Number(vars.PGPORT) } : {}),
      ...(vars.PGUSER ? { user: vars.PGUSER } : {}),
      ...(vars.PGDATABASE ? { database: vars.PGDATABASE } : {}),
      ...(tls ? { tls } : {}),
      secrets: vars.PGPASSWORD ? { password: { value: vars.PGPASSWORD } } : {},
    };
  } else if (vars.MYSQL_HOST || vars.MYSQL_USER || vars.MYSQL_DATABASE) {
    const pw = vars.MYSQL_PWD ?? vars.MYSQL_PASSWORD;
    input = {
      name,
      engine: "mysql",
      host: vars.MYSQL_HOST ?? "localhost",
      ...(vars.MYSQL_TCP_PORT ? { port: Number(vars.MYSQL_TCP_PORT) } : {}),
      ...(vars.MYSQL_USER ? { user: vars.MYSQL_USER } : {}),
      ...(vars.MYSQL_DATABASE ? { database: vars.MYSQL_DATABASE } : {}),
      secrets: pw ? { password: { value: pw } } : {},
    };
  } else {
    throw new HecateError("usage", `"${path}" has no DATABASE_URL, PG* or MYSQL_* variables`);
  }
  input.tags = ["dotenv"];
  return {
    source: path,
    profiles: [input],
    notes: notes.map((message): ImportNote => ({ profile: name, kind: "note", message })),
  };
}

/**
 * Splits one `.pgpass` line into its five fields: `:` separates, `\:` is a colon and `\\` a
 * backslash inside a field (libpq's rules).
 *
 * @param line The line.
 * @returns The fields, or undefined when there are not exactly five.
 */
export function splitPgpassLine(line: string): string[] | undefined {
  const fields: string[] = [];
  let cur = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "\\" && i + 1 < line.length) {
      cur += line[++i];
    } else if (c === ":" && fields.length < 4) {
      fields.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  fields.push(cur);
  return fields.length === 5 ? fields : undefined;
}

/**
 * Plans one profile per `.pgpass` line (`hostname:port:database:username:password`). Lines whose
 * host or user is the wildcard `*` cannot name a server and are skipped; a `*` port means 5432, a
 * `*` database means the user's default database. Profiles get TLS `verify` (the default);
 * change it with `hecate server edit --tls` where the server has no certificate.
 *
 * @param path The file (default `~/.pgpass`).
 * @param prefix Prefix of the generated names. @default {"pg-"}
 * @returns The plan.
 *
 * @example
 * ```ts ignore
 * await applyImport(vault, await planPgpassImport("/home/me/.pgpass", "pg-"));
 * ```
 */
export async function planPgpassImport(path: string, prefix = "pg-"): Promise<ImportPlan> {
  const text = await readText(path);
  const plan: ImportPlan = { source: path, profiles: [], notes: [] };
  const used = new Set<string>();
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.startsWith("#")) continue;
    const at = `line ${i + 1}`;
    const f = splitPgpassLine(line);
    if (!f) {
      plan.notes.push({ profile: at, kind: "skipped", message: "not five ':'-separated fields" });
      continue;
    }
    const [host, port, database, user, password] = f as [string, string, string, string, string];
    if (host === "*" || user === "*" || host === "") {
      plan.notes.push({
        profile: at,
        kind: "skipped",
        message: "a wildcard host or user names no single server",
      });
      continue;
    }
    const portNum = port === "*" || port === "" ? undefined : Number(port);
    if (portNum !== undefined && !(Number.isInteger(portNum) && portNum >= 1 && portNum <= 65535)) {
      plan.notes.push({ profile: at, kind: "skipped", message: "the port is not a number" });
      continue;
    }
    const db = database === "*" ? undefined : database;
    let name = profileNameFrom(`${prefix}${host}-${db ?? user}`);
    for (let n = 2; used.has(name); n++) {
      name = profileNameFrom(`${prefix}${host}-${db ?? user}-${n}`);
    }
    used.add(name);
    plan.profiles.push({
      name,
      engine: "postgres",
      host,
      ...(portNum !== undefined ? { port: portNum } : {}),
      ...(db !== undefined ? { database: db } : {}),
      user,
      tags: ["pgpass"],
      secrets: { password: { value: password } },
    });
    plan.notes.push({
      profile: name,
      kind: "note",
      message: `from ${at}; TLS verify (the default)`,
    });
  }
  return plan;
}
