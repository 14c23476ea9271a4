/**
 * PostgreSQL driver on npm `pg`: rows stream through a submittable of our own with one round trip
 * per statement (./pg_statement.ts), `copyCsv` streams `COPY (...) TO STDOUT` through another
 * (./pg_copy_out.ts). Values arrive as the server's text and are converted here, so `text` mode is
 * byte-for-byte what `COPY ... CSV` writes.
 *
 * The session is pinned to stable output settings (UTC, ISO dates, hex bytea, UTF-8) and nothing
 * is read from PG* environment variables or `~/.pgpass`: every connection field is passed
 * explicitly.
 *
 * @module
 */

import pg from "pg";
import pgUtils from "pg/lib/utils.js";
import { Buffer } from "node:buffer";
import type { ConnectionOptions } from "node:tls";
import type {
  CollectedSet,
  Column,
  ConnectSettings,
  DbConnection,
  Driver,
  QueryOptions,
  ResultSet,
  ValueMode,
} from "./driver.ts";
import { Decimal, JsonText } from "./value.ts";
import { CopyOut } from "./pg_copy_out.ts";
import { type PgField, PgStatement } from "./pg_statement.ts";
import { sendCancelRequest } from "./pg_cancel.ts";
import { HecateError } from "../errors.ts";
import { isClientCertRefused } from "./tls_errors.ts";
import { clean, NET_REASONS, paramSecrets } from "./error_text.ts";

/** Unread rows held before reading from the server pauses, when the caller does not say. */
const DEFAULT_BATCH_SIZE = 1000;
/** Bytes gathered before one call of the `copyCsv` sink. */
const COPY_CHUNK_BYTES = 256 * 1024;
/** How long a statement left early may take to stop before the connection is dropped instead. */
const ABANDON_TIMEOUT_MS = 2000;

/** pg's own parameter serialisation (dates, arrays, objects as JSON, Buffers as bytea). */
const prepareValue = (pgUtils as { prepareValue: (v: unknown) => unknown }).prepareValue;

/**
 * Startup options pinning every setting that changes the text form of values, so output does not
 * depend on the server's or role's configuration.
 */
const SESSION_OPTIONS = [
  "-c TimeZone=UTC",
  "-c DateStyle=ISO,YMD",
  "-c IntervalStyle=postgres",
  "-c bytea_output=hex",
  "-c client_encoding=UTF8",
  "-c extra_float_digits=1",
].join(" ");

/** Type names by OID (pg_type.typname) for the types Hecate cares about. */
const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [16, "bool"],
  [17, "bytea"],
  [18, "char"],
  [19, "name"],
  [20, "int8"],
  [21, "int2"],
  [23, "int4"],
  [25, "text"],
  [26, "oid"],
  [114, "json"],
  [142, "xml"],
  [650, "cidr"],
  [700, "float4"],
  [701, "float8"],
  [705, "unknown"],
  [790, "money"],
  [829, "macaddr"],
  [869, "inet"],
  [1000, "_bool"],
  [1001, "_bytea"],
  [1005, "_int2"],
  [1007, "_int4"],
  [1009, "_text"],
  [1016, "_int8"],
  [1021, "_float4"],
  [1022, "_float8"],
  [1015, "_varchar"],
  [1042, "bpchar"],
  [1043, "varchar"],
  [1082, "date"],
  [1083, "time"],
  [1114, "timestamp"],
  [1184, "timestamptz"],
  [1186, "interval"],
  [1231, "_numeric"],
  [1266, "timetz"],
  [1560, "bit"],
  [1562, "varbit"],
  [1700, "numeric"],
  [2249, "record"],
  [2278, "void"],
  [2950, "uuid"],
  [2951, "_uuid"],
  [3802, "jsonb"],
  [3807, "_jsonb"],
  [4072, "jsonpath"],
]);

/** Lower-case type name for an OID, or `oid:<n>` for types not in the table. */
function typeName(oid: number): string {
  return TYPE_NAMES.get(oid) ?? `oid:${oid}`;
}

/** Parsers that hand back the server's text untouched (binary format is never requested). */
const RAW_TYPES: pg.CustomTypesConfig = {
  getTypeParser:
    ((_oid: number, format?: string) =>
      format === "binary"
        ? (v: unknown) => v
        : (v: string) => v) as unknown as pg.CustomTypesConfig["getTypeParser"],
};

type Convert = (text: string) => unknown;

const HEX_VALUES: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i;
    t[97 + i] = 10 + i;
  }
  return t;
})();

/** Decodes bytea hex output (`\x0a1b...`) into bytes. */
function decodeByteaHex(text: string): Uint8Array {
  if (!text.startsWith("\\x")) {
    // Only reachable if bytea_output was changed inside the session; keep the text's bytes.
    return new TextEncoder().encode(text);
  }
  const n = (text.length - 2) >> 1;
  const out = new Uint8Array(n);
  for (let i = 0, j = 2; i < n; i++, j += 2) {
    const hi = HEX_VALUES[text.charCodeAt(j)] ?? -1;
    const lo = HEX_VALUES[text.charCodeAt(j + 1)] ?? -1;
    if (hi < 0 || lo < 0) throw new Error("Malformed bytea value from server");
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Matches ISO output `YYYY-MM-DD HH:MM:SS[.ffffff]` plus an optional numeric offset. */
const TIMESTAMP_RE = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d(?::?\d\d){0,2})?$/;

/** `2024-01-02 03:04:05.5+00` → `2024-01-02T03:04:05.5+00:00`; infinity and BC stay as text. */
function isoTimestamp(text: string, withOffset: boolean): string {
  const m = TIMESTAMP_RE.exec(text);
  if (!m) return text;
  const base = `${m[1]}T${m[2]}`;
  if (!withOffset || m[3] === undefined) return base;
  const off = m[3].replaceAll(":", "");
  const hh = off.slice(0, 3), mm = off.slice(3, 5) || "00", ss = off.slice(5, 7);
  return `${base}${hh}:${mm}${ss ? `:${ss}` : ""}`;
}

/** The typed-mode converter for a column type. */
function typedConverter(oid: number): Convert | null {
  switch (oid) {
    case 16:
      return (t) => t === "t";
    case 17:
      return decodeByteaHex;
    case 20:
      return (t) => BigInt(t);
    case 21:
    case 23:
    case 26:
    case 700:
    case 701:
      return Number; // also NaN, Infinity, -Infinity
    case 1700:
      return (t) => new Decimal(t);
    case 114:
    case 3802:
      return (t) => new JsonText(t);
    case 1184:
      return (t) => isoTimestamp(t, true);
    case 1114:
      return (t) => isoTimestamp(t, false);
    default:
      return null; // the server's text
  }
}

/** Converts one raw row (server text or null) in place for the mode. */
function makeRowConverter(oids: readonly number[], mode: ValueMode): (row: unknown[]) => unknown[] {
  if (mode === "text") return (row) => row;
  const convs = oids.map(typedConverter);
  if (convs.every((c) => c === null)) return (row) => row;
  return (row) => {
    for (let i = 0; i < convs.length; i++) {
      const c = convs[i];
      const v = row[i];
      if (c && v !== null && v !== undefined) row[i] = c(v as string);
    }
    return row;
  };
}

/** Parameter values as pg wants them. */
function toParam(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Decimal || v instanceof JsonText) return v.text;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The fields of a server error (pg's DatabaseError) we rely on. */
interface ServerError {
  code: string;
  message: string;
  severity?: string;
}

function isServerError(e: unknown): e is ServerError {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) &&
    typeof (e as { severity?: unknown }).severity === "string";
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Where we were connecting, for messages. */
function target(s: ConnectSettings): string {
  const host = s.host ?? "localhost";
  return host.startsWith("/")
    ? `${host} (socket, port ${s.port ?? 5432})`
    : `${host}:${s.port ?? 5432}`;
}

/** Maps a failure while connecting. */
function connectError(
  e: unknown,
  s: ConnectSettings,
  secrets: readonly string[],
  info: { elapsedMs: number; passwordAsked: boolean },
): HecateError {
  const where = `PostgreSQL at ${target(s)}`;
  if (isServerError(e)) {
    const msg = `${clean(e.message, secrets)} (SQLSTATE ${e.code})`;
    const driverCode = e.code;
    if (e.code.startsWith("28")) {
      return new HecateError("auth_failed", `Login to ${where} refused: ${msg}`, {
        cause: e,
        driverCode,
      });
    }
    return new HecateError("connection_failed", `Cannot connect to ${where}: ${msg}`, {
      cause: e,
      driverCode,
    });
  }
  const code = errorCode(e);
  if (s.tls.mode !== "disable" && isClientCertRefused(e)) {
    const why = s.tls.certPem ? "refused the client certificate" : "requires a client certificate";
    return new HecateError("auth_failed", `Login to ${where} refused: TLS: the server ${why}`, {
      cause: e,
    });
  }
  if (info.passwordAsked && !s.password) {
    return new HecateError(
      "auth_failed",
      `Login to ${where} refused: the server asks for a password and none was given`,
      { cause: e },
    );
  }
  let reason: string;
  let driverCode = code;
  if (code && NET_REASONS[code]) {
    reason = NET_REASONS[code];
  } else if (code && /^(ERR_TLS_|ERR_SSL_|CERT_|ERR_OSSL)/.test(code)) {
    reason = `TLS handshake failed (${code})`;
  } else if (info.elapsedMs >= s.connectTimeoutMs - 50 && s.connectTimeoutMs > 0) {
    reason = `timed out after ${s.connectTimeoutMs} ms`;
    // pg's own connect timer raises an error without a code; name it as the socket would.
    driverCode ??= "ETIMEDOUT";
  } else {
    const text = e instanceof Error ? e.message : String(e);
    reason = clean(text, secrets) || "unknown error";
    if (code) reason += ` (${code})`;
  }
  return new HecateError("connection_failed", `Cannot connect to ${where}: ${reason}`, {
    cause: e,
    driverCode,
  });
}

/** Maps a failure while running a statement. */
function queryError(e: unknown, secrets: readonly string[]): HecateError {
  if (e instanceof HecateError) return e;
  if (isServerError(e)) {
    return new HecateError(
      "query_failed",
      `Query failed: ${clean(e.message, secrets)} (SQLSTATE ${e.code})`,
      { cause: e, driverCode: e.code },
    );
  }
  const code = errorCode(e);
  const text = e instanceof Error ? e.message : String(e);
  const reason = code && NET_REASONS[code] ? NET_REASONS[code] : clean(text, secrets);
  return new HecateError("connection_failed", `Connection to PostgreSQL lost: ${reason}`, {
    cause: e,
    driverCode: code,
  });
}

// ---------------------------------------------------------------------------------------------
// Connection

/** Reads the CA file for `verify` mode. */
async function readCa(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new HecateError("connection_failed", `Cannot read the TLS CA file ${path}`, { cause: e });
  }
}

/** The `ssl` option for pg from the TLS policy. */
async function sslOptions(s: ConnectSettings): Promise<false | ConnectionOptions> {
  const tls = s.tls;
  if (tls.mode === "disable") return false;
  const opts: ConnectionOptions = { rejectUnauthorized: tls.mode === "verify" };
  if (tls.mode === "verify" && tls.caFile) opts.ca = await readCa(tls.caFile);
  if (tls.certPem) opts.cert = tls.certPem;
  if (tls.keyPem) opts.key = tls.keyPem;
  if (tls.serverName) opts.servername = tls.serverName;
  return opts;
}

/** pg's client plus the few internals we reset (fields read from the environment). */
interface ClientInternals {
  connectionParameters?: { replication?: unknown };
  replication?: unknown;
}

/**
 * Creates a pg client. pg still looks at PGBINARY and PGREPLICATION for the two settings that
 * cannot be given as a truthy value; PGBINARY has no effect on a Client given a config, and the
 * replication setting is cleared here so PGREPLICATION cannot turn this into a walsender session.
 */
function newClient(config: pg.ClientConfig): pg.Client {
  let client: pg.Client;
  try {
    client = new pg.Client(config);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new HecateError("internal", "The PostgreSQL driver needs environment access", {
        cause: e,
        hint: "Run with --allow-env (the pg library reads PG* variables, which Hecate ignores)",
      });
    }
    throw e;
  }
  const internals = client as unknown as ClientInternals;
  if (internals.connectionParameters) internals.connectionParameters.replication = undefined;
  internals.replication = undefined;
  return client;
}

/** Hecate's columns for the server's row description. */
function columnsOf(fields: readonly PgField[]): Column[] {
  return fields.map((f) => ({ name: f.name, type: typeName(f.dataTypeID) }));
}

/** pg's client fields needed for a CancelRequest. */
interface CancelKey {
  host?: string;
  port?: number;
  processID?: number | null;
  secretKey?: number | null;
}

class PostgresConnection implements DbConnection {
  #client: pg.Client;
  #secrets: readonly string[];
  #closed = false;
  #active: PgStatement | null = null;
  #busy = false;

  constructor(client: pg.Client, secrets: readonly string[]) {
    this.#client = client;
    this.#secrets = secrets;
    // A dropped socket between statements must not become an unhandled 'error' event.
    client.on("error", () => {});
  }

  #check(): void {
    if (this.#closed) throw new HecateError("internal", "The PostgreSQL connection is closed");
    if (this.#busy) {
      throw new HecateError(
        "internal",
        "A PostgreSQL statement is still running on this connection: drain its rows first",
      );
    }
  }

  /** Asks the server, on a separate connection, to cancel this session's running statement. */
  #cancel(): Promise<void> {
    const key = this.#client as unknown as CancelKey;
    if (typeof key.processID !== "number" || typeof key.secretKey !== "number") {
      return Promise.reject(new Error("no cancel key"));
    }
    return sendCancelRequest({
      host: key.host || "localhost",
      port: key.port || 5432,
      processId: key.processID,
      secretKey: key.secretKey,
    });
  }

  /**
   * Sends one statement; the connection is busy with it until released. `fail` turns its errors
   * into HecateErrors that name neither the password nor a parameter value.
   */
  #start(
    sql: string,
    params: readonly unknown[],
    highWaterRows: number,
  ): { stmt: PgStatement; fail: (e: unknown) => HecateError } {
    this.#check();
    const secrets = [...this.#secrets, ...paramSecrets(params)];
    const stmt = new PgStatement(sql, params.map(toParam), {
      highWaterRows,
      valueMapper: prepareValue,
    });
    const fail = (e: unknown) => queryError(e, secrets);
    this.#busy = true;
    this.#active = stmt;
    try {
      this.#client.query(stmt);
    } catch (e) {
      this.#active = null;
      this.#busy = false;
      throw fail(e);
    }
    return { stmt, fail };
  }

  /** Runs one statement; its single result set streams as the rows arrive. */
  async *query(
    sql: string,
    params: readonly unknown[],
    options: QueryOptions = {},
  ): AsyncGenerator<ResultSet> {
    const { stmt, fail } = this.#start(sql, params, options.batchSize ?? DEFAULT_BATCH_SIZE);
    // Leaving before the server finished (the caller stopped reading): cut the statement short
    // so the connection can be used again, or drop the connection if that fails.
    const release = async () => {
      if (this.#active !== stmt) return;
      this.#active = null;
      this.#busy = false;
      if (stmt.done || this.#closed) return;
      if (!await stmt.abandon(() => this.#cancel(), ABANDON_TIMEOUT_MS)) await this.close();
    };
    try {
      const fields = await stmt.description().catch((e) => Promise.reject(fail(e)));
      const columns = columnsOf(fields);
      const convert = makeRowConverter(fields.map((f) => f.dataTypeID), options.mode ?? "typed");
      let rowCount: number | null = null;
      if (columns.length === 0) {
        // A command: its count is final (and its success certain) only once it has committed.
        await stmt.finished().catch((e) => Promise.reject(fail(e)));
        rowCount = stmt.rowCount ?? 0;
      }

      const rows = async function* (): AsyncGenerator<unknown[]> {
        try {
          let seen = 0;
          for (;;) {
            const batch = await stmt.next().catch((e) => Promise.reject(fail(e)));
            if (batch === null) break;
            for (const row of batch) yield convert(row);
            seen += batch.length;
          }
          rowCount = columns.length > 0 ? seen : rowCount;
        } finally {
          await release();
        }
      };

      yield { index: 0, columns, rows: rows(), rowCount: () => rowCount };
    } finally {
      // Reached when the caller asks for the next set or stops early: free the connection.
      await release();
    }
  }

  /** Runs one statement and returns its rows whole: one await, no per-row iteration. */
  async collect(
    sql: string,
    params: readonly unknown[],
    options: QueryOptions = {},
  ): Promise<CollectedSet> {
    // Never pauses reading: the whole result is wanted anyway.
    const { stmt, fail } = this.#start(sql, params, Infinity);
    try {
      await stmt.finished();
    } catch (e) {
      throw fail(e);
    } finally {
      this.#active = null;
      this.#busy = false;
    }
    const fields = await stmt.description();
    const convert = makeRowConverter(fields.map((f) => f.dataTypeID), options.mode ?? "typed");
    const rows = (await stmt.next() ?? []).map(convert);
    return {
      columns: columnsOf(fields),
      rows,
      rowCount: fields.length > 0 ? rows.length : stmt.rowCount ?? 0,
    };
  }

  /**
   * Streams `COPY (<sql>) TO STDOUT WITH (FORMAT csv, HEADER true)` into the sink in chunks of
   * 256 KiB (the last one shorter), see {@link CopyOut}.
   */
  async copyCsv(sql: string, sink: (chunk: Uint8Array) => Promise<void>): Promise<number> {
    this.#check();
    let sinkFailed = false;
    const copy = new CopyOut(
      `COPY (${sql}) TO STDOUT WITH (FORMAT csv, HEADER true)`,
      async (chunk) => {
        try {
          await sink(chunk);
        } catch (e) {
          sinkFailed = true;
          throw e;
        }
      },
      { chunkBytes: COPY_CHUNK_BYTES },
    );
    this.#busy = true;
    try {
      this.#client.query(copy);
      return await copy.done;
    } catch (e) {
      // Cut off mid-stream (sink failure) or a lost connection: it cannot be reused.
      if (!copy.reusable) await this.close();
      if (sinkFailed) throw e;
      throw queryError(e, this.#secrets);
    } finally {
      this.#busy = false;
    }
  }

  /** Runs `SELECT 1`. */
  async ping(): Promise<void> {
    this.#check();
    try {
      await this.#client.query("SELECT 1");
    } catch (e) {
      throw queryError(e, this.#secrets);
    }
  }

  /** Closes the connection (a running statement is dropped with it). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#active = null;
    try {
      await this.#client.end();
    } catch {
      // the socket is gone already
    }
  }
}

/**
 * Opens a PostgreSQL connection.
 *
 * @param settings Host, port, database, user, password, TLS policy and timeout; database defaults
 * to the user name, host to `localhost`, port to 5432 (nothing comes from PG* variables).
 * @returns A live connection with UTC, ISO dates and hex bytea pinned for the session.
 * @throws {HecateError} `auth_failed` for a refused login, `connection_failed` otherwise,
 * `invalid_profile` when no user name is given.
 */
export async function connectPostgres(settings: ConnectSettings): Promise<DbConnection> {
  const user = settings.user;
  if (!user) {
    throw new HecateError("invalid_profile", "A PostgreSQL connection needs a user name");
  }
  const password = settings.password ?? "";
  const secrets = password.length > 0 ? [password] : [];
  let passwordAsked = false;
  const client = newClient({
    host: settings.host || "localhost",
    port: settings.port || 5432,
    database: settings.database || user,
    user,
    // A function keeps pg away from PGPASSWORD and ~/.pgpass, also for an empty password.
    password: () => {
      passwordAsked = true;
      return password;
    },
    ssl: await sslOptions(settings),
    sslnegotiation: "postgres",
    connectionTimeoutMillis: settings.connectTimeoutMs,
    application_name: "hecate",
    fallback_application_name: "hecate",
    options: SESSION_OPTIONS,
    client_encoding: "UTF8",
    types: RAW_TYPES,
    keepAlive: true,
  });

  const started = Date.now();
  // Errors emitted while connecting are reported through connect()'s promise.
  const onError = () => {};
  client.on("error", onError);
  try {
    await client.connect();
  } catch (e) {
    client.end().catch(() => {});
    throw connectError(e, settings, secrets, {
      elapsedMs: Date.now() - started,
      passwordAsked,
    });
  } finally {
    client.off("error", onError);
  }
  return new PostgresConnection(client, secrets);
}

/** The PostgreSQL {@link Driver}. */
export const postgresDriver: Driver = { connect: connectPostgres };

/** Returns the PostgreSQL {@link Driver}. */
export function createPostgresDriver(): Driver {
  return postgresDriver;
}
