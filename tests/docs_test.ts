/**
 * The documentation cannot drift from the program: docs/CLI.md's command reference is what
 * `deno task docs` makes of the command tree, and every command line, option and exit code that
 * README.md and docs/*.md name exists (commands and options in the tree, exit codes in
 * src/errors.ts).
 */

import assert from "node:assert/strict";
import { ExitCode } from "../src/errors.ts";
import { type CommandInfo, describeProgram, type OptionInfo } from "../src/cli/tree.ts";
import { CLI_MD, expectedCliMd } from "../scripts/docs.ts";
import { type Mentions, mentionsIn } from "./support/docs_names.ts";

const ROOT = new URL("../", import.meta.url);

async function documents(): Promise<{ file: string; text: string }[]> {
  const files = ["README.md"];
  for await (const e of Deno.readDir(new URL("docs/", ROOT))) {
    if (e.isFile && e.name.endsWith(".md")) files.push(`docs/${e.name}`);
  }
  files.sort();
  return await Promise.all(
    files.map(async (file) => ({ file, text: await Deno.readTextFile(new URL(file, ROOT)) })),
  );
}

function findOption(chain: CommandInfo[], flag: string): OptionInfo | undefined {
  for (const c of chain) {
    const o = c.options.find((o) => o.long === flag || o.short === flag);
    if (o) return o;
  }
  return undefined;
}

/**
 * Checks one `hecate ...` command line against the tree.
 *
 * @returns What does not exist, as messages.
 */
export function checkCommandLine(root: CommandInfo, words: readonly string[]): string[] {
  const problems: string[] = [];
  const chain = [root];
  let cmd = root;
  let positional = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (/^-{1,2}[A-Za-z]/.test(w)) {
      const flag = w.split("=")[0]!;
      for (const alt of flag.split("|")) {
        const o = findOption(chain, alt);
        if (!o) problems.push(`no option ${alt} for "${["hecate", ...cmd.path].join(" ")}"`);
        else if (o.takesValue && !w.includes("=") && alt === flag) i++;
      }
      continue;
    }
    if (positional || cmd.subcommands.length === 0) {
      positional = true;
      continue;
    }
    if (cmd === root && w === "help") break; // commander's own `help [command]`
    if (!/^[a-z][a-z-]*(\|[a-z][a-z-]*)*$/.test(w)) break; // a placeholder such as COMMAND
    const alts = w.split("|");
    for (const alt of alts) {
      if (!cmd.subcommands.some((s) => s.name === alt)) {
        problems.push(`no command "${["hecate", ...cmd.path, alt].join(" ")}"`);
      }
    }
    const next = cmd.subcommands.find((s) => s.name === alts[0]);
    if (!next || alts.length > 1) break;
    cmd = next;
    chain.unshift(cmd);
  }
  return problems;
}

Deno.test("docs/CLI.md is what `deno task docs` generates from the command tree", async () => {
  const current = await Deno.readTextFile(CLI_MD);
  const expected = await expectedCliMd(current);
  assert.ok(
    current === expected,
    "docs/CLI.md is out of date with the command tree: run `deno task docs`",
  );
});

Deno.test("every command, option and exit code named in README.md and docs/ exists", async () => {
  const root = await describeProgram();
  const allLongs = new Set<string>();
  const walk = (c: CommandInfo) => {
    for (const o of c.options) allLongs.add(o.long);
    c.subcommands.forEach(walk);
  };
  walk(root);
  const codes = new Set<number>(Object.values(ExitCode));
  const problems: string[] = [];
  const seen: Mentions = { commands: [], options: [], exits: [] };
  for (const { file, text } of await documents()) {
    const m = mentionsIn(file, text);
    seen.commands.push(...m.commands);
    seen.options.push(...m.options);
    seen.exits.push(...m.exits);
    for (const c of m.commands) {
      for (const p of checkCommandLine(root, c.words)) problems.push(`${file}:${c.line}: ${p}`);
    }
    for (const o of m.options) {
      if (!allLongs.has(o.option) && !NOT_HECATE.has(o.option)) {
        problems.push(`${file}:${o.line}: no command has the option ${o.option}`);
      }
    }
    for (const e of m.exits) {
      if (!codes.has(e.code)) problems.push(`${file}:${e.line}: exit ${e.code} is not in ExitCode`);
    }
  }
  assert.deepEqual(problems, []);
  // The scan must see something, or it proves nothing.
  assert.ok(seen.commands.length > 100, `only ${seen.commands.length} command lines found`);
  assert.ok(seen.options.length > 20, `only ${seen.options.length} option mentions found`);
  assert.ok(seen.exits.length > 20, `only ${seen.exits.length} exit codes found`);
});

/** Options of other programs that the docs name in code spans of their own. */
const NOT_HECATE = new Set<string>([
  // deno
  "--allow-env",
  "--allow-ffi",
  "--allow-net",
  "--allow-read",
  "--allow-run",
  "--allow-write",
  "--cpu-prof",
  "--log-level",
  "--no-config",
  "--unstable-lazy-dynamic-imports",
  // mariadb
  "--batch",
  "--quick",
  // gcloud (docs/SOURCES.md, granting a service account access to a secret)
  "--iam-account",
  "--member",
  "--role",
]);

Deno.test("the docs check catches a command, an option and an exit code that do not exist", async () => {
  const root = await describeProgram();
  const doc = [
    "Run `hecate server frobnicate NAME` or `hecate query pg x --colour` or",
    "`hecate --home /h audit show --since 7d --bogus` (exit 99). `--no-such-flag`",
    "",
    "```sh",
    "HECATE_TOTP=1 hecate backup verify FILE",
    "hecate import hecate-pyx --dry-run | tee out",
    "```",
  ].join("\n");
  const m = mentionsIn("x.md", doc);
  const problems = m.commands.flatMap((c) => checkCommandLine(root, c.words));
  assert.deepEqual(problems, [
    'no command "hecate server frobnicate"',
    'no option --colour for "hecate query"',
    'no option --bogus for "hecate audit show"',
  ]);
  assert.deepEqual(m.options.map((o) => o.option), ["--no-such-flag"]);
  assert.deepEqual(m.exits.map((e) => e.code), [99]);
});
