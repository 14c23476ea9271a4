/**
 * MySQL and MariaDB driver on npm `mysql2` (its callback core, not the promise wrapper).
 *
 * - Statements without parameters go through the text protocol (`query`), which also allows
 *   several statements in one call; statements with parameters go through server-side prepared
 *   statements (`execute`): the values travel separately in the binary protocol and are never
 *   spliced into the SQL, not even by mysql2's client-side escaping.
 * - Rows stream: mysql2 emits them one by one and the socket is paused while more than
 *   {@link HIGH_WATER} rows wait for the consumer, so memory stays flat however many rows come.
 * - Every result of a statement (e.g. each SELECT of a procedure, and the procedure's final
 *   status) is its own {@link ResultSet}.
 * - Nothing is read from option files or MYSQL_* variables; every connection field is explicit,
 *   the session time zone is pinned to UTC and the character set to utf8mb4.
 *
 * @module
 */

import mysql from "mysql2";
import type { ConnectionOptions as TlsConnectionOptions } from "node:tls";
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
import {
  type MysqlField,
  mysqlParam,
  mysqlRowConverter,
  mysqlTypeName,
  type TypedParameters,
} from "./mysql_values.ts";
import { clean, NET_REASONS as BASE_NET_REASONS, paramSecrets } from "./error_text.ts";

/** Rows buffered before the socket is paused. */
const HIGH_WATER = 2000;
/** Rows left in the buffer when the socket is resumed. */
const LOW_WATER = 500;
/** How long `close()` waits for the server to acknowledge QUIT. */
const QUIT_TIMEOUT_MS = 1000;

/** The parts of mysql2's Connection used here (its typings describe the promise-less API). */
interface RawConnection {
  threadId: number | null;
  query(options: Record<string, unknown>): RawCommand;
  execute(options: Record<string, unknown>): RawCommand;
  ping(cb: (err: unknown) => void): void;
  pause(): void;
  resume(): void;
  end(cb?: (err: unknown) => void): void;
  destroy(): void;
  connect(cb: (err: unknown) => void): void;
  on(event: "error", listener: (err: unknown) => void): void;
  off(event: "error", listener: (err: unknown) => void): void;
}

/** A running mysql2 command (Query or Execute) as an event emitter. */
interface RawCommand {
  on(event: "fields", listener: (fields: MysqlField[] | undefined) => void): RawCommand;
  on(event: "result", listener: (row: unknown) => void): RawCommand;
  on(event: "end", listener: () => void): RawCommand;
  on(event: "error", listener: (err: unknown) => void): RawCommand;
}

/** mysql2's OK packet for statements without rows. */
interface OkPacket {
  affectedRows: number;
}

/** Row options common to `query` and `execute`: nothing loses precision on the way in. */
const ROW_OPTIONS = {
  rowsAsArray: true,
  supportBigNumbers: true,
  bigNumberStrings: true,
  dateStrings: true,
  decimalNumbers: false,
  typeCast: true,
  nestTables: false,
} as const;

// ---------------------------------------------------------------------------------------------
// Errors

/** A server error as mysql2 builds it. */
interface ServerError {
  code: string;
  errno: number;
  sqlState: string;
  sqlMessage?: string;
  message: string;
}

function isServerError(e: unknown): e is ServerError {
  if (!(e instanceof Error)) return false;
  const x = e as Partial<ServerError>;
  return typeof x.errno === "number" && typeof x.sqlState === "string" && x.sqlState !== "";
}

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
  PROTOCOL_CONNECTION_LOST: "the server closed the connection",
  HANDSHAKE_NO_SSL_SUPPORT:
    "the server does not support TLS (use --tls disable to connect without)",
};

/** `(error 1146, SQLSTATE 42S02)`. */
function serverCodes(e: ServerError): string {
  return `(error ${e.errno}, SQLSTATE ${e.sqlState})`;
}

function target(s: ConnectSettings): string {
  const host = s.host || "localhost";
  return host.startsWith("/") ? `${host} (socket)` : `${host}:${s.port || 3306}`;
}

/** Maps a failure while connecting. */
function connectError(
  e: unknown,
  s: ConnectSettings,
  secrets: readonly string[],
): HecateError {
  if (e instanceof HecateError) return e;
  const where = `MySQL at ${target(s)}`;
  if (isServerError(e)) {
    const msg = `${clean(e.sqlMessage ?? e.message, secrets)} ${serverCodes(e)}`;
    if (AUTH_ERRNOS.has(e.errno) || e.sqlState.startsWith("28")) {
      return new HecateError("auth_failed", `Login to ${where} refused: ${msg}`, { cause: e });
    }
    return new HecateError("connection_failed", `Cannot connect to ${where}: ${msg}`, { cause: e });
  }
  const code = errorCode(e);
  const text = e instanceof Error ? e.message : String(e);
  if (code === "ETIMEDOUT") {
    return new HecateError(
      "connection_failed",
      `Cannot connect to ${where}: timed out after ${s.connectTimeoutMs} ms`,
      { cause: e },
    );
  }
  if (s.tls.mode !== "disable" && isClientCertRefused(e)) {
    const why = s.tls.certPem
      ? "the server refused the client certificate"
      : "the server requires a client certificate";
    return new HecateError("auth_failed", `Login to ${where} refused: TLS: ${why}`, { cause: e });
  }
  let reason: string;
  if (code && NET_REASONS[code]) {
    reason = NET_REASONS[code];
  } else if (code && /^(ERR_TLS_|ERR_SSL_|CERT_|ERR_OSSL)/.test(code)) {
    reason = `TLS handshake failed (${code})`;
  } else if (/certificate|tls|ssl|handshake/i.test(text)) {
    reason = `TLS handshake failed: ${clean(text, secrets)}`;
  } else {
    reason = clean(text, secrets) || "unknown error";
    if (code) reason += ` (${code})`;
  }
  return new HecateError("connection_failed", `Cannot connect to ${where}: ${reason}`, {
    cause: e,
  });
}

/** Maps a failure while running a statement. */
function queryError(e: unknown, secrets: readonly string[]): HecateError {
  if (e instanceof HecateError) return e;
  if (isServerError(e)) {
    return new HecateError(
      "query_failed",
      `Query failed: ${clean(e.sqlMessage ?? e.message, secrets)} ${serverCodes(e)}`,
      { cause: e },
    );
  }
  const code = errorCode(e);
  const text = e instanceof Error ? e.message : String(e);
  if (e instanceof TypeError || e instanceof RangeError) {
    // mysql2 rejects a parameter it cannot bind before anything is sent.
    return new HecateError("query_failed", `Query failed: ${clean(text, secrets)}`, { cause: e });
  }
  const reason = code && NET_REASONS[code] ? NET_REASONS[code] : clean(text, secrets);
  return new HecateError("connection_failed", `Connection to MySQL lost: ${reason}`, { cause: e });
}

// ---------------------------------------------------------------------------------------------
// Streaming a command's results

/** Marks the start of a result set with rows. */
class SetStart {
  constructor(readonly fields: MysqlField[]) {}
}
/** A result without rows (the OK packet of INSERT, UPDATE, DDL, or a procedure's status). */
class SetOk {
  constructor(readonly affectedRows: number) {}
}
/** The command finished. */
class End {}
/** The command failed. */
class Failed {
  constructor(readonly error: unknown) {}
}

type Item = unknown[] | SetStart | SetOk | End | Failed;

/**
 * Turns a command's events into a pull queue. The socket is paused while the queue holds more
 * than {@link HIGH_WATER} rows and resumed below {@link LOW_WATER}; in discard mode rows are
 * dropped as they arrive (used when the consumer stops early, so the command can finish).
 */
class CommandQueue {
  #items: Item[] = [];
  #head = 0;
  #rows = 0;
  #paused = false;
  #wake: (() => void) | null = null;
  #discard = false;
  #done = false;
  readonly #conn: RawConnection;

  constructor(conn: RawConnection, cmd: RawCommand) {
    this.#conn = conn;
    // A set with rows announces its columns; an OK packet comes with `fields` undefined and then a
    // `result` holding the OK packet.
    let expectOk = false;
    cmd.on("fields", (fields) => {
      if (fields === undefined) {
        expectOk = true;
      } else {
        expectOk = false;
        this.#push(new SetStart(fields));
      }
    });
    cmd.on("result", (row) => {
      if (expectOk) {
        expectOk = false;
        this.#push(new SetOk((row as OkPacket | null)?.affectedRows ?? 0));
        return;
      }
      if (this.#discard) return;
      this.#rows++;
      this.#push(row as unknown[]);
      if (this.#rows >= HIGH_WATER && !this.#paused) {
        this.#paused = true;
        conn.pause();
      }
    });
    cmd.on("end", () => this.#finish(new End()));
    cmd.on("error", (err) => this.#finish(new Failed(err)));
  }

  #finish(item: End | Failed): void {
    if (this.#done) return;
    this.#done = true;
    this.#push(item);
  }

  #push(item: Item): void {
    this.#items.push(item);
    const wake = this.#wake;
    if (wake) {
      this.#wake = null;
      wake();
    }
  }

  /** Whether the command has finished (its last item is queued). */
  get done(): boolean {
    return this.#done;
  }

  /** The next item if one is queued (taking it), else undefined. */
  shift(): Item | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined as unknown as Item;
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (Array.isArray(item)) {
      this.#rows--;
      if (this.#paused && this.#rows <= LOW_WATER) {
        this.#paused = false;
        this.#conn.resume();
      }
    }
    return item;
  }

  /** The next item if one is queued (without taking it), else undefined. */
  peek(): Item | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** Resolves once an item is queued. */
  wait(): Promise<void> {
    if (this.#head < this.#items.length) return Promise.resolve();
    return new Promise<void>((r) => this.#wake = r);
  }

  /** The next item, waiting for one if needed. */
  async next(): Promise<Item> {
    for (;;) {
      const item = this.shift();
      if (item !== undefined) return item;
      await this.wait();
    }
  }

  /** Ends the stream at once (the connection was closed under it). */
  abort(): void {
    this.#finish(new End());
  }

  /** Fails the stream (the connection broke: mysql2 reports that on the connection only). */
  fail(err: unknown): void {
    this.#finish(new Failed(err));
  }

  /** Drops buffered and future rows and lets the socket run, so the command can finish. */
  discardRows(): void {
    this.#discard = true;
    this.#items = this.#items.slice(this.#head).filter((i) => !Array.isArray(i));
    this.#head = 0;
    this.#rows = 0;
    if (this.#paused) {
      this.#paused = false;
      this.#conn.resume();
    }
  }
}

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/**
 * The rows of one set, pulled from the queue. Written by hand rather than as an async generator:
 * a queued row is handed out without waiting, which matters at a million rows.
 */
class RowIterator implements AsyncIterableIterator<unknown[]> {
  /** Rows read once the set ended, else null. */
  count: number | null = null;
  #seen = 0;
  #ended = false;
  readonly #queue: CommandQueue;
  readonly #convert: (row: unknown[]) => unknown[];
  readonly #isClosed: () => boolean;

  constructor(
    queue: CommandQueue,
    convert: (row: unknown[]) => unknown[],
    isClosed: () => boolean,
  ) {
    this.#queue = queue;
    this.#convert = convert;
    this.#isClosed = isClosed;
  }

  #step(): IteratorResult<unknown[]> | undefined {
    if (this.#ended) return DONE;
    if (this.#isClosed()) {
      this.#ended = true;
      return DONE;
    }
    const next = this.#queue.peek();
    if (next === undefined) return undefined;
    if (!Array.isArray(next)) {
      // The set is over; the marker stays queued for the statement's loop.
      this.#ended = true;
      this.count = this.#seen;
      return DONE;
    }
    this.#queue.shift();
    this.#seen++;
    return { value: this.#convert(next), done: false };
  }

  async #waitAndStep(): Promise<IteratorResult<unknown[]>> {
    for (;;) {
      await this.#queue.wait();
      const r = this.#step();
      if (r) return r;
    }
  }

  next(): Promise<IteratorResult<unknown[]>> {
    const r = this.#step();
    return r ? Promise.resolve(r) : this.#waitAndStep();
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

// ---------------------------------------------------------------------------------------------
// Connection

class MysqlConnection implements DbConnection {
  readonly #conn: RawConnection;
  readonly #typed: TypedParameters;
  readonly #secrets: readonly string[];
  #closed = false;
  #busy = false;
  #fatal: unknown = null;
  #queue: CommandQueue | null = null;

  constructor(conn: RawConnection, typed: TypedParameters, secrets: readonly string[]) {
    this.#conn = conn;
    this.#typed = typed;
    this.#secrets = secrets;
    // A dropped socket must not become an unhandled 'error' event, and a statement streaming at
    // that moment must end with the error rather than wait for rows forever.
    conn.on("error", (e) => {
      this.#fatal = e;
      this.#queue?.fail(e);
    });
  }

  #check(): void {
    if (this.#closed) throw new HecateError("internal", "The MySQL connection is closed");
    if (this.#busy) {
      throw new HecateError(
        "internal",
        "A MySQL statement is still running on this connection: drain its rows first",
      );
    }
    if (this.#fatal) throw queryError(this.#fatal, this.#secrets);
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
    const binary = params.length > 0;
    let cmd: RawCommand;
    try {
      cmd = binary
        ? this.#conn.execute({
          sql,
          values: params.map((p) => mysqlParam(p, this.#typed)),
          ...ROW_OPTIONS,
        })
        : this.#conn.query({ sql, ...ROW_OPTIONS });
    } catch (e) {
      throw queryError(e, secrets);
    }
    this.#busy = true;
    const queue = new CommandQueue(this.#conn, cmd);
    this.#queue = queue;
    const isClosed = () => this.#closed;
    let index = 0;
    try {
      for (;;) {
        const item = await queue.next();
        if (item instanceof End) return;
        if (item instanceof Failed) throw queryError(item.error, secrets);
        if (item instanceof SetOk) {
          const count = item.affectedRows;
          yield { index: index++, columns: [], rows: emptyRows(), rowCount: () => count };
          continue;
        }
        if (!(item instanceof SetStart)) continue; // rows of a set the consumer skipped
        const columns: Column[] = item.fields.map((f) => ({
          name: f.name,
          type: mysqlTypeName(f),
        }));
        const convert = mysqlRowConverter(item.fields, mode, binary);
        const rows = new RowIterator(queue, convert, isClosed);
        yield { index: index++, columns, rows, rowCount: () => rows.count };
      }
    } finally {
      // Reached at the end, on an error, or when the caller stops early: let the command finish
      // (dropping rows) so the connection can run the next statement.
      if (!queue.done && !this.#closed) {
        queue.discardRows();
        for (;;) {
          const item = await queue.next();
          if (item instanceof End || item instanceof Failed) break;
        }
      }
      this.#busy = false;
      this.#queue = null;
    }
  }

  /** Sends a COM_PING. */
  async ping(): Promise<void> {
    this.#check();
    try {
      await new Promise<void>((resolve, reject) =>
        this.#conn.ping((err) => err ? reject(err) : resolve())
      );
    } catch (e) {
      throw queryError(e, this.#secrets);
    }
  }

  /** Says QUIT and closes the socket (at once when a statement is still running). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#busy || this.#fatal) {
      this.#conn.destroy();
      // Wake a consumer waiting for rows that will never come.
      this.#queue?.abort();
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#conn.end(() => resolve())),
      new Promise<void>((resolve) => timer = setTimeout(resolve, QUIT_TIMEOUT_MS)),
    ]);
    clearTimeout(timer);
    this.#conn.destroy();
  }
}

async function* emptyRows(): AsyncGenerator<unknown[]> {}

/** Reads the CA file for `verify` mode. */
async function readCa(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new HecateError("connection_failed", `Cannot read the TLS CA file ${path}`, { cause: e });
  }
}

/** mysql2's `ssl` option from the TLS policy (undefined: no TLS). */
async function sslOptions(
  s: ConnectSettings,
): Promise<(TlsConnectionOptions & { verifyIdentity?: boolean }) | undefined> {
  const tls = s.tls;
  if (tls.mode === "disable") return undefined;
  const verify = tls.mode === "verify";
  // verifyIdentity makes mysql2 check the host name too; without it only the chain is checked.
  const opts: TlsConnectionOptions & { verifyIdentity?: boolean } = {
    rejectUnauthorized: verify,
    verifyIdentity: verify,
  };
  if (verify && tls.caFile) opts.ca = await readCa(tls.caFile);
  if (tls.certPem) opts.cert = tls.certPem;
  if (tls.keyPem) opts.key = tls.keyPem;
  return opts;
}

/**
 * Opens a MySQL or MariaDB connection.
 *
 * @param settings Host (or a unix socket path starting with `/`), port, database, user,
 * password, TLS policy and timeout; host defaults to `localhost`, port to 3306 (nothing comes
 * from option files or MYSQL_* variables).
 * @returns A live connection with the session time zone pinned to UTC.
 * @throws {HecateError} `auth_failed` for a refused login (including a refused client
 * certificate), `connection_failed` otherwise, `invalid_profile` when no user name is given.
 */
export async function connectMysql(settings: ConnectSettings): Promise<DbConnection> {
  const user = settings.user;
  if (!user) throw new HecateError("invalid_profile", "A MySQL connection needs a user name");
  const password = settings.password ?? "";
  const secrets = password.length > 0 ? [password] : [];
  const host = settings.host || "localhost";
  const socket = host.startsWith("/");
  const ssl = socket ? undefined : await sslOptions(settings);
  const config: Record<string, unknown> = {
    ...(socket ? { socketPath: host } : { host, port: settings.port || 3306 }),
    user,
    password,
    ...(settings.database ? { database: settings.database } : {}),
    ...(ssl ? { ssl } : {}),
    // A server may ask for the password in cleartext (RDS IAM logins do): answered only over TLS
    // that verified the server, as the PostgreSQL driver does.
    ...(ssl && settings.tls.mode === "verify" ? { enableCleartextPlugin: true } : {}),
    connectTimeout: settings.connectTimeoutMs,
    charset: "UTF8MB4_UNICODE_CI",
    // Lets a statement without parameters hold several statements (each its own result set);
    // statements with parameters are prepared, and a prepared statement is always one statement.
    multipleStatements: true,
    // mysql2 never rewrites the SQL text (its client-side `?` escaping stays unused).
    queryFormat: (text: string) => text,
    jsonStrings: true,
    timezone: "Z",
    // Never let the server make us send a local file (LOAD DATA LOCAL INFILE).
    flags: ["-LOCAL_FILES"],
    connectAttributes: { program_name: "hecate" },
    enableKeepAlive: true,
    ...ROW_OPTIONS,
  };
  let conn: RawConnection;
  try {
    conn = mysql.createConnection(config) as unknown as RawConnection;
  } catch (e) {
    throw connectError(e, settings, secrets);
  }
  // The TLS layer checks the certificate against `servername || host || socket._host`; mysql2
  // passes no servername for an IP address and no host, and Deno's net.Socket does not record
  // `_host` as Node's does, so an IP would be checked as "localhost". Record it here.
  const stream = (conn as unknown as { stream?: { _host?: string } }).stream;
  if (!socket && stream && !stream._host) stream._host = host;
  // Errors emitted while connecting are reported through connect()'s callback.
  const onError = () => {};
  conn.on("error", onError);
  try {
    await new Promise<void>((resolve, reject) =>
      conn.connect((err) => err ? reject(err) : resolve())
    );
    // Pin the session so TIMESTAMP values and NOW() do not depend on the server's time zone.
    await new Promise<void>((resolve, reject) => {
      const cmd = conn.query({ sql: "SET time_zone = '+00:00'" });
      cmd.on("error", reject);
      cmd.on("end", resolve);
    });
  } catch (e) {
    conn.destroy();
    throw connectError(e, settings, secrets);
  } finally {
    conn.off("error", onError);
  }
  return new MysqlConnection(conn, mysql.TypedParameter as unknown as TypedParameters, secrets);
}

/** The MySQL/MariaDB {@link Driver}. */
export const mysqlDriver: Driver = { connect: connectMysql };
