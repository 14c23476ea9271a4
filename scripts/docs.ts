/**
 * `deno task docs`: writes the command reference of docs/CLI.md from the command tree
 * (src/cli/tree.ts), between the two GENERATED markers; everything outside them is written by
 * hand. `deno task docs --check` writes nothing and fails (exit 1) when the file differs from
 * what it would write, which is how CI keeps the reference from drifting.
 *
 * @module
 */

import {
  allCommands,
  type CommandInfo,
  describeProgram,
  type OptionInfo,
} from "../src/cli/tree.ts";

/** The file the reference lives in. */
export const CLI_MD = new URL("../docs/CLI.md", import.meta.url);

/** The marker lines around the generated region. */
export const BEGIN =
  "<!-- BEGIN GENERATED: `deno task docs` writes this part; do not edit it by hand -->";
/** @see {@link BEGIN} */
export const END = "<!-- END GENERATED -->";

function code(s: string): string {
  return s.includes("`") ? `\`\` ${s} \`\`` : `\`${s}\``;
}

/** Help text as Markdown prose: `*`, `<` and `[` mean nothing in it (`MYSQL_*`). */
function prose(s: string): string {
  return s.replace(/[\\*<\[\]`]/g, (c) => `\\${c}`);
}

/** Commander's descriptions start in lower case; sentences in the reference do not. */
function sentence(s: string): string {
  const t = prose(s.charAt(0).toUpperCase() + s.slice(1));
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

function optionLine(o: OptionInfo): string {
  const notes: string[] = [];
  if (o.mandatory) notes.push("required");
  if (o.choices) notes.push(`one of ${o.choices.map(code).join(", ")}`);
  const extra = notes.length ? ` (${notes.join("; ")})` : "";
  return `- ${code(o.flags)}${extra}: ${prose(o.description)}`;
}

function optionSections(options: OptionInfo[], heading: (group: string) => string): string[] {
  const out: string[] = [];
  const shown = options.filter((o) => !o.isHelp);
  const groups = [...new Set(shown.map((o) => o.group))];
  for (const group of groups) {
    out.push(heading(group), "", ...shown.filter((o) => o.group === group).map(optionLine), "");
  }
  return out;
}

function commandSection(cmd: CommandInfo): string[] {
  const full = ["hecate", ...cmd.path].join(" ");
  const out = [`### ${full}`, "", sentence(cmd.description), ""];
  if (cmd.subcommands.length) {
    out.push(`Subcommands: ${cmd.subcommands.map((s) => code(s.name)).join(", ")}.`, "");
    return out;
  }
  out.push("```", `${full} ${cmd.usage}`.trimEnd(), "```", "");
  if (cmd.arguments.length) {
    out.push("Arguments:", "");
    for (const a of cmd.arguments) {
      const name = `${a.name}${a.variadic ? "..." : ""}`;
      out.push(`- ${code(a.required ? `<${name}>` : `[${name}]`)}: ${prose(a.description)}`);
    }
    out.push("");
  }
  out.push(
    ...optionSections(cmd.options, (g) => g === "Options" ? "Options:" : `${g} options:`),
  );
  return out;
}

/**
 * Renders the generated region (without the markers).
 *
 * @param root The command tree.
 * @returns Markdown, ending in a newline.
 */
export function renderReference(root: CommandInfo): string {
  const out: string[] = [
    "### Global options",
    "",
    "Given before or after the command (`hecate --home DIR server list` or",
    "`hecate server list --home DIR`). `-h, --help` prints help for any command.",
    "",
    ...root.options.filter((o) => !o.isHelp).map(optionLine),
    "",
  ];
  for (const cmd of allCommands(root).slice(1)) out.push(...commandSection(cmd));
  return out.join("\n").replace(/\n+$/, "\n");
}

/**
 * Replaces the generated region of a document.
 *
 * @param doc The document with both markers.
 * @param generated The new region.
 * @returns The new document.
 * @throws {Error} When a marker is missing.
 */
export function spliceReference(doc: string, generated: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) {
    throw new Error(`docs/CLI.md: the markers ${BEGIN} ... ${END} are missing`);
  }
  return `${doc.slice(0, start + BEGIN.length)}\n\n${generated}\n${doc.slice(end)}`;
}

/**
 * Formats Markdown as `deno fmt` does (with the project's deno.json), so that the file the task
 * writes is the file `deno fmt --check` accepts.
 *
 * @param text Markdown.
 * @returns The formatted text.
 */
export async function formatMarkdown(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    cwd: new URL("../", import.meta.url),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(`deno fmt failed: ${new TextDecoder().decode(stderr)}`);
  return new TextDecoder().decode(stdout);
}

/**
 * What docs/CLI.md should hold: its hand-written parts with the reference regenerated, formatted.
 *
 * @param current The file's current text.
 * @returns The expected text.
 */
export async function expectedCliMd(current: string): Promise<string> {
  return await formatMarkdown(spliceReference(current, renderReference(await describeProgram())));
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  const current = await Deno.readTextFile(CLI_MD);
  const expected = await expectedCliMd(current);
  if (check) {
    if (current !== expected) {
      console.error("docs/CLI.md is out of date with the command tree: run `deno task docs`");
      Deno.exit(1);
    }
  } else if (current !== expected) {
    await Deno.writeTextFile(CLI_MD, expected);
    console.error("docs/CLI.md: command reference regenerated");
  }
}
