/**
 * Streaming query output: pick a format with {@link createFormatter}, write through a
 * {@link ChunkedSink}.
 *
 * ```ts
 * const sink = new ChunkedSink(writeAllTo(Deno.stdout));
 * const out = createFormatter("csv", sink);
 * for await (const set of conn.query(sql, [], { mode: out.mode })) {
 *   await out.beginSet(set.index, set.columns);
 *   for await (const values of set.rows) {
 *     const p = out.row(values);
 *     if (p) await p;
 *   }
 *   await out.endSet(set.index, set.rowCount());
 * }
 * await out.finish();
 * ```
 *
 * @module
 */

import { CsvFormatter } from "./csv.ts";
import type { FormatterOptions, OutputFormat, RowFormatter } from "./formatter.ts";
import { JsonFormatter } from "./json.ts";
import { NdjsonFormatter } from "./ndjson.ts";
import type { ChunkedSink } from "./sink.ts";
import { TableFormatter } from "./table.ts";
import { TsvFormatter } from "./tsv.ts";

export type { FormatterOptions, OutputFormat, RowFormatter } from "./formatter.ts";
export { OUTPUT_FORMATS } from "./formatter.ts";
export { ChunkedSink, type ChunkedSinkOptions, writeAllTo } from "./sink.ts";

/**
 * Creates the formatter for an output format.
 *
 * @param format The format.
 * @param sink Where the bytes go.
 * @param options Options (only the table format reads them).
 * @returns A formatter; ask it for `mode` to know how to query values.
 */
export function createFormatter(
  format: OutputFormat,
  sink: ChunkedSink,
  options: FormatterOptions = {},
): RowFormatter {
  switch (format) {
    case "csv":
      return new CsvFormatter(sink);
    case "tsv":
      return new TsvFormatter(sink);
    case "json":
      return new JsonFormatter(sink);
    case "ndjson":
      return new NdjsonFormatter(sink);
    case "table":
      return new TableFormatter(sink, options);
  }
}
