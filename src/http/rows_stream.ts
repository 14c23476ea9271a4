/**
 * Query results as an HTTP body, shared by the console and the gateway: one statement's rows as
 * text items (a header, one item per row, a closing item) and a pull-based stream that reads the
 * next rows only when the client has taken the previous ones (backpressure: memory stays flat
 * however many rows the statement returns).
 *
 * @module
 */

import { textOf } from "../db/output/values.ts";
import { csvField } from "../db/output/csv.ts";
import { HecateError } from "../errors.ts";
import type { Connection, QueryRows, Vault } from "../hecate.ts";

/** One statement and how many rows to send at most. */
export interface QueryRequest {
  /** Profile name. */
  profile: string;
  /** SQL text. */
  sql: string;
  /** Positional parameters. */
  params: string[];
  /** Row limit. */
  limit: number;
}

/** One item of a result: the column names, a row, or the end (`more`: cut by the limit). */
export type ResultItem = { columns: string[] } | { row: (string | null)[] } | { more: boolean };

/**
 * Rows of one statement as arrays of text (null stays null), up to the limit, on a connection of
 * `vault` (audited like the CLI's).
 *
 * @param vault The open vault.
 * @param q The statement.
 * @param prepare Run on the connection before the statement (e.g. make the session read-only).
 * @returns The items.
 */
export async function* resultItems(
  vault: Vault,
  q: QueryRequest,
  prepare?: (conn: Connection) => Promise<void>,
): AsyncGenerator<ResultItem> {
  await using conn = await vault.connect(q.profile);
  await prepare?.(conn);
  yield* itemsOfRows(conn.query(q.sql, q.params), q.limit);
}

/**
 * Items of rows already running (a connection's or a pool's), up to `limit`.
 *
 * @param rows The rows.
 * @param limit The row limit.
 * @returns The items.
 */
export async function* itemsOfRows(rows: QueryRows, limit: number): AsyncGenerator<ResultItem> {
  let n = 0;
  let columns: string[] | undefined;
  for await (const r of rows) {
    if (!columns) {
      columns = (await rows.columns).map((c) => c.name);
      yield { columns };
    }
    if (n === limit) {
      yield { more: true };
      return;
    }
    yield { row: columns.map((c) => textOf(r[c])) };
    n++;
  }
  if (!columns) yield { columns: (await rows.columns).map((c) => c.name) };
  yield { more: false };
}

/**
 * A pull-based body of `gen`'s items, each rendered by `line`, in batches of 200.
 *
 * @param gen The items.
 * @param line Renders one item.
 * @param onError Renders a failure after the body started (the status is already sent).
 * @param onEnd Called once when the body ended, failed or was cancelled.
 * @returns The body.
 */
export function itemStream<T = ResultItem>(
  gen: AsyncGenerator<T>,
  line: (item: T) => string,
  onError: (e: unknown) => string,
  onEnd: (e?: unknown) => void = () => {},
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    // Pull: the next rows are read only when the client has taken the previous ones.
    async pull(controller) {
      try {
        let batch = "";
        for (let i = 0; i < 200; i++) {
          const next = await gen.next();
          if (next.done) {
            if (batch) controller.enqueue(enc.encode(batch));
            controller.close();
            onEnd();
            return;
          }
          batch += line(next.value);
        }
        controller.enqueue(enc.encode(batch));
      } catch (e) {
        controller.enqueue(enc.encode(onError(e)));
        controller.close();
        onEnd(e);
      }
    },
    async cancel() {
      await gen.return(undefined);
      onEnd(new Error("cancelled"));
    },
  }, { highWaterMark: 1 });
}

/**
 * A one-line message for a failure: a HecateError's own message, else "Internal error".
 *
 * @param e The failure.
 * @returns The message (never a stack or a secret).
 */
export function errorText(e: unknown): string {
  return e instanceof HecateError ? e.message : "Internal error";
}

/** Renders items as NDJSON lines. */
export function ndjsonLine(item: ResultItem): string {
  return JSON.stringify(item) + "\n";
}

/**
 * A renderer of items as CSV (header line, rows; the end item writes nothing).
 *
 * @returns The renderer (it keeps the column count).
 */
export function csvLines(): (item: ResultItem) => string {
  let width = 0;
  return (item) => {
    if ("columns" in item) {
      width = item.columns.length;
      return item.columns.map((c) => csvField(c, width === 1)).join(",") + "\n";
    }
    if ("row" in item) return item.row.map((v) => csvField(v, width === 1)).join(",") + "\n";
    return "";
  };
}
