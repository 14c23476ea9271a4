/**
 * Newline-delimited JSON output: one row object per line.
 *
 * @module
 */

import type { Column, ValueMode } from "../driver.ts";
import type { RowFormatter } from "./formatter.ts";
import { jsonRow, keyPrefixes } from "./json.ts";
import type { ChunkedSink } from "./sink.ts";
import { uniqueKeys } from "./values.ts";

/**
 * NDJSON formatter: one row object per line, values mapped like the JSON format. When a second or
 * later result set with columns begins, a marker line
 * `{"$set":N,"columns":[{"name":…,"type":…}]}` comes first (N is the set's index; names are the
 * row keys, with `_2`, `_3`, … for duplicates), so single-set output is pure row lines. Sets
 * without columns write nothing.
 */
export class NdjsonFormatter implements RowFormatter {
  /** Values arrive as JS values. */
  readonly mode: ValueMode = "typed";
  readonly #sink: ChunkedSink;
  #prefixes: string[] = [];
  #open = false;
  #setsWritten = 0;

  /**
   * Creates the formatter.
   *
   * @param sink Where the bytes go.
   */
  constructor(sink: ChunkedSink) {
    this.#sink = sink;
  }

  /** Starts a set; writes the marker line for every set with columns after the first. */
  beginSet(index: number, columns: Column[]): Promise<void> | undefined {
    this.#open = columns.length > 0;
    if (!this.#open) return undefined;
    this.#prefixes = keyPrefixes(columns);
    if (this.#setsWritten++ === 0) return undefined;
    const keys = uniqueKeys(columns);
    const described = columns.map((c, i) =>
      `{"name":${JSON.stringify(keys[i])},"type":${JSON.stringify(c.type)}}`
    );
    return this.#sink.push(`{"$set":${index},"columns":[${described.join(",")}]}\n`);
  }

  /** Writes one row line. */
  row(values: readonly unknown[]): Promise<void> | undefined {
    if (!this.#open) return undefined;
    return this.#sink.push(jsonRow(this.#prefixes, values) + "\n");
  }

  /** Nothing to write at the end of a set. */
  endSet(): undefined {
    this.#open = false;
    return undefined;
  }

  /** Flushes the sink. */
  finish(): Promise<void> {
    return this.#sink.flush();
  }
}
