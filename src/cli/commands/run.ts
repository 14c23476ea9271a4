/**
 * `hecate run NAME [--env NAME=field]... -- COMMAND [ARGS...]` and `hecate env NAME`: give another
 * program a profile's connection through its environment.
 *
 * @module
 */

import { Command, Option } from "@commander-js/extra-typings";
import {
  type EnvFormat,
  type EnvMapping,
  parseEnvMapping,
  parseSecretMapping,
  renderEnv,
  type SecretMapping,
} from "../../run/env.ts";
import type { CliContext } from "../context.ts";

function collectMapping(value: string, previous: EnvMapping[] | undefined): EnvMapping[] {
  return [...(previous ?? []), parseEnvMapping(value)];
}

/**
 * Builds `run`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function runCommand(ctx: CliContext) {
  return new Command("run")
    .description(
      "run COMMAND with the profile's connection in its environment (PG*, MYSQL_*, SQLCMD*, " +
        "DATABASE_URL, HECATE_*); exits with COMMAND's exit code",
    )
    .usage("[options] <name> -- <command> [args...]")
    .argument("<name>", "profile name")
    .argument("<command...>", "the program and its arguments, after --")
    .option(
      "--env <NAME=field>",
      "also set NAME to a field: profile, engine, host, port, database, user, password, url, " +
        "sslmode (repeatable)",
      collectMapping,
    )
    .option(
      "--secret <VAR=NAME>",
      "also set VAR to the stored secret NAME ('hecate secret'; repeatable)",
      (value: string, previous: SecretMapping[] | undefined) => [
        ...(previous ?? []),
        parseSecretMapping(value),
      ],
    )
    .action(async (name, command, opts) => {
      const [program, ...args] = command;
      const vault = await ctx.unlock();
      ctx.exitCode = await vault.run(name, program!, args, {
        env: opts.env ?? [],
        secrets: opts.secret ?? [],
      });
    });
}

/**
 * Builds `env`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function envCommand(ctx: CliContext) {
  return new Command("env")
    .description("print the variables 'hecate run' would set, for tools that need a file")
    .argument("<name>", "profile name")
    .addOption(
      new Option("--format <format>", "dotenv, shell (export lines) or json")
        .choices(["dotenv", "shell", "json"] as const)
        .default("dotenv" as const),
    )
    .option("--env <NAME=field>", "also set NAME to a field (repeatable)", collectMapping)
    .action(async (name, opts) => {
      const vault = await ctx.unlock();
      const env = await vault.environment(name, opts.env ?? []);
      if (ctx.io.stdoutIsTerminal) {
        await ctx.warn("this prints the profile's password in clear on your terminal");
      }
      await ctx.io.out(renderEnv(env, opts.format as EnvFormat));
    });
}
