/**
 * The one small interface every database engine implements. A driver turns connection settings
 * (already resolved: host, port, user, password, TLS) into a live connection; a connection runs
 * statements with positional parameters and streams result sets.
 *
 * @module
 */

/**
 * Engines Hecate knows.
 *
 * @example
 * ```ts
 * import type { Engine } from "./driver.ts";
 * const engine: Engine = "postgres";
 * console.log(engine);
 * ```
 */
export type Engine = "sqlite" | "postgres" | "mysql" | "mssql";

/**
 * TLS policy for a connection.
 *
 * @example
 * ```ts ignore
 * const { settings } = await vault.endpoint("billing");
 * console.log(settings.tls.mode); // "verify"
 * ```
 */
export interface TlsSettings {
  /**
   * `verify`: encrypt and verify the server certificate and host name (the default).
   * `insecure`: encrypt but do not verify (warned about on every use).
   * `disable`: no TLS.
   */
  mode: "verify" | "insecure" | "disable";
  /** PEM file of the CA(s) that sign the server certificate. */
  caFile?: string;
  /** Client certificate (PEM) for certificate authentication. */
  certPem?: string;
  /** Client private key (PEM) for certificate authentication. */
  keyPem?: string;
  /**
   * Answer a server's request for the password in cleartext or as MD5 even though TLS is not
   * verified (`insecure` or `disable`), where whoever answers in the server's place learns the
   * password (cleartext) or a hash that logs in to the real server (MD5). Without it such a
   * request is refused unless `mode` is `verify`. SCRAM-SHA-256 is answered in every mode: the
   * server proves it knows the password. The MySQL driver applies it to `mysql_clear_password`
   * and to `caching_sha2_password`'s full authentication (then asking the server for its RSA
   * key). SQL Server does not use it. @default {false}
   */
  allowPlainAuth?: boolean;
  /**
   * The name to verify the server certificate against when it differs from the host connected
   * to (through an SSH tunnel the driver connects to 127.0.0.1).
   */
  serverName?: string;
  /**
   * Told when the TLS handshake has completed (PostgreSQL and MySQL drivers), for progress
   * reports such as `hecate server test`; never told anything secret.
   */
  onHandshake?: ((done: TlsHandshakeDone) => void) | undefined;
}

/** What {@link TlsSettings.onHandshake} is told. */
export interface TlsHandshakeDone {
  /** Milliseconds from the TLS request to the completed handshake. */
  ms: number;
  /** The name the certificate was checked against (or would have been, for `insecure`). */
  serverName: string;
  /** The mode in force: `verify` (certificate and name checked) or `insecure`. */
  mode: "verify" | "insecure";
}

/**
 * Everything a driver needs to connect: no references left, secrets in clear, in memory only.
 *
 * @example
 * ```ts ignore
 * const { settings } = await vault.endpoint("billing");
 * console.log(settings.engine, settings.host, settings.port);
 * ```
 */
export interface ConnectSettings {
  /** The engine. */
  engine: Engine;
  /** Server host (or a socket directory). */
  host?: string;
  /** Server port. */
  port?: number;
  /** Database name; for SQLite the file path. */
  database?: string;
  /** Login name. */
  user?: string;
  /** Password, in clear. */
  password?: string;
  /** TLS policy. */
  tls: TlsSettings;
  /** Milliseconds to wait for the connection and login. */
  connectTimeoutMs: number;
  /** Engine-specific extras (e.g. NTLM domain, access token), never printed. */
  extra?: Record<string, string>;
  /** Ask for a read-only session at login where the protocol has it (SQL Server ApplicationIntent). */
  readOnlyIntent?: boolean;
}

/**
 * Column metadata.
 *
 * @example
 * ```ts ignore
 * const cols: Column[] = await db.query("select 1 as one").columns;
 * console.log(cols[0]); // { name: "one", type: "int4" }
 * ```
 */
export interface Column {
  /** Column name as the server reports it. */
  name: string;
  /** The engine's type name, lower case (e.g. `int8`, `text`, `timestamptz`, `blob`). */
  type: string;
}

/**
 * How values are delivered.
 * - `typed`: JS values (see `value.ts`): null, boolean, number, bigint, string, Uint8Array,
 *   {@link import("./value.ts").Decimal}, {@link import("./value.ts").JsonText}.
 * - `text`: each value as the engine's own text form (what its command-line client prints), or
 *   null; used for CSV and TSV so every path gives the same bytes.
 *
 * @example
 * ```ts ignore
 * for await (const set of db.results("select 1.50::numeric", [], { mode: "text" })) {
 *   for await (const row of set.rows) console.log(row[0]); // "1.50"
 * }
 * ```
 */
export type ValueMode = "typed" | "text";

/**
 * Options for {@link DbConnection.query}.
 *
 * @example
 * ```ts ignore
 * for await (const set of db.results("select 1", [], { mode: "text", batchSize: 500 })) {
 *   for await (const row of set.rows) console.log(row);
 * }
 * ```
 */
export interface QueryOptions {
  /** How values are delivered. @default {"typed"} */
  mode?: ValueMode;
  /** Rows held unread before the engine stops reading from the server (its backpressure bound). */
  batchSize?: number;
}

/**
 * One result set: its columns, then its rows as a stream.
 *
 * @example
 * ```ts ignore
 * for await (const set of db.results("select 1 as a; select 2 as b")) {
 *   console.log(set.index, set.columns);
 *   for await (const row of set.rows) console.log(row);
 * }
 * ```
 */
export interface ResultSet {
  /** Zero-based position of this set among the statement's results. */
  index: number;
  /** Columns, known before the first row. */
  columns: Column[];
  /** Rows, each an array in column order. Consume fully before asking for the next set. */
  rows: AsyncIterable<unknown[]>;
  /** Rows affected (for statements without result rows) once `rows` is drained, else null. */
  rowCount(): number | null;
}

/**
 * A statement's first result set, read whole.
 *
 * @example
 * ```ts ignore
 * const { columns, rows } = await db.collect!("select 1 as a", []);
 * ```
 */
export interface CollectedSet {
  /** Columns. */
  columns: Column[];
  /** Every row, each an array in column order. */
  rows: unknown[][];
  /** Rows affected for statements without result rows, else the number of rows. */
  rowCount: number | null;
}

/** A live connection. */
export interface DbConnection {
  /**
   * Runs a statement with positional parameters, bound by the driver (never spliced into SQL).
   *
   * @param sql The statement; placeholders are the engine's own (`$1` for PostgreSQL, `?` for
   * SQLite and MySQL, `@p1` for SQL Server).
   * @param params Parameter values.
   * @param options Delivery options.
   */
  query(sql: string, params: readonly unknown[], options?: QueryOptions): AsyncIterable<ResultSet>;
  /**
   * Runs a statement and returns its first result set whole, where the engine has a faster path
   * for that than streaming (short statements on a busy pool); absent otherwise.
   */
  collect?(sql: string, params: readonly unknown[], options?: QueryOptions): Promise<CollectedSet>;
  /**
   * Streams a query's result as CSV (RFC 4180, header line first) straight from the server when
   * the engine can (PostgreSQL `COPY ... TO STDOUT`; SQL Server formats the rows as they are
   * parsed, the same bytes as the CSV formatter); absent otherwise.
   *
   * @returns Rows written.
   */
  copyCsv?(sql: string, sink: (chunk: Uint8Array) => Promise<void>): Promise<number>;
  /**
   * Streams a query's result as TSV (PostgreSQL's COPY text format with a header line, as the TSV
   * formatter writes it) straight from the protocol's bytes when the engine can (MySQL);
   * absent otherwise.
   *
   * @returns Rows written.
   */
  copyTsv?(sql: string, sink: (chunk: Uint8Array) => Promise<void>): Promise<number>;
  /** A cheap round trip to prove the connection works. */
  ping(): Promise<void>;
  /** Closes the connection; safe to call twice. */
  close(): Promise<void>;
}

/** A database engine implementation. */
export interface Driver {
  /**
   * Opens a connection.
   *
   * @throws {import("../errors.ts").HecateError} `connection_failed` (or `auth_failed` for a
   * refused login) with a one-line message that names no secret.
   */
  connect(settings: ConnectSettings): Promise<DbConnection>;
}
