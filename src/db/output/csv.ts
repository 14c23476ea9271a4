/**
 * CSV output, byte for byte what PostgreSQL's `COPY ... TO STDOUT WITH (FORMAT csv, HEADER)`
 * writes (its fast path streams COPY directly, so both paths must agree).
 *
 * @module
 */

import type { Column, ValueMode } from "../driver.ts";
import type { RowFormatter } from "./formatter.ts";
import type { ChunkedSink } from "./sink.ts";
import { textOf } from "./values.ts";

/** Characters that force quoting: delimiter, quote, CR, LF. */
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One CSV field following PostgreSQL's `CopyAttributeOutCSV` with the defaults (delimiter `,`,
 * quote and escape `"`, NULL as the empty string): NULL is an empty unquoted field; a value is
 * quoted (inner quotes doubled) when it is the empty string, contains `,` `"` CR or LF, or — only
 * when the set has a single column — is exactly `\.` (the end-of-data marker). Leading or
 * trailing spaces, tabs and backslashes are not quoted.
 *
 * @param value The text, or null.
 * @param singleColumn Whether the set has exactly one column.
 * @returns The field as written.
 */
export function csvField(value: string | null, singleColumn: boolean): string {
  if (value === null) return "";
  if (value.length === 0) return '""';
  if (NEEDS_QUOTES.test(value) || (singleColumn && value === "\\.")) {
    return '"' + value.replaceAll('"', '""') + '"';
  }
  return value;
}

/**
 * CSV formatter: a header line of column names (quoted by the same rule), one LF-terminated
 * record per row. Several result sets are separated by a blank line, each with its own header;
 * a set without columns writes nothing.
 */
export class CsvFormatter implements RowFormatter {
  /** Values arrive as the engine's text. */
  readonly mode: ValueMode = "text";
  readonly #sink: ChunkedSink;
  #width = 0;
  #single = false;
  #setsWritten = 0;

  /**
   * Creates the formatter.
   *
   * @param sink Where the bytes go.
   */
  constructor(sink: ChunkedSink) {
    this.#sink = sink;
  }

  /** Writes the header (after a blank line when a set was written before). */
  beginSet(_index: number, columns: Column[]): Promise<void> | undefined {
    this.#width = columns.length;
    this.#single = columns.length === 1;
    if (columns.length === 0) return undefined;
    let line = this.#setsWritten > 0 ? "\n" : "";
    this.#setsWritten++;
    for (let i = 0; i < columns.length; i++) {
      if (i > 0) line += ",";
      line += csvField(columns[i]!.name, this.#single);
    }
    return this.#sink.push(line + "\n");
  }

  /** Writes one record. */
  row(values: readonly unknown[]): Promise<void> | undefined {
    const width = this.#width;
    if (width === 0) return undefined;
    const single = this.#single;
    let line = "";
    for (let i = 0; i < width; i++) {
      if (i > 0) line += ",";
      const v = values[i];
      line += csvField(typeof v === "string" ? v : textOf(v), single);
    }
    return this.#sink.push(line + "\n");
  }

  /** Nothing to write at the end of a set. */
  endSet(): undefined {
    this.#width = 0;
    return undefined;
  }

  /** Flushes the sink. */
  finish(): Promise<void> {
    return this.#sink.flush();
  }
}
