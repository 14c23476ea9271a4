/**
 * The command tree and the one place that turns errors into text and exit codes.
 *
 * @module
 */

import { Command, CommanderError } from "@commander-js/extra-typings";
import { ExitCode, HecateError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { apikeyCommand } from "./commands/apikey.ts";
import { auditCommand } from "./commands/audit.ts";
import { initCommand, passwdCommand } from "./commands/init.ts";
import { queryCommand } from "./commands/query.ts";
import { rotateCommand } from "./commands/rotate.ts";
import { envCommand, runCommand } from "./commands/run.ts";
import { backupCommand } from "./commands/backup.ts";
import { exportCommand, importCommand } from "./commands/import.ts";
import { serverCommand } from "./commands/server.ts";
import { totpCommand } from "./commands/totp.ts";
import { CliContext } from "./context.ts";
import { type CliIo, processIo, PromptCancelled } from "./io.ts";

const HELP_HINT = "hecate: hint: add --help for usage";

/**
 * Builds the command tree for one invocation.
 *
 * @param ctx The invocation context.
 * @returns The root command.
 */
export function buildProgram(ctx: CliContext) {
  // Commander writes synchronously; keep each write's promise so runCli can wait for all of them
  // before the process exits (otherwise --help or a usage error can vanish).
  const writeOut = (s: string) => void ctx.pending.push(ctx.io.out(s));
  const writeErr = (s: string) => void ctx.pending.push(ctx.io.err(s));
  const outputError = (s: string, write: (s: string) => void) =>
    write(`hecate: error: ${s.replace(/^error: /, "")}`);
  const program = new Command("hecate")
    .description("A credential vault for database access")
    .version(VERSION, "-V, --version", "print the version")
    .option("--home <dir>", "vault home directory (default: $HECATE_HOME or ~/.hecate)")
    .option("--password-stdin", "read the master password from the first line of standard input")
    .option(
      "--api-key-file <file>",
      "open with the API key in FILE (0600) instead of the master password (or set HECATE_API_KEY)",
    )
    .option(
      "--totp <code>",
      "one-time code when TOTP is on (or set HECATE_TOTP; asked on a terminal otherwise)",
    )
    .showHelpAfterError(HELP_HINT)
    .exitOverride()
    .configureOutput({ writeOut, writeErr, outputError })
    .hook("preAction", (thisCommand) => {
      ctx.globals = thisCommand.opts();
    });
  for (
    const cmd of [
      initCommand(ctx),
      passwdCommand(ctx),
      serverCommand(ctx),
      queryCommand(ctx),
      auditCommand(ctx),
      apikeyCommand(ctx),
      totpCommand(ctx),
      rotateCommand(ctx),
      runCommand(ctx),
      envCommand(ctx),
      backupCommand(ctx),
      importCommand(ctx),
      exportCommand(ctx),
    ]
  ) {
    program.addCommand(cmd);
  }
  // Subcommands inherit error and output handling so that they never exit the process.
  const configure = (c: Command<unknown[], Record<string, unknown>, Record<string, unknown>>) => {
    c.exitOverride().showHelpAfterError(HELP_HINT).configureOutput({
      writeOut,
      writeErr,
      outputError,
    });
    for (const sub of c.commands) configure(sub as typeof c);
  };
  for (const sub of program.commands) configure(sub as Parameters<typeof configure>[0]);
  return program;
}

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
 * Runs the CLI.
 *
 * @param args Command-line arguments (without the program name).
 * @param io Process io. @default {processIo()}
 * @returns The exit code.
 */
export async function runCli(args: string[], io: CliIo = processIo()): Promise<number> {
  const ctx = new CliContext(io);
  const program = buildProgram(ctx);
  if (args.length === 0) {
    program.outputHelp({ error: true });
    await Promise.all(ctx.pending);
    return ExitCode.USAGE;
  }
  try {
    await program.parseAsync(args, { from: "user" });
    return ctx.exitCode ?? ExitCode.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    const { text, code } = renderError(e, io.env("HECATE_DEBUG") === "1");
    await io.err(text);
    return code;
  } finally {
    await Promise.all(ctx.pending);
  }
}
