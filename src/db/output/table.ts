/**
 * Aligned table output for people at a terminal, in the style of `psql`.
 *
 * @module
 */

import type { Column, ValueMode } from "../driver.ts";
import type { FormatterOptions, RowFormatter } from "./formatter.ts";
import type { ChunkedSink } from "./sink.ts";
import { textOf } from "./values.ts";
import { displayWidth, safeCell } from "./width.ts";

/** Rows shown per result set unless {@link FormatterOptions.tableRowLimit} says otherwise. */
export const DEFAULT_TABLE_ROW_LIMIT = 10_000;

const NUMERIC_TYPE =
  /^(?:int[1248]?|integer|smallint|bigint|tinyint|mediumint|numeric|decimal|float[48]?|double|real|money|smallmoney|oid|number)\b/;

/**
 * Whether a column type is numeric (its values are right-aligned).
 *
 * @param type The engine's type name, lower case.
 * @returns True for integer, decimal and floating-point types.
 */
export function isNumericType(type: string): boolean {
  return NUMERIC_TYPE.test(type);
}

const NULL_TEXT = "NULL";

/**
 * Table formatter. Keeps up to `tableRowLimit` rows of a set (later rows are only counted), then
 * at the end of the set writes a header, a separator line and the rows with aligned columns
 * (numeric types right-aligned), NULL as `NULL` (dimmed when colour is on), a line saying how many
 * rows were not shown if any, and `(N rows)`. A set without columns writes `OK, N rows affected`
 * (or `OK` when the count is unknown). Sets are separated by a blank line. Control characters in
 * values are shown escaped (see {@link safeCell}).
 */
export class TableFormatter implements RowFormatter {
  /** Values arrive as the engine's text. */
  readonly mode: ValueMode = "text";
  readonly #sink: ChunkedSink;
  readonly #color: boolean;
  readonly #limit: number;
  #columns: Column[] = [];
  #rows: (string | null)[][] = [];
  #count = 0;
  #setsWritten = 0;

  /**
   * Creates the formatter.
   *
   * @param sink Where the bytes go.
   * @param options `color` and `tableRowLimit`.
   */
  constructor(sink: ChunkedSink, options: FormatterOptions = {}) {
    this.#sink = sink;
    this.#color = options.color ?? false;
    this.#limit = Math.max(0, options.tableRowLimit ?? DEFAULT_TABLE_ROW_LIMIT);
  }

  /** Starts buffering a set. */
  beginSet(_index: number, columns: Column[]): undefined {
    this.#columns = columns;
    this.#rows = [];
    this.#count = 0;
    return undefined;
  }

  /** Keeps the row (up to the limit) and counts it. */
  row(values: readonly unknown[]): undefined {
    this.#count++;
    if (this.#rows.length >= this.#limit || this.#columns.length === 0) return undefined;
    const cells: (string | null)[] = new Array(this.#columns.length);
    for (let i = 0; i < cells.length; i++) {
      const text = textOf(values[i]);
      cells[i] = text === null ? null : safeCell(text);
    }
    this.#rows.push(cells);
    return undefined;
  }

  /** Writes the set's table and summary line. */
  async endSet(_index: number, rowCount: number | null): Promise<void> {
    const lines = this.#render(rowCount);
    this.#rows = [];
    if (this.#setsWritten++ > 0) lines.unshift("");
    for (const line of lines) {
      const p = this.#sink.push(line + "\n");
      if (p) await p;
    }
  }

  /** Flushes the sink. */
  finish(): Promise<void> {
    return this.#sink.flush();
  }

  #render(rowCount: number | null): string[] {
    const columns = this.#columns;
    if (columns.length === 0) {
      if (rowCount === null) return ["OK"];
      return [`OK, ${rowCount} ${rowCount === 1 ? "row" : "rows"} affected`];
    }
    const names = columns.map((c) => safeCell(c.name));
    const right = columns.map((c) => isNumericType(c.type));
    const widths = names.map(displayWidth);
    const cellWidths = this.#rows.map((cells) =>
      cells.map((cell, i) => {
        const w = cell === null ? NULL_TEXT.length : displayWidth(cell);
        if (w > widths[i]!) widths[i] = w;
        return w;
      })
    );
    const last = columns.length - 1;
    const lines: string[] = [];

    let header = "";
    for (let i = 0; i <= last; i++) {
      const w = widths[i]!;
      const gap = w - displayWidth(names[i]!);
      const before = gap >> 1;
      const after = i === last ? 0 : gap - before;
      header += (i > 0 ? "|" : "") + " " + " ".repeat(before) + names[i]! + " ".repeat(after) +
        (i === last ? "" : " ");
    }
    lines.push(trimSpaces(header));
    lines.push(widths.map((w) => "-".repeat(w + 2)).join("+"));

    const nullText = this.#color ? "\x1b[2m" + NULL_TEXT + "\x1b[22m" : NULL_TEXT;
    for (let r = 0; r < this.#rows.length; r++) {
      const cells = this.#rows[r]!;
      const cw = cellWidths[r]!;
      let line = "";
      for (let i = 0; i <= last; i++) {
        const cell = cells[i];
        const text = cell === null || cell === undefined ? nullText : cell;
        const pad = " ".repeat(widths[i]! - cw[i]!);
        if (i > 0) line += "|";
        if (right[i]) line += " " + pad + text + " ";
        else line += " " + text + (i === last ? "" : pad + " ");
      }
      lines.push(trimSpaces(line));
    }

    const hidden = this.#count - this.#rows.length;
    if (hidden > 0) {
      lines.push(`... ${hidden} more ${hidden === 1 ? "row" : "rows"} not shown`);
    }
    lines.push(`(${this.#count} ${this.#count === 1 ? "row" : "rows"})`);
    return lines;
  }
}

/** Trims trailing spaces only (a cell's own trailing spaces are kept when followed by `|`). */
function trimSpaces(line: string): string {
  let end = line.length;
  while (end > 0 && line.charCodeAt(end - 1) === 0x20) end--;
  return end === line.length ? line : line.slice(0, end);
}
