/**
 * `hecate query NAME SQL`: run a statement through a profile and stream the result. The work is
 * in ../query_run.ts; the cron path (../cron_path.ts) parses the same options without commander,
 * and tests/cron_path_test.ts keeps the two in step.
 *
 * @module
 */

import { Command, Option } from "@commander-js/extra-typings";
import type { CliContext } from "../context.ts";
import { collect } from "../parse.ts";
import { QUERY_FORMATS, runQuery } from "../query_run.ts";

/**
 * Builds `query`.
 *
 * @param ctx The invocation context.
 * @param run What the command does (tests replace it to see what commander parsed).
 * @returns The command.
 */
export function queryCommand(ctx: CliContext, run: typeof runQuery = runQuery) {
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
        .choices(QUERY_FORMATS),
    )
    .option("--output <file>", "write the result to FILE (created 0600; replaced only on success)")
    .action((name, sql, opts) => run(ctx, name, sql, opts));
}
