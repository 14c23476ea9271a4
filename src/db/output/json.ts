/**
 * JSON output: each result set is one JSON array of row objects, written as it streams.
 *
 * @module
 */

import type { Column, ValueMode } from "../driver.ts";
import type { RowFormatter } from "./formatter.ts";
import type { ChunkedSink } from "./sink.ts";
import { jsonValue, uniqueKeys } from "./values.ts";

/**
 * Builds, per column, the text written before its value: `{"key":` for the first column and
 * `,"key":` for the others.
 *
 * @param columns The set's columns (duplicate names get `_2`, `_3`, …).
 * @returns One prefix per column.
 */
export function keyPrefixes(columns: readonly Column[]): string[] {
  return uniqueKeys(columns).map((key, i) => (i === 0 ? "{" : ",") + JSON.stringify(key) + ":");
}

/**
 * One row object as JSON text on a single line.
 *
 * @param prefixes From {@link keyPrefixes}.
 * @param values Typed values in column order.
 * @returns E.g. `{"id":1,"name":"a"}`.
 */
export function jsonRow(prefixes: readonly string[], values: readonly unknown[]): string {
  if (prefixes.length === 0) return "{}";
  let out = "";
  for (let i = 0; i < prefixes.length; i++) out += prefixes[i]! + jsonValue(values[i]);
  return out + "}";
}

/**
 * JSON formatter: per result set `[`, the row objects separated by `,\n`, then `]\n`, so several
 * sets form a sequence of arrays (which `jq` reads one by one). A set without columns writes
 * nothing. Values are mapped by {@link jsonValue}.
 */
export class JsonFormatter implements RowFormatter {
  /** Values arrive as JS values. */
  readonly mode: ValueMode = "typed";
  readonly #sink: ChunkedSink;
  #prefixes: string[] = [];
  #open = false;
  #rows = 0;

  /**
   * Creates the formatter.
   *
   * @param sink Where the bytes go.
   */
  constructor(sink: ChunkedSink) {
    this.#sink = sink;
  }

  /** Opens the set's array. */
  beginSet(_index: number, columns: Column[]): Promise<void> | undefined {
    this.#rows = 0;
    this.#open = columns.length > 0;
    if (!this.#open) return undefined;
    this.#prefixes = keyPrefixes(columns);
    return this.#sink.push("[");
  }

  /** Writes one row object. */
  row(values: readonly unknown[]): Promise<void> | undefined {
    if (!this.#open) return undefined;
    const text = jsonRow(this.#prefixes, values);
    return this.#sink.push(this.#rows++ === 0 ? text : ",\n" + text);
  }

  /** Closes the set's array. */
  endSet(): Promise<void> | undefined {
    if (!this.#open) return undefined;
    this.#open = false;
    return this.#sink.push("]\n");
  }

  /** Flushes the sink. */
  finish(): Promise<void> {
    return this.#sink.flush();
  }
}
