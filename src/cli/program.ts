/**
 * The command tree: the root command, the top-level commands it builds, and running a command line
 * through them.
 *
 * @module
 */

import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import { LOG_LEVELS } from "../log.ts";
import { ExitCode } from "../errors.ts";
import { VERSION } from "../version.ts";
import { COMMANDS, invokedCommand } from "./command_table.ts";
import { CliContext, configureLogging } from "./context.ts";
import type { CliIo } from "./io.ts";
import { exitCodeOf } from "./render_error.ts";

const HELP_HINT = "hecate: hint: add --help for usage";

/**
 * Builds the command tree for one invocation: the root command and, when `args` names one
 * top-level command, only that one (its module is imported now); otherwise all of them.
 *
 * @param ctx The invocation context.
 * @param args The command line, to pick the command to build. @default {[] (all commands)}
 * @returns The root command.
 */
export async function buildProgram(ctx: CliContext, args: readonly string[] = []) {
  // Commander writes synchronously; keep each write's promise so runCommandTree can wait for all of them
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
      "--pkcs11 <module>",
      "open with a hardware token through this PKCS#11 module (or set HECATE_PKCS11_MODULE)",
    )
    .option(
      "--pkcs11-token <label>",
      "the token's label (or set HECATE_PKCS11_TOKEN; default: the vault's only token slot)",
    )
    .option(
      "--pin-stdin",
      "read the token PIN from standard input (the line after the master password, if both)",
    )
    .option(
      "--identity <file>",
      "open with the age identity in FILE (0600, AGE-SECRET-KEY-1...) instead of the master password (or set HECATE_IDENTITY)",
    )
    .option(
      "--totp <code>",
      "one-time code when TOTP is on (or set HECATE_TOTP; asked on a terminal otherwise)",
    )
    .addOption(
      new Option(
        "--log-level <level>",
        "write diagnostic lines to standard error at this level or more severe (or set HECATE_LOG)",
      ).choices(LOG_LEVELS),
    )
    .showHelpAfterError(HELP_HINT)
    .exitOverride()
    .configureOutput({ writeOut, writeErr, outputError })
    .hook("preAction", (thisCommand) => {
      ctx.globals = thisCommand.opts();
      configureLogging(ctx);
    });
  const invoked = invokedCommand(program, args);
  const names = invoked ? [invoked] : Object.keys(COMMANDS);
  const builders = await Promise.all(names.map((name) => COMMANDS[name]!()));
  for (const build of builders) program.addCommand(build(ctx));
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
 * Runs a command line through the command tree (everything but the cron path, see
 * ./cron_path.ts).
 *
 * @param args Command-line arguments (without the program name).
 * @param io Process io.
 * @returns The exit code.
 */
export async function runCommandTree(args: string[], io: CliIo): Promise<number> {
  const ctx = new CliContext(io);
  const program = await buildProgram(ctx, args);
  if (args.length === 0) {
    program.outputHelp({ error: true });
    await Promise.all(ctx.pending);
    return ExitCode.USAGE;
  }
  return await exitCodeOf(ctx, async () => {
    try {
      await program.parseAsync(rollbackVersionJoined(args), { from: "user" });
    } catch (e) {
      // --help and --version end here too, with exit code 0.
      if (e instanceof CommanderError) return e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
      throw e;
    }
  });
}

/**
 * `server rollback NAME --version N`: the root's `--version` flag is recognised after subcommands
 * too and would print Hecate's version, so after `rollback` the pair is passed as `--version=N`
 * (which the boolean root flag does not take).
 */
function rollbackVersionJoined(args: string[]): string[] {
  const at = args.indexOf("rollback");
  if (at < 0) return args;
  const out = args.slice(0, at + 1);
  for (let i = at + 1; i < args.length; i++) {
    const next = args[i + 1];
    if (args[i] === "--version" && next !== undefined && !next.startsWith("-")) {
      out.push(`--version=${next}`);
      i++;
    } else out.push(args[i]!);
  }
  return out;
}
