/**
 * The fish completion script (`hecate completions fish`): `__hecate_path` walks the command line
 * to the command being typed (skipping flags and the values of flags that take one), and one
 * `complete` line per subcommand and per flag applies when that command is the one typed. The
 * root's flags apply everywhere.
 *
 * @module
 */

import { shellWord } from "./sh_data.ts";
import { type CompletionEntry, valueKind } from "./spec.ts";

/** A fish single-quoted string. */
function quote(s: string): string {
  return `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * Renders the fish script.
 *
 * @param entries The completion table.
 * @returns The script; save it as ~/.config/fish/completions/hecate.fish.
 */
export function fishScript(entries: CompletionEntry[]): string {
  const out = [
    "# fish completion for hecate, generated from its command tree by `hecate completions fish`.",
    "# Save as ~/.config/fish/completions/hecate.fish",
    "",
    "# the subcommands of a command path",
    "function __hecate_subcommands",
    "    switch $argv[1]",
  ];
  for (const e of entries.filter((e) => e.subcommands.length)) {
    out.push(`        case ${quote(e.path)}`);
    out.push(`            echo ${e.subcommands.map((s) => shellWord(s.name)).join(" ")}`);
  }
  out.push(
    "    end",
    "end",
    "",
    "# the flags of a command path that take a value",
    "function __hecate_valued",
  );
  out.push("    switch $argv[1]");
  const root = entries.find((e) => e.path === "")!;
  const valued = (e: CompletionEntry) =>
    e.options.filter((o) => o.takesValue).flatMap((o) => (o.short ? [o.short, o.long] : [o.long]));
  for (const e of entries.filter((e) => e !== root && valued(e).length)) {
    out.push(
      `        case ${quote(e.path)}`,
      `            echo ${valued(e).map(shellWord).join(" ")}`,
    );
  }
  out.push("    end", `    echo ${valued(root).map(shellWord).join(" ")}`, "end", "");
  out.push(
    "# the command path being typed",
    "function __hecate_path",
    "    set -l words (commandline -opc)",
    "    set -l cmdpath",
    "    set -l skip 0",
    "    set -l positional 0",
    "    for w in $words[2..-1]",
    "        if test $skip = 1",
    "            set skip 0",
    "            continue",
    "        end",
    "        switch $w",
    "            case --",
    "                break",
    "            case '--*=*'",
    "                continue",
    "            case '-*'",
    '                if contains -- $w (string split " " -- (__hecate_valued "$cmdpath"))',
    "                    set skip 1",
    "                end",
    "                continue",
    "        end",
    '        if test $positional = 0; and contains -- $w (string split " " -- (__hecate_subcommands "$cmdpath"))',
    '            set cmdpath (string trim -- "$cmdpath $w")',
    "        else",
    "            set positional 1",
    "        end",
    "    end",
    '    echo "$cmdpath"',
    "end",
    "",
    "# whether the command path being typed is $argv[1]",
    "function __hecate_is",
    "    set -l typed (__hecate_path)",
    '    test "$typed" = "$argv[1]"',
    "end",
    "",
    "complete -c hecate -f",
  );
  for (const e of entries) {
    const cond = `-n ${quote(`__hecate_is ${quote(e.path)}`)}`;
    for (const s of e.subcommands) {
      out.push(`complete -c hecate ${cond} -a ${shellWord(s.name)} -d ${quote(s.description)}`);
    }
    if (e.argumentChoices) {
      out.push(
        `complete -c hecate ${cond} -a ${quote(e.argumentChoices.map(shellWord).join(" "))}`,
      );
    }
    for (const o of e.options) {
      const where = e === root ? "" : ` ${cond}`;
      const flags = `${o.short ? ` -s ${shellWord(o.short.slice(1))}` : ""} -l ${
        shellWord(o.long.slice(2))
      }`;
      const k = valueKind(o);
      const value = !k
        ? ""
        : k.kind === "choices"
        ? ` -x -a ${quote(k.values.map(shellWord).join(" "))}`
        : k.kind === "file"
        ? " -r -F"
        : k.kind === "dir"
        ? ` -x -a ${quote("(__fish_complete_directories)")}`
        : " -x";
      out.push(`complete -c hecate${where}${flags}${value} -d ${quote(o.description)}`);
    }
  }
  return out.join("\n") + "\n";
}
