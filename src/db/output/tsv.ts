/**
 * TSV output in PostgreSQL's `COPY ... TO STDOUT WITH (FORMAT text, HEADER)` form.
 *
 * @module
 */

import type { Column, ValueMode } from "../driver.ts";
import type { RowFormatter } from "./formatter.ts";
import type { ChunkedSink } from "./sink.ts";
import { textOf } from "./values.ts";

const NEEDS_ESCAPE = /[\\\b\t\n\v\f\r]/;
const ESCAPES = /[\\\b\t\n\v\f\r]/g;
const ESCAPE_OF: Readonly<Record<string, string>> = {
  "\\": "\\\\",
  "\b": "\\b",
  "\t": "\\t",
  "\n": "\\n",
  "\v": "\\v",
  "\f": "\\f",
  "\r": "\\r",
};

/**
 * One field as PostgreSQL's COPY text format writes it: NULL as `\N`; backslash, backspace, tab,
 * LF, vertical tab, form feed and CR as `\\`, `\b`, `\t`, `\n`, `\v`, `\f`, `\r`; everything else
 * as is.
 *
 * @param value The text, or null.
 * @returns The field as written.
 */
export function tsvField(value: string | null): string {
  if (value === null) return "\\N";
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPES, (c) => ESCAPE_OF[c] ?? c) : value;
}

/**
 * TSV formatter: a header line of column names (escaped the same way), one LF-terminated line per
 * row, fields separated by tabs. Several result sets are separated by a blank line, each with its
 * own header; a set without columns writes nothing.
 */
export class TsvFormatter implements RowFormatter {
  /** Values arrive as the engine's text. */
  readonly mode: ValueMode = "text";
  readonly #sink: ChunkedSink;
  #width = 0;
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
    if (columns.length === 0) return undefined;
    let line = this.#setsWritten > 0 ? "\n" : "";
    this.#setsWritten++;
    for (let i = 0; i < columns.length; i++) {
      if (i > 0) line += "\t";
      line += tsvField(columns[i]!.name);
    }
    return this.#sink.push(line + "\n");
  }

  /** Writes one line. */
  row(values: readonly unknown[]): Promise<void> | undefined {
    const width = this.#width;
    if (width === 0) return undefined;
    let line = "";
    for (let i = 0; i < width; i++) {
      if (i > 0) line += "\t";
      const v = values[i];
      line += tsvField(typeof v === "string" ? v : textOf(v));
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
