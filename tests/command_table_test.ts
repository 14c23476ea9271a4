/**
 * A run builds only the top-level command it names (src/cli/command_table.ts): which word that
 * is, that the table matches the commands' own definitions, and that help is what it was with
 * the whole tree.
 */

import assert from "node:assert/strict";
import { Command } from "@commander-js/extra-typings";
import { COMMANDS, invokedCommand } from "../src/cli/command_table.ts";
import { CliContext } from "../src/cli/context.ts";
import { processIo } from "../src/cli/io.ts";
import { runHecate } from "./support/access.ts";

/** A root with the same kinds of options as the real one. */
function root() {
  return new Command("hecate")
    .version("0", "-V, --version")
    .option("--home <dir>")
    .option("--password-stdin")
    .option("--api-key-file <file>")
    .option("--totp <code>");
}

Deno.test("the invoked command is the first word that is not a root option or its value", () => {
  const cases: [string[], string | undefined][] = [
    [["query", "pg", "select 1"], "query"],
    [["--home", "query", "server", "list"], "server"], // "query" is --home's value
    [["--home=/srv/h", "--password-stdin", "audit", "verify"], "audit"],
    [["--api-key-file", "k", "--totp", "123456", "query", "pg", "x"], "query"],
    [["--totp", "-1", "run", "pg"], "run"], // a required value may start with "-"
    [["--version"], undefined],
    [["--help"], undefined],
    [["help", "query"], undefined], // commander's own help command: build everything
    [["quer", "pg"], undefined], // unknown: commander suggests from the whole tree
    [["--bogus", "query"], undefined], // unknown option: let commander report it
    [["--", "query"], undefined],
    [[], undefined],
  ];
  for (const [args, want] of cases) {
    assert.equal(invokedCommand(root(), args), want, args.join(" "));
  }
});

Deno.test("each entry of the command table builds the command of that name", async () => {
  const ctx = new CliContext(processIo());
  for (const [name, load] of Object.entries(COMMANDS)) {
    assert.equal((await load())(ctx).name(), name);
  }
});

Deno.test("--help lists every command in table order, and a command's help is the same built alone", async () => {
  const help = await runHecate(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  const listed = help.stdout.split("Commands:\n")[1]!.split("\n")
    .map((l) => /^ {2}(\w[\w-]*)/.exec(l)?.[1])
    .filter((w): w is string => w !== undefined && w !== "help");
  assert.deepEqual(listed, Object.keys(COMMANDS));
  for (const name of ["query", "server"]) {
    const alone = await runHecate([name, "--help"]); // builds only this command
    const viaTree = await runHecate(["help", name]); // builds the whole tree
    assert.equal(alone.code, 0, alone.stderr);
    assert.equal(alone.stdout, viaTree.stdout);
    assert.match(alone.stdout, new RegExp(`^Usage: hecate ${name} `));
  }
});
