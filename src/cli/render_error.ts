/**
 * The one place that turns an error into `hecate: error:` text and an exit code, for the command
 * tree and the cron path alike.
 *
 * @module
 */

import { ExitCode, HecateError } from "../errors.ts";
import type { CliContext } from "./context.ts";
import { PromptCancelled } from "./io.ts";

/**
 * Renders an error as `hecate: error:` and `hecate: hint:` lines and picks the exit code.
 * Unknown errors print no message or stack (they could carry a library's connection string)
 * unless HECATE_DEBUG=1.
 *
 * @param e The error.
 * @param debug Whether to print stack traces of unexpected errors.
 * @returns The text for stderr and the exit code.
 */
export function renderError(e: unknown, debug = false): { text: string; code: number } {
  if (e instanceof HecateError) {
    let text = `hecate: error: ${e.message.split("\n")[0]}\n`;
    if (e.hint) text += `hecate: hint: ${e.hint}\n`;
    return { text, code: e.exitCode };
  }
  if (e instanceof PromptCancelled) {
    return { text: "hecate: error: cancelled\n", code: ExitCode.USAGE };
  }
  const name = e instanceof Error ? e.name : typeof e;
  let text = `hecate: error: internal error (${name})\n` +
    "hecate: hint: set HECATE_DEBUG=1 to print details, and report the bug\n";
  if (debug && e instanceof Error) text += `${e.stack ?? e.message}\n`;
  return { text, code: ExitCode.INTERNAL };
}

/**
 * Runs a command line's work and gives its exit code: the one the work returns, else the one the
 * command chose (`ctx.exitCode`), else 0; an error is written to stderr as {@link renderError}
 * renders it. Writes started meanwhile finish before this returns.
 *
 * @param ctx The invocation context.
 * @param work The work.
 * @returns The exit code.
 */
export async function exitCodeOf(
  ctx: CliContext,
  work: () => Promise<number | void>,
): Promise<number> {
  try {
    return (await work()) ?? ctx.exitCode ?? ExitCode.OK;
  } catch (e) {
    const { text, code } = renderError(e, ctx.io.env("HECATE_DEBUG") === "1");
    await ctx.io.err(text);
    return code;
  } finally {
    await Promise.all(ctx.pending);
  }
}
