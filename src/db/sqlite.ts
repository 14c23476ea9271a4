/**
 * SQLite through Deno's built-in `node:sqlite`. The database is a file path; statements are
 * prepared and parameters bound (`?`), rows streamed with `iterate()`.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import type {
  Column,
  ConnectSettings,
  DbConnection,
  Driver,
  QueryOptions,
  ResultSet,
} from "./driver.ts";
import { HecateError } from "../errors.ts";
import { byteaHex } from "./hex.ts";
import { hasMultipleStatements } from "./sql_text.ts";

function toParam(v: unknown): null | number | bigint | string | Uint8Array {
  if (v === null || v === undefined) return null;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "string") return v;
  if (v instanceof Uint8Array) return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return String(v);
}

function typed(v: unknown): unknown {
  if (
    typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) &&
    v <= BigInt(Number.MAX_SAFE_INTEGER)
  ) {
    return Number(v);
  }
  return v;
}

function text(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) return byteaHex(v);
  return String(v);
}

function queryFailed(e: unknown): HecateError {
  const msg = e instanceof Error ? e.message.split("\n")[0] : "unknown error";
  return new HecateError("query_failed", `Query failed: ${msg}`, { cause: e });
}

class SqliteConnection implements DbConnection {
  #db: DatabaseSync | undefined;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  async *query(
    sql: string,
    params: readonly unknown[],
    options: QueryOptions = {},
  ): AsyncIterable<ResultSet> {
    const db = this.#db;
    if (!db) throw new HecateError("connection_failed", "The connection is closed");
    if (hasMultipleStatements(sql)) {
      // node:sqlite compiles only the first statement; refuse rather than drop the rest.
      throw new HecateError(
        "query_failed",
        "Query failed: SQLite runs one statement per query, and this text holds more than one",
      );
    }
    let stmt: StatementSync;
    try {
      stmt = db.prepare(sql);
      stmt.setReadBigInts(true);
    } catch (e) {
      throw queryFailed(e);
    }
    const bound = params.map(toParam);
    const columns: Column[] = stmt.columns().map((c) => ({
      name: c.name,
      type: (c.type ?? "").toLowerCase(),
    }));
    if (columns.length === 0) {
      let changes: number;
      try {
        changes = Number(stmt.run(...bound).changes);
      } catch (e) {
        throw queryFailed(e);
      }
      yield { index: 0, columns, rows: (async function* () {})(), rowCount: () => changes };
      return;
    }
    const conv = options.mode === "text" ? text : typed;
    let count = 0;
    let done = false;
    const rows = (async function* () {
      try {
        // Arrays keep duplicate column names apart; the method exists at runtime but is missing
        // from the bundled node types.
        (stmt as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true);
        for (const r of stmt.iterate(...bound) as Iterable<unknown[]>) {
          count++;
          yield r.map(conv);
        }
      } catch (e) {
        throw queryFailed(e);
      }
      done = true;
    })();
    yield { index: 0, columns, rows, rowCount: () => (done ? count : null) };
  }

  ping(): Promise<void> {
    this.#db?.prepare("select 1").get();
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
    return Promise.resolve();
  }
}

/** The SQLite driver. */
export const sqliteDriver: Driver = {
  connect(settings: ConnectSettings): Promise<DbConnection> {
    const path = settings.database;
    if (!path) {
      return Promise.reject(new HecateError("invalid_profile", "SQLite profile has no file path"));
    }
    if (path !== ":memory:") {
      // Opening a missing path would create an empty database (mode 0644): refuse instead.
      try {
        if (!Deno.statSync(path).isFile) throw new Deno.errors.NotFound();
      } catch {
        return Promise.reject(
          new HecateError("connection_failed", `SQLite database "${path}" does not exist`),
        );
      }
    }
    try {
      return Promise.resolve(new SqliteConnection(new DatabaseSync(path)));
    } catch (e) {
      return Promise.reject(
        new HecateError("connection_failed", `Cannot open SQLite database "${path}"`, { cause: e }),
      );
    }
  },
};
