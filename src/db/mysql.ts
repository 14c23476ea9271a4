/**
 * MySQL and MariaDB driver speaking the client/server protocol itself (./mysql/): no npm package
 * and no `node:` module is loaded for TLS `disable` and `verify` against the default trust store
 * without a client certificate (node:tls only for `insecure`, a pinned CA or a client
 * certificate, as in the PostgreSQL driver), so the cron path stays off Deno's Node compatibility
 * layer. See docs/ENGINES.md for why it is not mysql2 any more.
 *
 * - Statements without parameters go through the text protocol (COM_QUERY), which also allows
 *   several statements in one call; statements with parameters go through server-side prepared
 *   statements (COM_STMT_PREPARE, EXECUTE, CLOSE): the values travel separately in the binary
 *   protocol and are never spliced into the SQL.
 * - Rows stream: each is decoded from the reader's buffer when the consumer asks for it, and
 *   nothing more is read from the socket until then, so memory stays flat however many rows come.
 * - Every result of a statement (e.g. each SELECT of a procedure, and the procedure's final
 *   status) is its own {@link ResultSet}.
 * - Nothing is read from option files or MYSQL_* variables; every connection field is explicit,
 *   the session time zone is pinned to UTC and the character set to utf8mb4.
 *
 * @module
 */

import type {
  Column,
  ConnectSettings,
  DbConnection,
  Driver,
  QueryOptions,
  ResultSet,
  ValueMode,
} from "./driver.ts";
import { HecateError } from "../errors.ts";
import { isClientCertRefused } from "./tls_errors.ts";
import { mysqlRowPlan, mysqlTypeName } from "./mysql_values.ts";
import { clean, NET_REASONS as BASE_NET_REASONS, paramSecrets } from "./error_text.ts";
import { deadline } from "./pg/deadline.ts";
import { ConnectionLostError, Cursor, ProtocolError } from "./mysql/packet.ts";
import {
  MysqlServerError,
  MysqlWire,
  parseErr,
  PlainAuthRefusedError,
  UnsupportedAuthError,
} from "./mysql/session.ts";
import { readColumns, Results } from "./mysql/results.ts";
import { writeExecute } from "./mysql/params.ts";
import { CsvOut, csvRecord } from "./mysql/csv_out.ts";
import { csvField } from "./output/csv.ts";
import { tsvField } from "./output/tsv.ts";
import { TlsHandshakeError, TlsRefusedError, type Transport } from "./mysql/transport.ts";

/** Bytes gathered before one call of the `copyCsv` sink. */
const COPY_CHUNK_BYTES = 256 * 1024;
/** How long `close()` waits for the QUIT to be written. */
const QUIT_TIMEOUT_MS = 1000;

// ---------------------------------------------------------------------------------------------
// Errors

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Login refusals by server error number (besides SQLSTATE class 28). */
const AUTH_ERRNOS = new Set([
  1044, // ER_DBACCESS_DENIED_ERROR
  1045, // ER_ACCESS_DENIED_ERROR
  1251, // ER_NOT_SUPPORTED_AUTH_MODE
  1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
  1862, // ER_MUST_CHANGE_PASSWORD_LOGIN
  3118, // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)
  4151, // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
]);

/** Reasons for socket and TLS failures, by Node error code. */
const NET_REASONS: Readonly<Record<string, string>> = {
  ...BASE_NET_REASONS,
  ECONNRESET: "the server closed the connection",
};

/** The connect timeout ran out (connect, TLS and login together). */
class ConnectTimeoutError extends Error {
  constructor(ms: number) {
    super(`Timed out after ${ms} ms`);
    this.name = "ConnectTimeoutError";
  }
}

/** Names for server errors that src/db/retry.ts classifies (mysql2's names, kept). */
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1040: "ER_CON_COUNT_ERROR",
  1205: "ER_LOCK_WAIT_TIMEOUT",
  1213: "ER_LOCK_DEADLOCK",
};

/** The code retry and callers see: a known error's name, else the SQLSTATE. */
function serverDriverCode(e: MysqlServerError): string {
  return ERRNO_NAMES[e.errno] ?? e.sqlState;
}

/** `(error 1146, SQLSTATE 42S02)`. */
function serverCodes(e: MysqlServerError): string {
  return `(error ${e.errno}, SQLSTATE ${e.sqlState})`;
}

function target(s: ConnectSettings): string {
  const host = s.host || "localhost";
  return host.startsWith("/") ? `${host} (socket)` : `${host}:${s.port || 3306}`;
}

/** Deno's own errors name no code; give the shared table one to read. */
function denoCode(e: unknown): string | undefined {
  if (e instanceof Deno.errors.ConnectionRefused) return "ECONNREFUSED";
  if (e instanceof Deno.errors.ConnectionReset) return "ECONNRESET";
  if (e instanceof Deno.errors.TimedOut) return "ETIMEDOUT";
  if (e instanceof Deno.errors.AddrNotAvailable) return "EADDRNOTAVAIL";
  return undefined;
}

/** Maps a failure while connecting. */
function connectError(
  e: unknown,
  s: ConnectSettings,
  secrets: readonly string[],
): HecateError {
  if (e instanceof HecateError) return e;
  const where = `MySQL at ${target(s)}`;
  if (e instanceof MysqlServerError) {
    const msg = `${clean(e.sqlMessage, secrets)} ${serverCodes(e)}`;
    const driverCode = serverDriverCode(e);
    if (AUTH_ERRNOS.has(e.errno) || e.sqlState.startsWith("28")) {
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
  if (e instanceof UnsupportedAuthError) {
    return new HecateError("auth_failed", `Login to ${where} refused: ${e.message}`, { cause: e });
  }
  if (s.tls.mode !== "disable" && isClientCertRefused(e)) {
    const why = s.tls.certPem
      ? "the server refused the client certificate"
      : "the server requires a client certificate";
    return new HecateError("auth_failed", `Login to ${where} refused: TLS: ${why}`, { cause: e });
  }
  const code = errorCode(e) ?? denoCode(e);
  let reason: string;
  let driverCode = code;
  if (e instanceof ConnectTimeoutError) {
    reason = `timed out after ${s.connectTimeoutMs} ms`;
    driverCode = "ETIMEDOUT";
  } else if (e instanceof TlsRefusedError) {
    reason = "the server does not support TLS (use --tls disable to connect without)";
  } else if (e instanceof ProtocolError) {
    reason = `protocol error: ${clean(e.message, secrets)}`;
  } else if (code && NET_REASONS[code]) {
    reason = NET_REASONS[code];
  } else if (code && /^(ERR_TLS_|ERR_SSL_|CERT_|ERR_OSSL)/.test(code)) {
    reason = `TLS handshake failed (${code})`;
  } else if (e instanceof TlsHandshakeError) {
    reason = clean(e.message, secrets);
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
  if (e instanceof MysqlServerError) {
    return new HecateError(
      "query_failed",
      `Query failed: ${clean(e.sqlMessage, secrets)} ${serverCodes(e)}`,
      { cause: e, driverCode: serverDriverCode(e) },
    );
  }
  const text = e instanceof Error ? e.message : String(e);
  if (e instanceof TypeError || e instanceof RangeError) {
    // A parameter or statement that cannot be sent: nothing went out.
    return new HecateError("query_failed", `Query failed: ${clean(text, secrets)}`, { cause: e });
  }
  const code = errorCode(e) ?? denoCode(e);
  const reason = e instanceof ProtocolError
    ? `protocol error: ${clean(text, secrets)}`
    : code && NET_REASONS[code]
    ? NET_REASONS[code]
    : e instanceof ConnectionLostError
    ? "the server closed the connection"
    : clean(text, secrets);
  return new HecateError("connection_failed", `Connection to MySQL lost: ${reason}`, {
    cause: e,
    driverCode: code ?? (e instanceof ConnectionLostError ? "PROTOCOL_CONNECTION_LOST" : undefined),
  });
}

// ---------------------------------------------------------------------------------------------
// Rows

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/**
 * The rows of one set. Written by hand rather than as an async generator: a buffered row is
 * handed out without waiting, which matters at a million rows.
 */
class RowIterator implements AsyncIterableIterator<unknown[]> {
  /** Rows read once the set ended, else null. */
  count: number | null = null;
  #seen = 0;
  #ended = false;
  readonly #results: Results;
  readonly #isClosed: () => boolean;
  readonly #fail: (e: unknown) => HecateError;

  constructor(results: Results, isClosed: () => boolean, fail: (e: unknown) => HecateError) {
    this.#results = results;
    this.#isClosed = isClosed;
    this.#fail = fail;
  }

  /** Whether the set's end was reached (or the consumer left). */
  get ended(): boolean {
    return this.#ended;
  }

  #row(row: unknown[] | null): IteratorResult<unknown[]> {
    if (row === null) {
      this.#ended = true;
      this.count = this.#seen;
      return DONE;
    }
    this.#seen++;
    return { value: row, done: false };
  }

  async #slow(): Promise<IteratorResult<unknown[]>> {
    try {
      this.#results.prefetch();
      return this.#row(await this.#results.nextRow());
    } catch (e) {
      this.#ended = true;
      if (this.#isClosed()) return DONE;
      throw this.#fail(e);
    }
  }

  next(): Promise<IteratorResult<unknown[]>> {
    if (this.#ended || this.#isClosed()) {
      this.#ended = true;
      return Promise.resolve(DONE);
    }
    let row: unknown[] | null | undefined;
    try {
      row = this.#results.takeRow();
    } catch (e) {
      this.#ended = true;
      return Promise.reject(this.#fail(e));
    }
    if (row === undefined) return this.#slow();
    return Promise.resolve(this.#row(row));
  }

  /** Stopping early leaves the rest for the statement's loop to skip. */
  return(): Promise<IteratorResult<unknown[]>> {
    this.#ended = true;
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

async function* emptyRows(): AsyncGenerator<unknown[]> {}

// ---------------------------------------------------------------------------------------------
// Connection

class MysqlConnection implements DbConnection {
  readonly #wire: MysqlWire;
  readonly #secrets: readonly string[];
  #closed = false;
  #busy = false;

  constructor(wire: MysqlWire, secrets: readonly string[]) {
    this.#wire = wire;
    this.#secrets = secrets;
  }

  #check(): void {
    if (this.#closed) throw new HecateError("internal", "The MySQL connection is closed");
    if (this.#busy) {
      throw new HecateError(
        "internal",
        "A MySQL statement is still running on this connection: drain its rows first",
      );
    }
    if (this.#wire.dead) {
      throw new HecateError(
        "connection_failed",
        "Connection to MySQL lost: the session ended earlier",
      );
    }
  }

  /** COM_STMT_PREPARE: the statement's id and parameter count. */
  async #prepare(sql: string): Promise<{ id: number; params: number }> {
    const wire = this.#wire;
    wire.writer.u8(0x16).text(sql);
    await wire.command();
    await wire.next();
    const r = wire.reader;
    if (r.buf[r.start] === 0xff) throw parseErr(r.buf, r.start, r.end);
    if (r.buf[r.start] !== 0x00 || r.end - r.start < 12) {
      throw wire.broken("Malformed answer to a prepared statement");
    }
    const c = new Cursor(r.buf, r.start + 1, r.end);
    const id = c.u32();
    const columns = c.u16();
    const params = c.u16();
    if (params > 0) await readColumns(wire, params);
    if (columns > 0) await readColumns(wire, columns);
    return { id, params };
  }

  /** COM_STMT_CLOSE (the server does not answer it). */
  async #closeStatement(id: number): Promise<void> {
    const wire = this.#wire;
    wire.writer.u8(0x19).u32(id);
    await wire.command();
  }

  /**
   * Runs one statement (or, without parameters, several separated by `;`) and streams each of its
   * results as a set.
   */
  async *query(
    sql: string,
    params: readonly unknown[],
    options: QueryOptions = {},
  ): AsyncGenerator<ResultSet> {
    this.#check();
    const mode: ValueMode = options.mode ?? "typed";
    const secrets = [...this.#secrets, ...paramSecrets(params)];
    const fail = (e: unknown) => queryError(e, secrets);
    const wire = this.#wire;
    const binary = params.length > 0;
    const isClosed = () => this.#closed;
    this.#busy = true;
    let statement: number | null = null;
    let results: Results | null = null;
    try {
      if (binary) {
        const prepared = await this.#prepare(sql);
        statement = prepared.id;
        if (prepared.params !== params.length) {
          throw new HecateError(
            "query_failed",
            `Query failed: the statement has ${prepared.params} placeholders and ` +
              `${params.length} parameters were given`,
          );
        }
        writeExecute(wire.writer, prepared.id, params);
      } else {
        wire.writer.u8(0x03).text(sql);
      }
      await wire.command();
      results = new Results(wire, binary);
      let index = 0;
      for (;;) {
        const head = await results.head();
        if (head === null) return;
        if (head.columns.length === 0) {
          const count = head.affectedRows;
          yield { index: index++, columns: [], rows: emptyRows(), rowCount: () => count };
          continue;
        }
        const columns: Column[] = head.columns.map((f) => ({
          name: f.name,
          type: mysqlTypeName(f),
        }));
        results.setPlans(mysqlRowPlan(head.columns, mode));
        const rows = new RowIterator(results, isClosed, fail);
        yield { index: index++, columns, rows, rowCount: () => rows.count };
        if (this.#closed) return;
        // The consumer skipped the rest of the set: drop it to reach the next header.
        if (results.inRows) {
          while (await results.nextRow() !== null) { /* dropped */ }
        }
      }
    } catch (e) {
      if (this.#closed) return;
      throw fail(e);
    } finally {
      // Reached at the end, on an error, or when the caller stops early: let the command finish
      // (dropping rows) so the connection can run the next statement.
      try {
        if (!this.#closed && !wire.dead) {
          if (results && !results.ended) await results.drain();
          if (statement !== null) await this.#closeStatement(statement);
        }
      } catch {
        // the session is marked dead; the next call reports it
      } finally {
        this.#busy = false;
      }
    }
  }

  /**
   * Streams a query's result as CSV (header line first; RFC 4180 quoting as ./output/csv.ts
   * writes it) into the sink in chunks of about 256 KiB: the text protocol's value bytes go
   * straight into the chunk, without a JS value per row (see ./mysql/csv_out.ts). Each further
   * result set follows after a blank line with its own header, as the CSV formatter writes it.
   *
   * @returns Rows written.
   */
  copyCsv(sql: string, sink: (chunk: Uint8Array) => Promise<void>): Promise<number> {
    return this.#copy(sql, sink, false);
  }

  /**
   * Streams a query's result as TSV (PostgreSQL's COPY text format with a header line, as
   * ./output/tsv.ts writes it) the same way as {@link MysqlConnection.copyCsv}.
   *
   * @returns Rows written.
   */
  copyTsv(sql: string, sink: (chunk: Uint8Array) => Promise<void>): Promise<number> {
    return this.#copy(sql, sink, true);
  }

  async #copy(
    sql: string,
    sink: (chunk: Uint8Array) => Promise<void>,
    tsv: boolean,
  ): Promise<number> {
    this.#check();
    const wire = this.#wire;
    let sinkFailed = false;
    const out = new CsvOut(async (chunk) => {
      try {
        await sink(chunk);
      } catch (e) {
        sinkFailed = true;
        throw e;
      }
    }, COPY_CHUNK_BYTES);
    this.#busy = true;
    let results: Results | null = null;
    try {
      wire.writer.u8(0x03).text(sql);
      await wire.command();
      results = new Results(wire, false);
      let rows = 0;
      let sets = 0;
      for (;;) {
        const head = await results.head();
        if (head === null) break;
        if (head.columns.length === 0) continue;
        if (sets++ > 0) out.byte(0x0a);
        out.text(
          tsv
            ? head.columns.map((c) => tsvField(c.name)).join("\t")
            : head.columns.map((c) => csvField(c.name, head.columns.length === 1)).join(","),
        );
        out.byte(0x0a);
        const plans = mysqlRowPlan(head.columns, "text");
        for (;;) {
          const got = results.takeRawRow();
          if (got === 0) break;
          if (got < 0) {
            if (out.full) await out.flush();
            results.prefetch();
            await results.fill();
            continue;
          }
          const r = wire.reader;
          csvRecord(out, r.buf, r.start, r.end, plans, tsv);
          rows++;
        }
      }
      await out.flush();
      return rows;
    } catch (e) {
      if (sinkFailed) {
        // Cut off mid-result: the connection cannot be reused.
        wire.dead = true;
        await this.close();
        throw e;
      }
      if (e instanceof ProtocolError) wire.dead = true;
      throw queryError(e, this.#secrets);
    } finally {
      try {
        if (!this.#closed && !wire.dead && results && !results.ended) await results.drain();
      } catch {
        // the session is marked dead; the next call reports it
      } finally {
        this.#busy = false;
      }
    }
  }

  /** Sends a COM_PING. */
  async ping(): Promise<void> {
    this.#check();
    const wire = this.#wire;
    try {
      wire.writer.u8(0x0e);
      await wire.command();
      await wire.next();
      const r = wire.reader;
      if (r.buf[r.start] === 0xff) throw parseErr(r.buf, r.start, r.end);
      if (r.buf[r.start] !== 0x00) throw wire.broken("Unexpected answer to a ping");
    } catch (e) {
      throw queryError(e, this.#secrets);
    }
  }

  /** Says QUIT and closes the socket (at once when a statement is still running). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const wire = this.#wire;
    if (!this.#busy && !wire.dead) {
      const timer = deadline(QUIT_TIMEOUT_MS);
      try {
        await Promise.race([wire.quit(), timer.expired]);
      } catch {
        // the socket is gone already
      } finally {
        timer.cancel();
      }
    }
    wire.close();
  }
}

/** Reads the CA file for `verify` mode. */
async function readCa(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new HecateError("connection_failed", `Cannot read the TLS CA file ${path}`, { cause: e });
  }
}

/** Opens the session within the connect timeout. */
async function openSession(
  settings: ConnectSettings,
  host: string,
  port: number,
  user: string,
  password: string,
): Promise<MysqlWire> {
  const socket = host.startsWith("/");
  const caPem = !socket && settings.tls.mode === "verify" && settings.tls.caFile
    ? await readCa(settings.tls.caFile)
    : undefined;
  const abort = new AbortController();
  let transport: Transport | null = null;
  let timedOut = false;
  const serverPublicKey = settings.extra?.serverPublicKey;
  const work = MysqlWire.open({
    host,
    port,
    tls: settings.tls,
    ...(caPem === undefined ? {} : { caPem }),
    signal: abort.signal,
    user,
    password,
    ...(settings.database ? { database: settings.database } : {}),
    ...(serverPublicKey ? { serverPublicKey } : {}),
    onTransport: (t) => {
      transport = t;
      if (timedOut) t.close();
    },
  });
  const ms = settings.connectTimeoutMs;
  if (!(ms > 0)) return await work;
  const timer = deadline(ms);
  const expired = timer.expired.then((): never => {
    timedOut = true;
    abort.abort();
    (transport as Transport | null)?.close();
    throw new ConnectTimeoutError(ms);
  });
  try {
    return await Promise.race([work, expired]);
  } catch (e) {
    (transport as Transport | null)?.close();
    work.then((w) => w.close(), () => {});
    throw e;
  } finally {
    timer.cancel();
  }
}

/**
 * Opens a MySQL or MariaDB connection.
 *
 * @param settings Host (or a unix socket path starting with `/`), port, database, user,
 * password, TLS policy and timeout; host defaults to `localhost`, port to 3306 (nothing comes
 * from option files or MYSQL_* variables). `extra.serverPublicKey` pins the server's RSA key
 * (PEM) for `caching_sha2_password` without TLS.
 * @returns A live connection with the session time zone pinned to UTC.
 * @throws {HecateError} `auth_failed` for a refused login (including a refused client
 * certificate, and a password request Hecate refuses to answer), `connection_failed`
 * otherwise, `invalid_profile` when no user name is given.
 */
export async function connectMysql(settings: ConnectSettings): Promise<DbConnection> {
  const user = settings.user;
  if (!user) throw new HecateError("invalid_profile", "A MySQL connection needs a user name");
  const password = settings.password ?? "";
  const secrets = password.length > 0 ? [password] : [];
  const host = settings.host || "localhost";
  const port = settings.port || 3306;
  let wire: MysqlWire;
  try {
    wire = await openSession(settings, host, port, user, password);
  } catch (e) {
    throw connectError(e, settings, secrets);
  }
  // Pin the session so TIMESTAMP values and NOW() do not depend on the server's time zone; sent
  // in the same write as the first statement (one round trip less).
  wire.pipeline("SET time_zone = '+00:00'");
  return new MysqlConnection(wire, secrets);
}

/** The MySQL/MariaDB {@link Driver}. */
export const mysqlDriver: Driver = { connect: connectMysql };
