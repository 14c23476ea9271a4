/**
 * What `hecate query NAME SQL` does once its command line is parsed: unlock, release the profile,
 * run the statement and write its rows. Kept apart from the command's definition
 * (./commands/query.ts) so that the cron path (./cron_path.ts) can run it without loading the
 * command tree.
 *
 * @module
 */

import type { Connection } from "../hecate.ts";
import { ChunkedSink } from "../db/output/sink.ts";
import { createFormatter, type OutputFormat } from "../db/output/mod.ts";
import type { CliContext } from "./context.ts";
import { OutputTarget } from "./output_target.ts";
import { queryViaAgent } from "../agent/client.ts";

/** The output formats of `query`, in the order its help lists them. */
export const QUERY_FORMATS = ["table", "csv", "tsv", "json", "ndjson"] as const;

/** The options of `query`, as parsed. */
export interface QueryCommandOptions {
  /** Positional parameters, bound by the driver. */
  param?: string[] | undefined;
  /** Output format; the default depends on where the output goes. */
  format?: OutputFormat | undefined;
  /** A file to write instead of standard output. */
  output?: string | undefined;
}

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
  format: OutputFormat,
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
 * Runs a statement on an open connection and writes its rows in a format, then closes the
 * connection. Shared by `query` and the unlock agent (src/agent/server.ts), which runs it for a
 * client and sends the chunks over its socket.
 *
 * @param conn The connection (closed when this returns).
 * @param sql The statement.
 * @param params Positional parameters.
 * @param format The output format.
 * @param color Whether the table format may use colour.
 * @param write Receives each chunk of output.
 */
export async function writeResults(
  conn: Connection,
  sql: string,
  params: string[],
  format: OutputFormat,
  color: boolean,
  write: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  try {
    if (format === "csv" && conn.canCopyCsv && params.length === 0 && isCopyable(sql)) {
      await conn.copyCsv(sql, write);
    } else if (format === "tsv" && conn.canCopyTsv && params.length === 0 && isCopyable(sql)) {
      await conn.copyTsv(sql, write);
    } else {
      const sink = new ChunkedSink(write);
      await streamResults(conn, sql, params, format, sink, color);
      await sink.flush();
    }
  } finally {
    await conn.close();
  }
}

/**
 * Runs `query`: the output file (if any) is created first, so a bad path is reported before any
 * secret is touched; it replaces the target only when everything succeeded. A live unlock agent
 * (src/agent/) runs it when no API key or `--password-stdin` was given; otherwise, or when there
 * is none, the vault is unlocked here.
 *
 * @param ctx The invocation context (its global options already set).
 * @param name The profile name.
 * @param sql The statement.
 * @param opts The command's options.
 */
export async function runQuery(
  ctx: CliContext,
  name: string,
  sql: string,
  opts: QueryCommandOptions,
): Promise<void> {
  const params = opts.param ?? [];
  const toTerminal = !opts.output && ctx.io.stdoutIsTerminal;
  const format: OutputFormat = opts.format ?? (toTerminal ? "table" : "csv");
  const target = opts.output ? await OutputTarget.file(opts.output) : OutputTarget.stdout(ctx.io);
  const color = ctx.io.color && toTerminal;
  try {
    if (
      await ctx.viaAgent((home) =>
        queryViaAgent(
          home,
          { profile: name, sql, params, format, color, ...ctx.profileCode() },
          (chunk) => target.write(chunk),
        )
      )
    ) {
      await target.commit();
      return;
    }
    const { vault, flush } = await ctx.unlockForRelease();
    const conn = await vault.connect(name).catch(async (e) => {
      await flush().catch(() => {}); // e (say, no such profile) is the error to report
      throw e;
    });
    await flush(); // a no-op: profile.read took the held unlock record with it
    await writeResults(conn, sql, params, format, color, (chunk) => target.write(chunk));
    await target.commit();
  } catch (e) {
    await target.abort();
    throw e;
  }
}
