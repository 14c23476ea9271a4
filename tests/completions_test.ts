/**
 * `hecate completions SHELL`: the bash script is loaded into a real bash and its completion
 * function run with COMP_WORDS/COMP_CWORD for several command lines; every command of the tree
 * completes (so a command added to src/cli/command_table.ts completes with no other change); the
 * zsh and fish scripts are syntax-checked by their shells and run through fish's own `complete -C`
 * and a zsh with `compadd` stubbed. A shell that is not installed is skipped with a message
 * (scripts/install_test_deps.sh installs both).
 */

import assert from "node:assert/strict";
import { allCommands, describeProgram } from "../src/cli/tree.ts";
import { COMMANDS } from "../src/cli/command_table.ts";
import { runHecate } from "./support/access.ts";

async function script(shell: string): Promise<string> {
  const run = await runHecate(["completions", shell]);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout;
}

async function which(program: string): Promise<boolean> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if ((await Deno.stat(`${dir}/${program}`)).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Runs a shell on a script file; returns stdout, failing on a non-zero exit. */
async function shell(program: string, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(program, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { HOME: cwd, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", LANG: "C" },
    clearEnv: true,
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `${program} ${args.join(" ")}: ${err}`);
  return new TextDecoder().decode(out.stdout);
}

/** A scratch directory with a script file, a subdirectory and a file to complete. */
async function scratch(shellName: string, text: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hecate-completions-" });
  await Deno.writeTextFile(`${dir}/hecate.${shellName}`, text);
  await Deno.mkdir(`${dir}/homedir`);
  await Deno.writeTextFile(`${dir}/ca.pem`, "");
  return dir;
}

/**
 * Completes `line` (the last word is the one being completed, possibly empty) with bash's
 * machinery: COMP_WORDS, COMP_CWORD, the function `complete -p hecate` names.
 */
function bashCase(line: string): string {
  const words = line.split(" ");
  const array = words.map((w) => `'${w}'`).join(" ");
  return [
    `COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; COMP_LINE='${line}'`,
    `COMP_POINT=\${#COMP_LINE}; COMPREPLY=()`,
    `fn=$(complete -p hecate | sed -E 's/.*-F ([^ ]+).*/\\1/'); "$fn" hecate`,
    `printf '%s\\n' "\${COMPREPLY[@]}" | sort | tr '\\n' ' '; echo`,
  ].join("\n");
}

Deno.test("bash: the completion function completes commands, flags and values", async () => {
  if (!(await which("bash"))) {
    console.log("skipped: bash is not installed");
    return;
  }
  const dir = await scratch("bash", await script("bash"));
  try {
    const cases: [string, string][] = [
      ["hecate ser", "serve server"],
      ["hecate server ", "add edit history list remove rollback rotate-password show test"],
      ["hecate server add pg --eng", "--engine"],
      ["hecate server add pg --engine ", "mssql mysql postgres sqlite"],
      ["hecate server add pg --engine p", "postgres"],
      ["hecate server add pg --tls ", "disable insecure verify"],
      ["hecate server add pg --ca-file c", "ca.pem"],
      ["hecate --home homedir server a", "add"], // --home's value is skipped
      ["hecate --home ", "homedir"], // a directory
      ["hecate server list --ho", "--home"], // root flags apply after a command
      ["hecate query pg x --format j", "json"],
      ["hecate --totp 123456 ba", "backup"],
      ["hecate backup re", "restore retention"],
      ["hecate completions ", "bash fish zsh"],
      ["hecate frob", ""],
      ["hecate run pg -- ser", ""], // another program's words
    ];
    const body = cases.map(([line]) => bashCase(line)).join("\n");
    const out = await shell("bash", [
      "--norc",
      "--noprofile",
      "-c",
      `source ./hecate.bash\ncomplete -p hecate\n${body}`,
    ], dir);
    const lines = out.split("\n");
    assert.match(lines[0]!, /^complete .*-F _hecate hecate$/);
    cases.forEach(([line, want], i) => assert.equal(lines[i + 1]!.trim(), want, line));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bash: every command and subcommand of the tree completes from its prefix", async () => {
  if (!(await which("bash"))) {
    console.log("skipped: bash is not installed");
    return;
  }
  const root = await describeProgram();
  const commands = allCommands(root).slice(1);
  assert.ok(commands.some((c) => c.path.join(" ") === "completions"));
  const dir = await scratch("bash", await script("bash"));
  try {
    const body = commands.map((c) => {
      const last = c.path.at(-1)!;
      return bashCase(["hecate", ...c.path.slice(0, -1), last.slice(0, 2)].join(" "));
    }).join("\n");
    const out = await shell("bash", [
      "--norc",
      "--noprofile",
      "-c",
      `source ./hecate.bash\n${body}`,
    ], dir);
    const lines = out.split("\n");
    commands.forEach((c, i) => {
      assert.ok(lines[i]!.split(" ").includes(c.path.at(-1)!), `${c.path.join(" ")}: ${lines[i]}`);
    });
    // Every flag of every command completes after `--`.
    const flags = commands.map((c) => bashCase(["hecate", ...c.path, "--"].join(" "))).join("\n");
    const flagOut = (await shell(
      "bash",
      ["--norc", "--noprofile", "-c", `source ./hecate.bash\n${flags}`],
      dir,
    )).split("\n");
    commands.forEach((c, i) => {
      const offered = new Set(flagOut[i]!.trim().split(" "));
      for (const o of [...c.options, ...root.options]) {
        assert.ok(offered.has(o.long), `${c.path.join(" ")}: ${o.long} not offered`);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("zsh: the script parses and completes with compadd", async () => {
  if (!(await which("zsh"))) {
    console.log("skipped: zsh is not installed (scripts/install_test_deps.sh installs it)");
    return;
  }
  const dir = await scratch("zsh", await script("zsh"));
  try {
    await shell("zsh", ["-n", "hecate.zsh"], dir);
    // Installed as documented (a file _hecate on $fpath), compinit binds it to hecate.
    await Deno.mkdir(`${dir}/zfunc`);
    await Deno.copyFile(`${dir}/hecate.zsh`, `${dir}/zfunc/_hecate`);
    const bound = await shell("zsh", [
      "-f",
      "-c",
      "fpath=(./zfunc $fpath); autoload -U compinit; compinit -u -D; print -r -- $_comps[hecate]",
    ], dir);
    assert.equal(bound.trim(), "_hecate");
    // Outside a completion widget: compadd and _files stubbed to print what they are given.
    const run = (line: string) => {
      const words = line.split(" ").map((w) => `'${w}'`).join(" ");
      return `words=(${words}); CURRENT=${
        line.split(" ").length
      }; _hecate | sort | tr '\\n' ' '; echo`;
    };
    const cases: [string, string][] = [
      // compadd is given every candidate; zsh itself filters them by the prefix.
      // Every top-level command of the table, and help.
      ["hecate ser", [...Object.keys(COMMANDS), "help"].sort().join(" ")],
      ["hecate server add pg --engine ", "mssql mysql postgres sqlite"],
      ["hecate --home x backup ", "create list restore retention verify"],
      ["hecate server add pg --ca-file ", "FILES"],
    ];
    const out = await shell("zsh", [
      "-f",
      "-c",
      [
        'compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }',
        "_files() { print FILES; }",
        "source ./hecate.zsh",
        ...cases.map(([line]) => run(line)),
      ].join("\n"),
    ], dir);
    const lines = out.split("\n");
    cases.forEach(([line, want], i) => assert.equal(lines[i]!.trim(), want, line));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fish: the script parses and fish's own complete -C uses it", async () => {
  if (!(await which("fish"))) {
    console.log("skipped: fish is not installed (scripts/install_test_deps.sh installs it)");
    return;
  }
  const dir = await scratch("fish", await script("fish"));
  try {
    await shell("fish", ["--no-config", "-n", "hecate.fish"], dir);
    const cases: [string, string][] = [
      ["hecate ser", "serve server"],
      ["hecate server ", "add edit history list remove rollback rotate-password show test"],
      ["hecate server add pg --engine ", "mssql mysql postgres sqlite"],
      ["hecate --home homedir backup re", "restore retention"],
      ["hecate server add pg --tl", "--tls"],
      ["hecate completions ", "bash fish zsh"],
    ];
    const body = cases.map(([line]) =>
      `set -l r (complete -C '${line}' | string replace -r '\\t.*' '' | sort); echo "$r"`
    ).join("\n");
    const out = await shell("fish", ["--no-config", "-c", `source ./hecate.fish\n${body}`], dir);
    const lines = out.split("\n");
    cases.forEach(([line, want], i) => assert.equal(lines[i]!.trim(), want, line));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("completions for an unknown shell is a usage error (exit 2)", async () => {
  const run = await runHecate(["completions", "tcsh"]);
  assert.equal(run.code, 2);
  assert.equal(run.stdout, "");
  assert.match(run.stderr, /^hecate: error: .*tcsh.*bash, zsh, fish/);
});
