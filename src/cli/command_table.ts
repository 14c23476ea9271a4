/**
 * The top-level commands, each loaded on demand, and which of them a command line runs. A run
 * builds (and imports the module of) only the command it names, so `hecate query ...` from cron
 * does not load the modules of `server`, `backup`, `import`, `totp` and the rest; a command line
 * that names none (`--help`, `help`, an unknown word) gets the whole tree, so help and commander's
 * suggestions are unchanged. Each command is still defined once, in its own module.
 *
 * @module
 */

import type { CommandUnknownOpts } from "@commander-js/extra-typings";
import type { CliContext } from "./context.ts";

/** Builds one top-level command. */
export type CommandBuilder = (ctx: CliContext) => CommandUnknownOpts;

/** Loaders of the top-level commands, in the order `--help` lists them. */
export const COMMANDS: Readonly<Record<string, () => Promise<CommandBuilder>>> = {
  init: async () => (await import("./commands/init.ts")).initCommand,
  passwd: async () => (await import("./commands/init.ts")).passwdCommand,
  server: async () => (await import("./commands/server.ts")).serverCommand,
  query: async () => (await import("./commands/query.ts")).queryCommand,
  sources: async () => (await import("./commands/sources.ts")).sourcesCommand,
  audit: async () => (await import("./commands/audit.ts")).auditCommand,
  stats: async () => (await import("./commands/stats.ts")).statsCommand,
  secret: async () => (await import("./commands/secret.ts")).secretCommand,
  apikey: async () => (await import("./commands/apikey.ts")).apikeyCommand,
  slot: async () => (await import("./commands/slot.ts")).slotCommand,
  totp: async () => (await import("./commands/totp.ts")).totpCommand,
  policy: async () => (await import("./commands/policy.ts")).policyCommand,
  unlock: async () => (await import("./commands/agent.ts")).unlockCommand,
  lock: async () => (await import("./commands/agent.ts")).lockCommand,
  rotate: async () => (await import("./commands/rotate.ts")).rotateCommand,
  "rotate-due": async () => (await import("./commands/rotate_due.ts")).rotateDueCommand,
  run: async () => (await import("./commands/run.ts")).runCommand,
  env: async () => (await import("./commands/run.ts")).envCommand,
  backup: async () => (await import("./commands/backup.ts")).backupCommand,
  import: async () => (await import("./commands/import.ts")).importCommand,
  export: async () => (await import("./commands/import.ts")).exportCommand,
  doctor: async () => (await import("./commands/doctor.ts")).doctorCommand,
  completions: async () => (await import("./commands/completions.ts")).completionsCommand,
  ui: async () => (await import("./commands/ui.ts")).uiCommand,
  serve: async () => (await import("./commands/serve.ts")).serveCommand,
};

/**
 * The top-level command a command line runs: the first word that is neither an option of the
 * root command nor the value of one. Which root options take a value is read from `root` itself,
 * so this never drifts from the option definitions.
 *
 * @param root The root command (its options only).
 * @param args The arguments, without the program name.
 * @returns The command's name when it is one of {@link COMMANDS}, else undefined (build all).
 */
export function invokedCommand(
  root: CommandUnknownOpts,
  args: readonly string[],
): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return undefined;
    if (!arg.startsWith("-") || arg === "-") {
      return Object.hasOwn(COMMANDS, arg) ? arg : undefined;
    }
    if (arg.startsWith("--") && arg.includes("=")) continue; // --home=DIR
    const option = root.options.find((o) => o.long === arg || o.short === arg);
    if (!option) return undefined; // unknown or combined short flags: let commander decide
    if (option.required) i++; // its value is the next word, whatever it looks like
    else if (option.optional && args[i + 1] !== undefined && !args[i + 1]!.startsWith("-")) i++;
  }
  return undefined;
}
