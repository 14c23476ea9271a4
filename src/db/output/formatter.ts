/**
 * The contract every streaming output format implements, and the options they share.
 *
 * @module
 */

import type { Column, ValueMode } from "../driver.ts";

/** Output formats for query results. */
export type OutputFormat = "table" | "csv" | "tsv" | "json" | "ndjson";

/** Every {@link OutputFormat}, in the order help text lists them. */
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["table", "csv", "tsv", "json", "ndjson"];

/** Options shared by the formatters (each uses the ones that concern it). */
export interface FormatterOptions {
  /** Table only: use ANSI styling (NULL dimmed). @default {false} */
  color?: boolean;
  /** Table only: rows kept and shown per result set; later rows are only counted. @default {10000} */
  tableRowLimit?: number;
}

/**
 * Writes result sets in one format to a {@link import("./sink.ts").ChunkedSink}.
 *
 * Call order: for each set `beginSet`, `row` per row, `endSet`; then `finish` once. Await every
 * promise a method returns before the next call (`row` returns one only when the sink flushes:
 * `const p = f.row(values); if (p) await p;`).
 */
export interface RowFormatter {
  /** How the formatter wants values delivered: `text` for csv, tsv, table; `typed` for json, ndjson. */
  readonly mode: ValueMode;
  /**
   * Starts a result set.
   *
   * @param index Zero-based position of the set among the statement's results.
   * @param columns The set's columns (none for statements without result rows).
   */
  beginSet(index: number, columns: Column[]): Promise<void> | void;
  /**
   * Writes one row.
   *
   * @param values Values in column order: `string | null` in `text` mode; in `typed` mode null,
   * boolean, number, bigint, string, Uint8Array, Date, Decimal or JsonText (anything else is
   * written as `String(v)`).
   * @returns A promise only when the sink started a flush.
   */
  row(values: readonly unknown[]): Promise<void> | undefined;
  /**
   * Ends the current result set.
   *
   * @param index The set's index, as given to `beginSet`.
   * @param rowCount Rows affected as the driver reports it (null when unknown).
   */
  endSet(index: number, rowCount: number | null): Promise<void> | void;
  /** Writes everything still buffered; call once at the end. */
  finish(): Promise<void>;
}
