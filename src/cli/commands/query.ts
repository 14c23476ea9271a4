/**
 * `hecate query NAME SQL`: run a statement through a profile and stream the result.
 *
 * @module
 */

import { Command, Option } from "@commander-js/extra-typings";
import type { Connection } from "../../hecate.ts";
import { ChunkedSink } from "../../db/output/sink.ts";
import { createFormatter, type OutputFormat as OutputFormatName } from "../../db/output/mod.ts";
import type { CliContext } from "../context.ts";
import { collect } from "../parse.ts";
import { OutputTarget } from "../output_target.ts";

const FORMATS = ["table", "csv", "tsv", "json", "ndjson"] as const;

/**
 * Whether a statement can be wrapped in `COPY (...) TO STDOUT`: one query that returns rows.
 *
 * @param sql The statement.
 * @returns True for a single SELECT, WITH, VALUES or TABLE statement.
 */
export function isCopyable(sql: string): boolean {
  const body = sql.trim().replace(/;\s*$/, "");
  return /^(select|with|values|table)\b/i.test(body) && !body.includes(";");
}

async function streamResults(
  conn: Connection,
  sql: string,
  params: string[],
  format: OutputFormatName,
  sink: ChunkedSink,
  color: boolean,
): Promise<void> {
  const formatter = createFormatter(format, sink, { color });
  for await (const set of conn.results(sql, params, { mode: formatter.mode })) {
    await formatter.beginSet(set.index, set.columns);
    for await (const row of set.rows) {
      const p = formatter.row(row);
      if (p) await p;
    }
    await formatter.endSet(set.index, set.rowCount());
  }
  await formatter.finish();
}

/**
 * Builds `query`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function queryCommand(ctx: CliContext) {
  return new Command("query")
    .argument("<name>", "profile name")
    .argument(
      "<sql>",
      "the statement; placeholders are the engine's own ($1 for PostgreSQL, ? for SQLite)",
    )
    .description("run a statement and print its rows")
    .option("--param <value>", "a positional parameter, bound by the driver (repeatable)", collect)
    .addOption(
      new Option("--format <format>", "output format (default: table on a terminal, else csv)")
        .choices(FORMATS),
    )
    .option("--output <file>", "write the result to FILE (created 0600; replaced only on success)")
    .action(async (name, sql, opts) => {
      const params = opts.param ?? [];
      const toTerminal = !opts.output && ctx.io.stdoutIsTerminal;
      const format: OutputFormatName = opts.format ?? (toTerminal ? "table" : "csv");
      // Create the output file first: a bad path is reported before any secret is touched.
      const target = opts.output
        ? await OutputTarget.file(opts.output)
        : OutputTarget.stdout(ctx.io);
      try {
        const { vault, flush } = await ctx.unlockForRelease();
        const conn = await vault.connect(name).catch(async (e) => {
          await flush().catch(() => {}); // e (say, no such profile) is the error to report
          throw e;
        });
        await flush(); // a no-op: profile.read took the held unlock record with it
        try {
          for (const w of conn.warnings) await ctx.warn(w);
          if (format === "csv" && conn.canCopyCsv && params.length === 0 && isCopyable(sql)) {
            await conn.copyCsv(sql, (chunk) => target.write(chunk));
          } else {
            const sink = new ChunkedSink((chunk) => target.write(chunk));
            await streamResults(conn, sql, params, format, sink, ctx.io.color && toTerminal);
            await sink.flush();
          }
        } finally {
          await conn.close();
        }
        await target.commit();
      } catch (e) {
        await target.abort();
        throw e;
      }
    });
}
