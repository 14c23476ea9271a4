/**
 * PostgreSQL driver speaking the frontend/backend protocol v3 itself (./pg/): no npm package and
 * no `node:` module is loaded for TLS `disable`, and `verify` against the default trust store
 * without a client certificate (see ./pg/transport.ts for the rest), because either starts Deno's Node compatibility layer, which alone costs more than a whole `select 1`
 * against a local server. There is no well-kept Deno-native client on npm, so the protocol is
 * implemented here, carefully and only as far as Hecate needs it: startup with cleartext, MD5 and
 * SCRAM-SHA-256 logins (cleartext and MD5 answered only over verified TLS or when the profile
 * allows them), TLS, the extended protocol with text parameters and results, COPY TO
 * STDOUT, and CancelRequest (./pg_cancel.ts).
 *
 * Rows stream through one round trip per statement (./pg/statement.ts); `copyCsv` streams
 * `COPY (...) TO STDOUT` (./pg/copy_out.ts). Values arrive as the server's text and are converted
 * in ./pg/values.ts, so `text` mode is byte-for-byte what `COPY ... CSV` writes.
 *
 * The session is pinned to stable output settings (UTC, ISO dates, hex bytea, UTF-8) and nothing
 * is read from PG* environment variables or `~/.pgpass`: every connection field is explicit.
 *
 * @module
 */

import type {
  CollectedSet,
  Column,
  ConnectSettings,
  DbConnection,
  Driver,
  QueryOptions,
  ResultSet,
} from "./driver.ts";
import { HecateError } from "../errors.ts";
import { isClientCertRefused } from "./tls_errors.ts";
import { clean, NET_REASONS, paramSecrets } from "./error_text.ts";
import { sendCancelRequest } from "./pg_cancel.ts";
import { type PgField, PgServerError } from "./pg/backend.ts";
import { CopyOut } from "./pg/copy_out.ts";
import { paramText } from "./pg/params.ts";
import { PgWire, PlainAuthRefusedError } from "./pg/session.ts";
import { Statement } from "./pg/statement.ts";
import { deadline } from "./pg/deadline.ts";
import { openTransport, type Transport } from "./pg/transport.ts";
import { makeRowConverter, typeName } from "./pg/values.ts";

/** Unread rows held before reading from the server pauses, when the caller does not say. */
const DEFAULT_BATCH_SIZE = 1000;
/** Bytes gathered before one call of the `copyCsv` sink. */
const COPY_CHUNK_BYTES = 256 * 1024;
/** How long a statement left early may take to stop before the connection is dropped instead. */
const ABANDON_TIMEOUT_MS = 2000;

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

/** The connect timeout ran out (connect, TLS and login together). */
class ConnectTimeoutError extends Error {
  constructor(ms: number) {
    super(`Timed out after ${ms} ms`);
    this.name = "ConnectTimeoutError";
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

function isServerError(e: unknown): e is PgServerError {
  return e instanceof PgServerError;
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
  if (e instanceof PlainAuthRefusedError) {
    return new HecateError(
      "auth_failed",
      `Login to ${where} refused by Hecate: ${e.message}; the password was not sent`,
      {
        cause: e,
        hint: "use --tls verify, or allow it for this profile with " +
          "'hecate server edit NAME --allow-plain-auth' (see docs/SECURITY.md)",
      },
    );
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
  if (e instanceof ConnectTimeoutError) {
    reason = `timed out after ${s.connectTimeoutMs} ms`;
    driverCode = "ETIMEDOUT";
  } else if (code && NET_REASONS[code]) {
    reason = NET_REASONS[code];
  } else if (code && /^(ERR_TLS_|ERR_SSL_|CERT_|ERR_OSSL)/.test(code)) {
    reason = `TLS handshake failed (${code})`;
  } else if (info.elapsedMs >= s.connectTimeoutMs - 50 && s.connectTimeoutMs > 0) {
    reason = `timed out after ${s.connectTimeoutMs} ms`;
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

/** Hecate's columns for the server's row description. */
function columnsOf(fields: readonly PgField[]): Column[] {
  return fields.map((f) => ({ name: f.name, type: typeName(f.dataTypeID) }));
}

/** Parameters as text; a value that cannot be sent is the caller's mistake, named without it. */
function paramTexts(params: readonly unknown[]): (string | null)[] {
  return params.map((v, i) => {
    try {
      return paramText(v);
    } catch (e) {
      throw new HecateError(
        "query_failed",
        `Query failed: parameter $${i + 1} cannot be sent (${
          e instanceof Error ? e.name : "error"
        })`,
        { cause: e },
      );
    }
  });
}

class PostgresConnection implements DbConnection {
  #wire: PgWire;
  #host: string;
  #port: number;
  #secrets: readonly string[];
  #closed = false;
  #active: Statement | null = null;
  #busy = false;

  constructor(wire: PgWire, host: string, port: number, secrets: readonly string[]) {
    this.#wire = wire;
    this.#host = host;
    this.#port = port;
    this.#secrets = secrets;
  }

  #check(): void {
    if (this.#closed) throw new HecateError("internal", "The PostgreSQL connection is closed");
    if (this.#busy) {
      throw new HecateError(
        "internal",
        "A PostgreSQL statement is still running on this connection: drain its rows first",
      );
    }
    if (this.#wire.dead) {
      throw new HecateError(
        "connection_failed",
        "Connection to PostgreSQL lost: the session ended earlier",
      );
    }
  }

  /** Asks the server, on a separate connection, to cancel this session's running statement. */
  #cancel(): Promise<void> {
    if (this.#wire.processId === 0) return Promise.reject(new Error("no cancel key"));
    return sendCancelRequest({
      host: this.#host,
      port: this.#port,
      processId: this.#wire.processId,
      secretKey: this.#wire.secretKey,
    });
  }

  /**
   * Sends one statement; the connection is busy with it until released. `fail` turns its errors
   * into HecateErrors that name neither the password nor a parameter value.
   */
  async #start(
    sql: string,
    params: readonly unknown[],
    highWaterRows: number,
  ): Promise<{ stmt: Statement; fail: (e: unknown) => HecateError }> {
    this.#check();
    const secrets = [...this.#secrets, ...paramSecrets(params)];
    const fail = (e: unknown) => queryError(e, secrets);
    const texts = paramTexts(params);
    this.#busy = true;
    try {
      const stmt = await Statement.send(this.#wire, sql, texts, highWaterRows);
      this.#active = stmt;
      return { stmt, fail };
    } catch (e) {
      this.#busy = false;
      if (e instanceof TypeError) {
        // Nothing was sent: the text cannot be encoded (a NUL character).
        throw new HecateError("query_failed", `Query failed: ${e.message}`, { cause: e });
      }
      throw fail(e);
    }
  }

  /** Runs one statement; its single result set streams as the rows arrive. */
  async *query(
    sql: string,
    params: readonly unknown[],
    options: QueryOptions = {},
  ): AsyncGenerator<ResultSet> {
    const { stmt, fail } = await this.#start(
      sql,
      params,
      options.batchSize ?? DEFAULT_BATCH_SIZE,
    );
    // Leaving before the server finished (the caller stopped reading): cut the statement short
    // so the connection can be used again, or drop the connection if that fails.
    const release = async () => {
      if (this.#active !== stmt) return;
      this.#active = null;
      this.#busy = false;
      if (this.#closed) return;
      if (stmt.done) {
        if (this.#wire.dead) await this.close();
        return;
      }
      if (!await stmt.abandon(() => this.#cancel(), ABANDON_TIMEOUT_MS)) {
        this.#wire.dead = true; // mid-statement: no Terminate, just drop it
        await this.close();
      }
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
    const { stmt, fail } = await this.#start(sql, params, Infinity);
    let fields: PgField[];
    let raw: unknown[][];
    try {
      fields = await stmt.description();
      raw = await stmt.all();
    } catch (e) {
      throw fail(e);
    } finally {
      this.#active = null;
      this.#busy = false;
      if (this.#wire.dead) await this.close();
    }
    const convert = makeRowConverter(fields.map((f) => f.dataTypeID), options.mode ?? "typed");
    const rows = raw.map(convert);
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
    const copy = new CopyOut(this.#wire, async (chunk) => {
      try {
        await sink(chunk);
      } catch (e) {
        sinkFailed = true;
        throw e;
      }
    }, COPY_CHUNK_BYTES);
    this.#busy = true;
    try {
      return await copy.run(`COPY (${sql}) TO STDOUT WITH (FORMAT csv, HEADER true)`);
    } catch (e) {
      // Cut off mid-stream (sink failure) or a lost connection: it cannot be reused.
      this.#busy = false;
      if (!copy.reusable || this.#wire.dead) {
        this.#wire.dead = true; // mid-stream: no Terminate, just drop it
        await this.close();
      }
      if (sinkFailed) throw e;
      throw queryError(e, this.#secrets);
    } finally {
      this.#busy = false;
    }
  }

  /** Runs `SELECT 1`. */
  async ping(): Promise<void> {
    try {
      await this.collect("SELECT 1", []);
    } catch (e) {
      if (e instanceof HecateError) throw e;
      throw queryError(e, this.#secrets);
    }
  }

  /** Closes the connection (a running statement is dropped with it). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const wire = this.#wire;
    const idle = !this.#busy && !wire.dead;
    this.#active = null;
    if (idle) {
      try {
        wire.writer.terminate();
        await wire.send();
      } catch {
        // the socket is gone already
      }
    }
    wire.close();
  }
}

/**
 * Whether a cleartext or MD5 password request may be answered: when TLS verified the server (it is
 * the server the profile names), or when the profile explicitly allows it. A loopback address or a
 * Unix socket gets no exception (as with libpq's `require_auth`): another local user can listen
 * there when the server is down.
 */
function plainAuthAllowed(tls: ConnectSettings["tls"]): boolean {
  return tls.mode === "verify" || tls.allowPlainAuth === true;
}

/**
 * Opens the transport and logs in, all within the connect timeout.
 *
 * @returns The session, ready for statements.
 */
async function openSession(
  settings: ConnectSettings,
  host: string,
  port: number,
  user: string,
  onPasswordAsked: () => void,
): Promise<PgWire> {
  const caPem = settings.tls.mode === "verify" && settings.tls.caFile
    ? await readCa(settings.tls.caFile)
    : undefined;
  let transport: Transport | null = null;
  let timedOut = false;
  const abort = new AbortController();
  const work = (async () => {
    const t = await openTransport({
      host,
      port,
      tls: settings.tls,
      signal: abort.signal,
      ...(caPem === undefined ? {} : { caPem }),
    });
    if (timedOut) {
      t.close();
      throw new ConnectTimeoutError(settings.connectTimeoutMs);
    }
    transport = t;
    const wire = new PgWire(t);
    await wire.startup({
      user,
      database: settings.database || user,
      password: settings.password,
      params: [
        ["options", SESSION_OPTIONS],
        ["application_name", "hecate"],
        ["client_encoding", "UTF8"],
      ],
      plainAuthAllowed: plainAuthAllowed(settings.tls),
    }, onPasswordAsked);
    return wire;
  })();
  const ms = settings.connectTimeoutMs;
  if (!(ms > 0)) {
    try {
      return await work;
    } catch (e) {
      (transport as Transport | null)?.close();
      throw e;
    }
  }
  const timer = deadline(ms);
  const expired = timer.expired.then((): never => {
    timedOut = true;
    abort.abort();
    throw new ConnectTimeoutError(ms);
  });
  try {
    return await Promise.race([work, expired]);
  } catch (e) {
    // Also ends a read or write the handshake is still waiting for.
    (transport as Transport | null)?.close();
    work.catch(() => {});
    throw e;
  } finally {
    timer.cancel();
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
  const host = settings.host || "localhost";
  const port = settings.port || 5432;
  let passwordAsked = false;
  const started = Date.now();
  let wire: PgWire;
  try {
    wire = await openSession(settings, host, port, user, () => passwordAsked = true);
  } catch (e) {
    if (e instanceof HecateError) throw e;
    throw connectError(e, settings, secrets, {
      elapsedMs: Date.now() - started,
      passwordAsked,
    });
  }
  return new PostgresConnection(wire, host, port, secrets);
}

/** The PostgreSQL {@link Driver}. */
export const postgresDriver: Driver = { connect: connectPostgres };

/** Returns the PostgreSQL {@link Driver}. */
export function createPostgresDriver(): Driver {
  return postgresDriver;
}
