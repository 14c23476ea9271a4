/**
 * SQL Server driver on npm `tedious`. Loaded only through the registry's lazy import: tedious
 * costs about 200 ms of start-up that users of other engines must not pay.
 *
 * Statements with parameters go out as an RPC call of `sp_executesql` (tedious `execSql`), with
 * `@p1, @p2, ...` bound through `Request.addParameter`; statements without parameters go out as a
 * SQL batch. Every result set streams: rows are queued as tedious parses them and the request is
 * paused while the queue is full, so memory does not grow with the result. Stopping early sends
 * an ATTENTION (`Connection.cancel()`) and waits for the server's acknowledgement.
 *
 * Values in `typed` mode: tinyint/smallint/int -> number, bigint -> bigint, real/float -> number,
 * decimal/numeric/money -> {@link Decimal}, bit -> boolean, character types -> string,
 * binary types -> Uint8Array, uniqueidentifier -> upper-case text, date/time types -> ISO-8601
 * text (no time zone drift: tedious runs with `useUTC`). Limits that come from tedious (it parses
 * these into JS numbers or Dates): decimal/numeric are exact only up to 15 significant digits;
 * datetimeoffset arrives as its UTC instant, so the offset is always written `+00:00`;
 * datetime2/time keep all 7 fractional digits. See docs/ENGINES.md.
 *
 * @module
 */

// First: tedious must find the stand-ins for its Azure packages when it loads (from source).
import "./tedious_source.ts";
import net from "node:net";
import { lookup } from "node:dns/promises";
import {
  Connection,
  type ConnectionAuthentication,
  type ConnectionConfiguration,
  Request,
} from "tedious";
import type {
  Column,
  ConnectSettings,
  DbConnection,
  Driver,
  QueryOptions,
  ResultSet,
} from "./driver.ts";
import { HecateError } from "../errors.ts";
import { makeRowConverter, paramFor, sqlTypeName, type TdsColumn } from "./mssql_values.ts";
import { connectError, queryError } from "./mssql_errors.ts";
import { clean, paramSecrets } from "./error_text.ts";
import { csvField } from "./output/csv.ts";

/** Rows queued before the request is paused. */
const HIGH_WATER = 2000;
/** Rows left in the queue when a paused request is resumed. */
const LOW_WATER = 200;
/** Text gathered before {@link MssqlConnection.copyCsv} writes a chunk (UTF-16 code units). */
const CSV_CHUNK = 256 * 1024;
/**
 * Text {@link MssqlConnection.copyCsv} gathers while a chunk is being written before it stops
 * reading from the server: rows keep being parsed during a write, and memory stays bounded.
 */
const CSV_PENDING_MAX = 4 * CSV_CHUNK;
/** How long to wait for the server to acknowledge a cancel before dropping the connection. */
const CANCEL_TIMEOUT_MS = 5000;

// ---------------------------------------------------------------------------------------------
// Streaming

type Event =
  | { t: "cols"; columns: TdsColumn[] }
  | { t: "row"; values: unknown[] }
  | { t: "count"; rowCount: number }
  | { t: "end"; error?: unknown };

/** A queue of request events that pauses the request while full. */
class Feed {
  readonly #items: Event[] = [];
  #head = 0;
  /** Callers waiting for the next event (more than one only if a consumer calls next() early). */
  #wake: (() => void)[] = [];
  #paused = false;
  ended = false;
  readonly request: Request;
  readonly finished: Promise<void>;
  #finish!: () => void;

  constructor(request: Request) {
    this.request = request;
    this.finished = new Promise((r) => this.#finish = r);
  }

  get #size(): number {
    return this.#items.length - this.#head;
  }

  push(e: Event): void {
    this.#items.push(e);
    if (e.t === "end") {
      this.ended = true;
      this.#finish();
    }
    if (e.t === "row" && !this.#paused && this.#size >= HIGH_WATER) {
      this.#paused = true;
      this.request.pause();
    }
    if (this.#wake.length > 0) { for (const w of this.#wake.splice(0)) w(); }
  }

  /** Puts an event back at the front. */
  unshift(e: Event): void {
    this.#items[--this.#head] = e;
  }

  async next(): Promise<Event> {
    while (this.#size === 0) await this.wait();
    return this.take()!;
  }

  /** The next event if one is queued (no promise: the row loop's fast path). */
  take(): Event | undefined {
    if (this.#size === 0) return undefined;
    const e = this.#items[this.#head++]!;
    if (this.#head > 4096) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#paused && this.#size <= LOW_WATER) this.resume();
    return e;
  }

  /** Resolves when the next event is pushed. */
  wait(): Promise<void> {
    return new Promise<void>((r) => this.#wake.push(r));
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.request.resume();
  }
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * The rows of one result set. A hand-written iterator rather than an async generator: a row
 * already queued is handed over in an already-settled promise, without the generator's and an
 * async `next()`'s extra promise hops (a 1,000,000-row export spent about as much time in those
 * as in tedious itself).
 */
class SetRows implements AsyncIterableIterator<unknown[]> {
  readonly #feed: Feed;
  readonly #convert: (values: unknown[]) => unknown[];
  #seen = 0;
  #done = false;
  #returned = false;
  /** Rows affected, once the set is drained: its DONE count, else the rows seen. */
  rowCount: number | null = null;

  constructor(feed: Feed, convert: (values: unknown[]) => unknown[]) {
    this.#feed = feed;
    this.#convert = convert;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown[], undefined>> {
    return this.#returned ? Promise.resolve(DONE) : this.#step();
  }

  /** Reads the rows the consumer left, up to the set's end. */
  async drain(): Promise<void> {
    while (!(await this.#step()).done) {
      // discard rows the caller did not read
    }
  }

  #step(): Promise<IteratorResult<unknown[], undefined>> {
    for (;;) {
      if (this.#done) return Promise.resolve(DONE);
      const r = this.#feed.take();
      if (r === undefined) return this.#feed.wait().then(() => this.#step());
      if (r.t === "row") {
        this.#seen++;
        return Promise.resolve({ done: false, value: this.#convert(r.values) });
      }
      if (r.t === "count") {
        this.rowCount = r.rowCount;
      } else {
        // The next set or the end: leave it for the outer loop. Without a DONE count
        // (SET NOCOUNT ON) the rows seen are the count.
        this.#feed.unshift(r);
        if (this.rowCount === null && !(r.t === "end" && r.error)) this.rowCount = this.#seen;
      }
      this.#done = true;
    }
  }

  /** The consumer stopped early: the rest is drained (or cancelled) by the statement. */
  return(): Promise<IteratorResult<unknown[], undefined>> {
    this.#returned = true;
    return Promise.resolve(DONE);
  }
}

class MssqlConnection implements DbConnection {
  readonly #conn: Connection;
  readonly #secrets: readonly string[];
  #closed = false;
  #busy = false;
  #lost: unknown;

  constructor(conn: Connection, secrets: readonly string[]) {
    this.#conn = conn;
    this.#secrets = secrets;
    // A dropped socket between statements must not become an unhandled 'error' event.
    conn.on("error", (e) => this.#lost = e);
    conn.on("end", () => this.#closed = true);
  }

  #check(): void {
    if (this.#closed) {
      throw this.#lost
        ? queryError(this.#lost, this.#secrets)
        : new HecateError("internal", "The SQL Server connection is closed");
    }
    if (this.#busy) {
      throw new HecateError(
        "internal",
        "A SQL Server statement is still running on this connection: drain its rows first",
      );
    }
  }

  /** Runs a batch (no parameters) or `sp_executesql` (parameters) and streams each result set. */
  async *query(
    sql: string,
    params: readonly unknown[],
    options: QueryOptions = {},
  ): AsyncGenerator<ResultSet> {
    this.#check();
    const mode = options.mode ?? "typed";
    const secrets = [...this.#secrets, ...paramSecrets(params)];
    const request = new Request(
      sql,
      (err) => feed.push(err ? { t: "end", error: err } : { t: "end" }),
    );
    // The callback runs only after execSql below, when `feed` exists.
    const feed: Feed = new Feed(request);
    request.on("columnMetadata", (cols) => {
      const list = (Array.isArray(cols) ? cols : Object.values(cols)) as unknown as TdsColumn[];
      feed.push({ t: "cols", columns: list });
    });
    request.on("row", (cols) => {
      // useColumnNames is off: an array of columns.
      const list = cols as unknown as { value: unknown }[];
      const values = new Array(list.length);
      for (let i = 0; i < list.length; i++) values[i] = list[i]!.value;
      feed.push({ t: "row", values });
    });
    const onDone = (rowCount: number | undefined) => {
      if (rowCount !== undefined) feed.push({ t: "count", rowCount });
    };
    request.on("doneInProc", onDone);
    request.on("done", onDone);
    this.#busy = true;
    try {
      params.forEach((p, i) => {
        const { type, value } = paramFor(p);
        request.addParameter(`p${i + 1}`, type, value);
      });
      if (params.length > 0) this.#conn.execSql(request);
      else this.#conn.execSqlBatch(request);
    } catch (e) {
      this.#busy = false;
      throw queryError(e, secrets);
    }

    let index = 0;
    /** Drains the rest of the current set, if its consumer left rows unread. */
    let drainCurrent: (() => Promise<void>) | undefined;
    try {
      for (;;) {
        if (drainCurrent) await drainCurrent();
        const ev = await feed.next();
        if (ev.t === "end") {
          if (ev.error) throw queryError(ev.error, secrets);
          return;
        }
        if (ev.t === "count") {
          const n = ev.rowCount;
          yield {
            index: index++,
            columns: [],
            rows: (async function* () {})(),
            rowCount: () => n,
          };
          continue;
        }
        if (ev.t !== "cols") continue; // rows without metadata cannot happen
        const columns: Column[] = ev.columns.map((c) => ({
          name: c.colName,
          type: sqlTypeName(c),
        }));
        const iterator = new SetRows(feed, makeRowConverter(ev.columns, mode));
        drainCurrent = () => {
          drainCurrent = undefined;
          return iterator.drain();
        };
        yield { index: index++, columns, rows: iterator, rowCount: () => iterator.rowCount };
      }
    } finally {
      if (!feed.ended) await this.#cancel(feed);
      this.#busy = false;
    }
  }

  /** Sends ATTENTION and waits for the server to acknowledge it (or drops the connection). */
  async #cancel(feed: Feed): Promise<void> {
    feed.resume();
    this.#conn.cancel();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const acknowledged = await Promise.race([
      feed.finished.then(() => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), CANCEL_TIMEOUT_MS)),
    ]);
    clearTimeout(timer);
    if (!acknowledged) await this.close();
  }

  /**
   * Runs a batch and writes its result sets as CSV, byte for byte what the streaming path with
   * the CSV formatter writes (the same text values and {@link csvField}; a blank line and a new
   * header between sets; nothing for a statement without columns), but formatted in tedious's
   * row events: no promise per row. Rows keep being read while a chunk is written; the request
   * is paused only when another 1 MiB of text has gathered meanwhile.
   *
   * @param sql The batch (no parameters).
   * @param sink Receives chunks of about 256 KiB, one at a time.
   * @returns Rows written, plus the row counts of statements without result columns (what the
   * streaming path counts).
   */
  async copyCsv(sql: string, sink: (chunk: Uint8Array) => Promise<void>): Promise<number> {
    this.#check();
    this.#busy = true;
    let rows = 0;
    let texts: string[] = [];
    let size = 0;
    let writing: Promise<void> | undefined;
    let writeError: unknown;
    const encoder = new TextEncoder();
    let paused = false;
    const add = (line: string) => {
      texts.push(line);
      size += line.length;
      if (size < CSV_CHUNK || writeError !== undefined) return;
      if (!writing) startWrite();
      else if (size >= CSV_PENDING_MAX && !paused) {
        // The sink is slower than the server: stop reading until the write in flight is done.
        paused = true;
        request.pause();
      }
    };
    const startWrite = () => {
      const chunk = encoder.encode(texts.join(""));
      texts = [];
      size = 0;
      writing = sink(chunk).then(
        () => {
          writing = undefined;
          if (size >= CSV_CHUNK) startWrite();
          if (paused && size < CSV_PENDING_MAX) {
            paused = false;
            request.resume();
          }
        },
        (e) => {
          writing = undefined;
          writeError = e;
          if (paused) request.resume();
          this.#conn.cancel(); // the request then ends; its callback reports the write error
        },
      );
    };
    let convert: ((values: unknown[]) => unknown[]) | undefined;
    let width = 0;
    let single = false;
    let setsWritten = 0;
    let inSet = false;
    let settle!: (err: Error | null | undefined) => void;
    const request = new Request(sql, (err) => settle(err));
    request.on("columnMetadata", (cols) => {
      const list = (Array.isArray(cols) ? cols : Object.values(cols)) as unknown as TdsColumn[];
      convert = makeRowConverter(list, "text");
      width = list.length;
      single = width === 1;
      inSet = true;
      if (width === 0) return;
      let line = setsWritten++ > 0 ? "\n" : "";
      for (let i = 0; i < width; i++) {
        line += (i > 0 ? "," : "") + csvField(list[i]!.colName, single);
      }
      add(line + "\n");
    });
    request.on("row", (cols) => {
      rows++;
      if (width === 0 || writeError !== undefined) return;
      const list = cols as unknown as { value: unknown }[];
      const values = new Array(width);
      for (let i = 0; i < width; i++) values[i] = list[i]!.value;
      convert!(values);
      let line = "";
      for (let i = 0; i < width; i++) {
        line += (i > 0 ? "," : "") + csvField(values[i] as string | null, single);
      }
      add(line + "\n");
    });
    const onDone = (rowCount: number | undefined) => {
      if (rowCount === undefined) return;
      if (inSet) inSet = false; // the count of the set just written
      else rows += rowCount; // a statement without result columns
    };
    request.on("doneInProc", onDone);
    request.on("done", onDone);
    const secrets = this.#secrets;
    try {
      const ended = new Promise<void>((resolve, reject) => {
        settle = (err) => err && writeError === undefined ? reject(err) : resolve();
        this.#conn.execSqlBatch(request);
      });
      // Whatever happens, no write is left running once this returns.
      await ended.finally(async () => {
        while (writing) await writing;
      });
      if (writeError !== undefined) throw writeError;
      if (texts.length > 0) await sink(encoder.encode(texts.join("")));
      return rows;
    } catch (e) {
      if (e === writeError) throw e;
      throw queryError(e, secrets);
    } finally {
      this.#busy = false;
    }
  }

  /** Runs `SELECT 1` as a batch. */
  async ping(): Promise<void> {
    this.#check();
    this.#busy = true;
    try {
      await new Promise<void>((resolve, reject) => {
        const r = new Request("SELECT 1", (err) => err ? reject(err) : resolve());
        this.#conn.execSqlBatch(r);
      });
    } catch (e) {
      throw queryError(e, this.#secrets);
    } finally {
      this.#busy = false;
    }
  }

  /** Closes the connection. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      this.#conn.once("end", () => {
        clearTimeout(timer);
        resolve();
      });
      this.#conn.close();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Connect

async function readCa(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new HecateError("connection_failed", `Cannot read the TLS CA file ${path}`, { cause: e });
  }
}

/** Opens one TCP connection whose `end` and `close` events arrive a timer turn late. */
function openSocket(host: string, port: number, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const socket = net.connect({ host, port });
    const emit = socket.emit.bind(socket) as (event: string, ...a: unknown[]) => boolean;
    (socket as { emit: typeof emit }).emit = (event, ...a) => {
      if (event !== "end" && event !== "close") return emit(event, ...a);
      setTimeout(() => emit(event, ...a), 0);
      return true;
    };
    const onAbort = () => {
      socket.destroy();
      reject(signal?.reason);
    };
    const onError = (e: unknown) => {
      signal?.removeEventListener("abort", onAbort);
      reject(e);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
      resolve(socket);
    });
  });
}

/**
 * A connector for tedious's documented `connector` option: tries each address of the host in
 * turn (as tedious's own connector does) and returns a plain TCP socket whose `end` and `close`
 * events are delivered one timer turn late. Under Deno, a server's last bytes and its close
 * arrive in the same turn, and tedious then aborts the login on "socket hang up" before it has
 * parsed the answer, so a refused login (SQL Server closes the connection right after its "Login
 * failed" error) would read as a dropped connection. Node delivers the close a turn later; this
 * restores that order.
 */
function connector(host: string, port: number): () => Promise<net.Socket> {
  return async (...args: unknown[]) => {
    // tedious passes (options, lookup, signal); only the abort signal is of use here.
    const signal = args[2] instanceof AbortSignal ? args[2] : undefined;
    const addresses = net.isIP(host)
      ? [host]
      : (await lookup(host, { all: true })).map((a) => a.address);
    let last: unknown;
    for (const address of addresses) {
      try {
        return await openSocket(address, port, signal);
      } catch (e) {
        if (signal?.aborted) throw e;
        last = e;
      }
    }
    throw last;
  };
}

/** tedious's authentication block from the provider's settings. */
function authentication(s: ConnectSettings): ConnectionAuthentication {
  const extra = s.extra ?? {};
  if (extra.accessToken !== undefined) {
    return { type: "azure-active-directory-access-token", options: { token: extra.accessToken } };
  }
  if (extra.ntlmDomain !== undefined) {
    return {
      type: "ntlm",
      options: { userName: s.user ?? "", password: s.password ?? "", domain: extra.ntlmDomain },
    };
  }
  return { type: "default", options: { userName: s.user ?? "", password: s.password ?? "" } };
}

/**
 * Opens a SQL Server connection.
 *
 * Credentials come from the provider: `user` + `password` (SQL login), plus `extra.ntlmDomain`
 * for NTLM, or `extra.accessToken` alone for an Entra ID access token.
 *
 * @param settings Host, port (default 1433), database, credentials, TLS policy, timeout.
 * @returns A live connection.
 * @throws {HecateError} `auth_failed` for a refused login, `connection_failed` otherwise.
 */
export async function connectMssql(settings: ConnectSettings): Promise<DbConnection> {
  const secrets = [settings.password, settings.extra?.accessToken]
    .filter((s): s is string => !!s)
    .sort((a, b) => b.length - a.length);
  const tls = settings.tls;
  const cryptoCredentialsDetails: Record<string, unknown> = {};
  if (tls.mode === "verify" && tls.caFile) cryptoCredentialsDetails.ca = await readCa(tls.caFile);
  const config: ConnectionConfiguration = {
    server: settings.host ?? "localhost",
    authentication: authentication(settings),
    options: {
      port: settings.port ?? 1433,
      ...(settings.database ? { database: settings.database } : {}),
      encrypt: tls.mode !== "disable",
      trustServerCertificate: tls.mode === "insecure",
      cryptoCredentialsDetails,
      connectTimeout: settings.connectTimeoutMs,
      // Statements run as long as they need; the caller stops them by closing or breaking off.
      requestTimeout: 0,
      useUTC: true,
      useColumnNames: false,
      rowCollectionOnDone: false,
      rowCollectionOnRequestCompletion: false,
      appName: "hecate",
      // ApplicationIntent=ReadOnly (LOGIN7 TypeFlags): a read-level key's sessions.
      readOnlyIntent: settings.readOnlyIntent === true,
      connector: connector(settings.host ?? "localhost", settings.port ?? 1433),
    },
  };

  let conn: Connection;
  try {
    conn = new Connection(config);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new HecateError("internal", "The SQL Server driver needs environment access", {
        cause: e,
        hint: "Run with --allow-env (the tedious library reads DEBUG)",
      });
    }
    throw new HecateError(
      "invalid_profile",
      `Invalid SQL Server settings: ${clean(String(e), secrets)}`,
    );
  }
  let loginErrorNumber: number | undefined;
  const onErrorMessage = (t: { number: number }) => loginErrorNumber ??= t.number;
  conn.on("errorMessage", onErrorMessage);
  const swallow = () => {};
  conn.on("error", swallow);
  try {
    await new Promise<void>((resolve, reject) => {
      conn.connect((err) => err ? reject(err) : resolve());
    });
  } catch (e) {
    conn.close();
    throw connectError(e, settings, secrets, loginErrorNumber);
  } finally {
    conn.off("errorMessage", onErrorMessage);
    conn.off("error", swallow);
  }
  return new MssqlConnection(conn, secrets);
}

/** The SQL Server {@link Driver}. */
export const mssqlDriver: Driver = { connect: connectMssql };
