/**
 * The table of ./spec.ts as shell functions that bash and zsh both run (plain `case` and `echo`):
 * the completion scripts of ./bash.ts and ./zsh.ts differ only in how they walk the command line
 * and offer words.
 *
 * @module
 */

import { type CompletionEntry, flagsOf, valueKind } from "./spec.ts";

/**
 * A word that goes into generated shell code unquoted: command names, flags and choices only ever
 * have these characters, and a word with any other fails the generation instead of becoming
 * shell syntax.
 */
export function shellWord(word: string): string {
  if (!/^[A-Za-z0-9_.:@+-]+$/.test(word)) {
    throw new Error(`completions: unexpected characters in "${word}"`);
  }
  return word;
}

function caseFunction(name: string, comment: string, arms: [string, string][]): string {
  const lines = [`# ${comment}`, `${name}() {`, `  case "$1" in`];
  for (const [pattern, value] of arms) lines.push(`  ${pattern}) echo "${value}" ;;`);
  lines.push("  esac", "}");
  return lines.join("\n");
}

/**
 * Renders the data functions `_hecate_subcommands PATH`, `_hecate_options PATH`,
 * `_hecate_value PATH|FLAG` and `_hecate_arg_choices PATH`.
 *
 * @param entries The completion table.
 * @returns Shell code.
 */
export function shellDataFunctions(entries: CompletionEntry[]): string {
  const words = (e: CompletionEntry) => e.path.split(" ").map(shellWord).join(" ");
  const rootPath = (e: CompletionEntry) => e.path === "" ? '""' : `"${words(e)}"`;
  const root = entries.find((e) => e.path === "")!;
  const values: [string, string][] = [];
  // "PATH|FLAG" arms; the root's flags are accepted after any command, so theirs match any path.
  for (const e of [...entries.filter((e) => e !== root), root]) {
    for (const o of e.options) {
      const k = valueKind(o);
      if (!k) continue;
      const text = k.kind === "choices" ? `choices ${k.values.map(shellWord).join(" ")}` : k.kind;
      for (const f of flagsOf(o)) {
        values.push([e === root ? `*"|${shellWord(f)}"` : `"${words(e)}|${shellWord(f)}"`, text]);
      }
    }
  }
  return [
    caseFunction(
      "_hecate_subcommands",
      "the subcommands of a command path",
      entries.filter((e) => e.subcommands.length).map((e) => [
        rootPath(e),
        e.subcommands.map((s) => shellWord(s.name)).join(" "),
      ]),
    ),
    caseFunction(
      "_hecate_options",
      "the flags of a command path (the root's flags apply everywhere)",
      entries.map((e) => [rootPath(e), e.options.flatMap(flagsOf).map(shellWord).join(" ")]),
    ),
    caseFunction(
      "_hecate_value",
      '"PATH|FLAG": what the flag\'s value is (choices ..., file, dir, text), empty if none',
      values,
    ),
    caseFunction(
      "_hecate_arg_choices",
      "the accepted values of a command's first argument",
      entries.filter((e) => e.argumentChoices).map((e) => [
        rootPath(e),
        e.argumentChoices!.map(shellWord).join(" "),
      ]),
    ),
  ].join("\n\n");
}
