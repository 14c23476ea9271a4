/**
 * A plain description of the command tree (commands, arguments, options, help groups), read from
 * the commander objects themselves. docs/CLI.md (scripts/docs.ts), the shell completions
 * (./completions/) and the docs test are all made from it, so none of them can list a command or
 * an option the program does not have.
 *
 * @module
 */

import type { CommandUnknownOpts, Option } from "@commander-js/extra-typings";
import { COMMANDS } from "./command_table.ts";
import { CliContext } from "./context.ts";
import type { CliIo } from "./io.ts";

/** One option of a command. */
export interface OptionInfo {
  /** Commander's flag spec, e.g. `--tls <mode>` or `-V, --version`. */
  flags: string;
  /** The long flag, e.g. `--tls` (every Hecate option has one). */
  long: string;
  /** The short flag, e.g. `-V`, when there is one. */
  short?: string;
  /** Help text. */
  description: string;
  /** The help group heading without its colon, e.g. `TLS` (`Options` when none was set). */
  group: string;
  /** Whether the option takes a value (`<value>` or `[value]`). */
  takesValue: boolean;
  /** The value's name from the flag spec, e.g. `mode` for `--tls <mode>`. */
  valueName?: string;
  /** The accepted values, when commander checks them. */
  choices?: readonly string[];
  /** Whether the option must be given. */
  mandatory: boolean;
  /** Whether this is commander's own `-h, --help`. */
  isHelp: boolean;
}

/** One positional argument of a command. */
export interface ArgumentInfo {
  /** The argument's name, e.g. `name`. */
  name: string;
  /** Help text. */
  description: string;
  /** Whether it must be given. */
  required: boolean;
  /** Whether it takes the rest of the words. */
  variadic: boolean;
  /** The accepted values, when commander checks them. */
  choices?: readonly string[];
}

/** One command and everything below it. */
export interface CommandInfo {
  /** The words after `hecate` that run it (empty for the root). */
  path: string[];
  /** The command's name (`hecate` for the root). */
  name: string;
  /** Help text. */
  description: string;
  /** Commander's usage line without the path, e.g. `[options] <name>`. */
  usage: string;
  /** Positional arguments, in order. */
  arguments: ArgumentInfo[];
  /** Options, in help order (groups as `--help` shows them), `-h, --help` last. */
  options: OptionInfo[];
  /** Subcommands in help order; commander's implicit `help` command is not among them. */
  subcommands: CommandInfo[];
}

/** Silent io: building the tree for docs or completions (or a test) must never prompt or print. */
export const QUIET_IO: CliIo = {
  out: () => Promise.resolve(),
  outBytes: () => Promise.resolve(),
  err: () => Promise.resolve(),
  env: () => undefined,
  stdinIsTerminal: false,
  stdoutIsTerminal: false,
  readStdin: () => Promise.resolve(new Uint8Array()),
  promptSecret: () => Promise.reject(new Error("no prompts while describing the command tree")),
  color: false,
};

function optionInfo(cmd: CommandUnknownOpts, option: Option): OptionInfo {
  const help = cmd.createHelp();
  const isHelp = option.long === "--help";
  const valueName = /[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1];
  return {
    flags: option.flags,
    long: option.long ?? option.flags,
    ...(option.short ? { short: option.short } : {}),
    description: isHelp ? "print help for the command" : help.optionDescription(option)
      .replace(/ \(choices: [^)]*\)$/, ""),
    group: (option.helpGroupHeading ?? "Options:").replace(/:$/, ""),
    takesValue: option.required || option.optional,
    ...(valueName ? { valueName } : {}),
    ...(option.argChoices ? { choices: [...option.argChoices] } : {}),
    mandatory: option.mandatory,
    isHelp,
  };
}

/**
 * Describes a built command and its subcommands.
 *
 * @param cmd A command (the root from {@link buildFullProgram}, or any command below it).
 * @param path The words that run `cmd`. @default {[]}
 * @returns The description.
 */
export function describeCommand(cmd: CommandUnknownOpts, path: string[] = []): CommandInfo {
  const help = cmd.createHelp();
  const options = help.visibleOptions(cmd);
  // Group order as --help prints it: groups by first appearance, options in order within each.
  const groups = help.groupItems(
    [...cmd.options],
    options,
    (o: Option) => o.helpGroupHeading ?? "Options:",
  );
  return {
    path,
    name: cmd.name(),
    description: cmd.description(),
    usage: cmd.usage(),
    arguments: help.visibleArguments(cmd).map((a) => ({
      name: a.name(),
      description: a.description,
      required: a.required,
      variadic: a.variadic,
      ...(a.argChoices ? { choices: [...a.argChoices] } : {}),
    })),
    options: [...groups.values()].flat().map((o) => optionInfo(cmd, o)),
    subcommands: cmd.commands.filter((c) => !(c as unknown as { _hidden: boolean })._hidden)
      .map((c) => describeCommand(c, [...path, c.name()])),
  };
}

/**
 * Builds the whole command tree, every command of src/cli/command_table.ts (so a command added
 * there appears in the docs and the completions without further work), with silent io.
 *
 * @returns The root command.
 */
export async function buildFullProgram(): Promise<CommandUnknownOpts> {
  const { buildProgram } = await import("./program.ts");
  return await buildProgram(new CliContext(QUIET_IO), []) as unknown as CommandUnknownOpts;
}

/**
 * Describes the whole command tree.
 *
 * @returns The root's description, with every command below it.
 */
export async function describeProgram(): Promise<CommandInfo> {
  const root = describeCommand(await buildFullProgram());
  // A cheap guard: the table is what decides which commands exist.
  const names = root.subcommands.map((c) => c.name);
  for (const name of Object.keys(COMMANDS)) {
    if (!names.includes(name)) throw new Error(`command ${name} missing from the tree`);
  }
  return root;
}

/**
 * Every command in the tree, depth first (the root first).
 *
 * @param root The root description.
 * @returns The root and all commands below it.
 */
export function allCommands(root: CommandInfo): CommandInfo[] {
  return [root, ...root.subcommands.flatMap(allCommands)];
}
