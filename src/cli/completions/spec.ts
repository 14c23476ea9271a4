/**
 * What the shell completion scripts need from the command tree, in one flat table per command:
 * its subcommands, its flags, and what each flag's value is (a choice, a file, a directory, or
 * free text). The bash, zsh and fish generators (./bash.ts, ./zsh.ts, ./fish.ts) render this table;
 * none of them knows a command by name.
 *
 * @module
 */

import { allCommands, type CommandInfo, type OptionInfo } from "../tree.ts";

/** What completes an option's value. */
export type ValueKind =
  | { kind: "choices"; values: readonly string[] }
  | { kind: "file" }
  | { kind: "dir" }
  | { kind: "text" };

/** One command of the table. */
export interface CompletionEntry {
  /** The words after `hecate` that select it, joined by one space (`""` for the root). */
  path: string;
  /** Subcommands with their help text (the root also offers commander's `help`). */
  subcommands: { name: string; description: string }[];
  /** The command's own options (the root's are offered everywhere). */
  options: OptionInfo[];
  /** The accepted values of the first positional argument, when fixed. */
  argumentChoices?: readonly string[];
}

/** The value an option takes, judged from its choices and the name of its value. */
export function valueKind(o: OptionInfo): ValueKind | undefined {
  if (!o.takesValue) return undefined;
  if (o.choices) return { kind: "choices", values: o.choices };
  if (o.valueName === "dir") return { kind: "dir" };
  if (o.valueName === "file") return { kind: "file" };
  return { kind: "text" };
}

/**
 * Flattens the tree into completion entries, depth first.
 *
 * @param root The command tree.
 * @returns One entry per command, the root first.
 */
export function completionEntries(root: CommandInfo): CompletionEntry[] {
  return allCommands(root).map((c) => {
    const subcommands = c.subcommands.map((s) => ({ name: s.name, description: s.description }));
    if (c === root) subcommands.push({ name: "help", description: "print help for a command" });
    const choices = c.arguments[0]?.choices;
    return {
      path: c.path.join(" "),
      subcommands,
      options: c.options,
      ...(choices ? { argumentChoices: choices } : {}),
    };
  });
}

/** Every flag of an option (`-V`, `--version`). */
export function flagsOf(o: OptionInfo): string[] {
  return o.short ? [o.short, o.long] : [o.long];
}

/** The shells `hecate completions` writes scripts for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/** One of {@link SHELLS}. */
export type Shell = typeof SHELLS[number];
