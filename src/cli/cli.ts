/**
 * The CLI's entry: a `query` command line from a scheduled job runs on the cron path
 * (./cron_path.ts) without loading the command tree; every other command line goes to commander
 * (./program.ts), imported only then.
 *
 * @module
 */

import { AGENT_ARG } from "../agent/paths.ts";
import { CliContext, configureLogging } from "./context.ts";
import { parseQueryLine } from "./cron_path.ts";
import { type CliIo, processIo } from "./io.ts";
import { runQuery } from "./query_run.ts";
import { exitCodeOf } from "./render_error.ts";

/**
 * Runs the CLI.
 *
 * @param args Command-line arguments (without the program name).
 * @param io Process io. @default {processIo()}
 * @returns The exit code.
 */
export async function runCli(args: string[], io: CliIo = processIo()): Promise<number> {
  if (args.length === 1 && args[0] === AGENT_ARG) {
    const { agentMain } = await import("../agent/server.ts");
    return await agentMain();
  }
  const line = parseQueryLine(args);
  if (line === undefined) {
    const { runCommandTree } = await import("./program.ts");
    return await runCommandTree(args, io);
  }
  const ctx = new CliContext(io);
  ctx.globals = line.globals;
  return await exitCodeOf(ctx, () => {
    configureLogging(ctx);
    return runQuery(ctx, line.name, line.sql, line.options);
  });
}
