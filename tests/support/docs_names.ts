/**
 * Finds the command lines, options and exit codes that README.md and docs/*.md name, for
 * tests/docs_test.ts to hold against the command tree and src/errors.ts.
 *
 * What counts as a name: in code (backtick spans and fenced blocks), a word `hecate` in command
 * position (first, or after an environment assignment, a shell operator or a path ending in
 * `/hecate`) followed by the words that select a command and the `--options` given to it; a code
 * span that is just an option (`--secret-ref`); and `exit N` anywhere in the text.
 *
 * @module
 */

/** One `hecate ...` command line found in a document. */
export interface CommandMention {
  /** The document, relative to the repository root. */
  file: string;
  /** 1-based line of the code it was found in. */
  line: number;
  /** The words after `hecate`, shell-split, `--` and everything after it dropped. */
  words: string[];
}

/** One bare option named in a code span. */
export interface OptionMention {
  file: string;
  line: number;
  /** e.g. `--secret-ref`. */
  option: string;
}

/** One exit code named in prose. */
export interface ExitMention {
  file: string;
  line: number;
  code: number;
}

/** Everything a document names. */
export interface Mentions {
  commands: CommandMention[];
  options: OptionMention[];
  exits: ExitMention[];
}

/** Code pieces of a Markdown document with the line each starts on. */
function codePieces(text: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const lines = text.split("\n");
  let fence: string | undefined;
  let prose: { line: number; text: string }[] = [];
  const flushProse = () => {
    // Backtick spans may cross line breaks; join the paragraph and map offsets back to lines.
    const joined = prose.map((p) => p.text).join("\n");
    const starts: number[] = [];
    let at = 0;
    for (const p of prose) {
      starts.push(at);
      at += p.text.length + 1;
    }
    for (const m of joined.matchAll(/(`+)([^`]+?)\1(?!`)/g)) {
      const idx = starts.findLastIndex((s) => s <= m.index);
      out.push({ line: prose[idx]!.line, code: m[2]!.replace(/\n/g, " ") });
    }
    prose = [];
  };
  lines.forEach((text, i) => {
    const open = /^\s*(```+|~~~+)/.exec(text);
    if (fence !== undefined) {
      if (open && open[1]!.startsWith(fence)) fence = undefined;
      else out.push({ line: i + 1, code: text });
      return;
    }
    if (open) {
      flushProse();
      fence = open[1]!;
      return;
    }
    if (text.trim() === "") flushProse();
    else prose.push({ line: i + 1, text });
  });
  flushProse();
  return out;
}

/** Splits a shell-ish line into words, keeping quoted parts together. */
function shellWords(code: string): string[] {
  const words: string[] = [];
  for (const m of code.matchAll(/(?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s"']+)+/g)) words.push(m[0]);
  return words;
}

const OPERATORS = new Set(["|", "||", "&&", ";", "$(", "(", "`", "sudo", "exec", "time"]);

/** Strips the notation around a word in a synopsis: `[--x`, `Y]...`, `--a|--b` stays. */
function bare(word: string): string {
  return word.replace(/^[\[(]+/, "").replace(/[\])]+(\.\.\.)?[,.;:]?$|\.\.\.$|[,;:]$/, "");
}

/**
 * Extracts the names a document mentions.
 *
 * @param file The document's path (for messages).
 * @param text Its text.
 * @returns The mentions.
 */
export function mentionsIn(file: string, text: string): Mentions {
  const commands: CommandMention[] = [];
  const options: OptionMention[] = [];
  for (const { line, code } of codePieces(text)) {
    const trimmed = code.trim();
    if (/^--[a-z][\w-]*(?:[ =].*)?$/.test(trimmed) && !trimmed.includes(" -")) {
      options.push({ file, line, option: trimmed.split(/[ =]/)[0]! });
    }
    const words = shellWords(code.replace(/#.*$/, ""));
    for (let i = 0; i < words.length; i++) {
      if (!/(^|\/)hecate$/.test(words[i]!)) continue;
      const prev = words[i - 1];
      if (
        prev !== undefined && !OPERATORS.has(prev) && !/^[A-Z_][A-Z0-9_]*=/.test(prev) &&
        prev !== "$"
      ) continue;
      const rest: string[] = [];
      for (const w of words.slice(i + 1)) {
        if (w === "--" || OPERATORS.has(w) || w.startsWith(">") || w.startsWith("<")) break;
        rest.push(bare(w));
      }
      commands.push({ file, line, words: rest.filter((w) => w !== "") });
    }
  }
  const exits: ExitMention[] = [];
  text.split("\n").forEach((t, i) => {
    for (const m of t.matchAll(/\bexit(?: code)? (\d+)\b/g)) {
      exits.push({ file, line: i + 1, code: Number(m[1]) });
    }
  });
  return { commands, options, exits };
}
