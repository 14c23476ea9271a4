/**
 * The cron path: `hecate [root options] query NAME SQL [query options]` parsed and run without
 * loading the command tree. commander imports `node:events`, `node:child_process`, `node:fs`,
 * `node:path` and `node:process`, and the first `node:` module a Deno process loads starts Deno's
 * Node compatibility layer, 10-35 ms on every run here; a scheduled job pays that on every query.
 *
 * The parser accepts only command lines whose meaning is unambiguous: known long options (as
 * `--opt value` or `--opt=value`), each non-repeatable one at most once, values that do not start
 * with `-`, a valid `--format`, and exactly the two words after `query`. Everything else (help,
 * version, short flags, `--`, unknown options, a missing or extra word) goes to commander, which
 * also produces every usage error, so messages stay commander's. tests/cron_path_test.ts checks
 * that these option tables match the commander definitions and that both parse every accepted
 * command line alike.
 *
 * @module
 */

import type { GlobalOptions } from "./context.ts";
import { LOG_LEVELS } from "../log.ts";
import { QUERY_FORMATS, type QueryCommandOptions } from "./query_run.ts";

/** An option the cron path understands, mirroring one commander option. */
export interface CronOption {
  /** The long flag, e.g. `--home`. */
  long: string;
  /** The key commander gives it in the parsed options. */
  key: string;
  /** `flag`: no value; `one`: one value; `many`: a value, repeatable, collected in order. */
  takes: "flag" | "one" | "many";
  /** Allowed values, when restricted. */
  choices?: readonly string[];
}

/** The root command's options (src/cli/program.ts). */
export const ROOT_OPTIONS: readonly CronOption[] = [
  { long: "--home", key: "home", takes: "one" },
  { long: "--password-stdin", key: "passwordStdin", takes: "flag" },
  { long: "--api-key-file", key: "apiKeyFile", takes: "one" },
  { long: "--pkcs11", key: "pkcs11", takes: "one" },
  { long: "--pkcs11-token", key: "pkcs11Token", takes: "one" },
  { long: "--pin-stdin", key: "pinStdin", takes: "flag" },
  { long: "--identity", key: "identity", takes: "one" },
  { long: "--totp", key: "totp", takes: "one" },
  { long: "--log-level", key: "logLevel", takes: "one", choices: LOG_LEVELS },
];

/** The `query` command's options (src/cli/commands/query.ts). */
export const QUERY_OPTIONS: readonly CronOption[] = [
  { long: "--param", key: "param", takes: "many" },
  { long: "--format", key: "format", takes: "one", choices: QUERY_FORMATS },
  { long: "--output", key: "output", takes: "one" },
];

/** A parsed `query` command line. */
export interface QueryLine {
  /** The root options. */
  globals: GlobalOptions;
  /** The profile name. */
  name: string;
  /** The statement. */
  sql: string;
  /** The `query` options. */
  options: QueryCommandOptions;
}

const BY_LONG = new Map(
  [...ROOT_OPTIONS.map((o) => [o, true] as const), ...QUERY_OPTIONS.map((o) => [o, false] as const)]
    .map(([o, root]) => [o.long, { option: o, root }]),
);

/**
 * Parses a `query` command line the way commander would, or declines.
 *
 * @param args The arguments, without the program name.
 * @returns The parsed line, or undefined when commander must handle it.
 */
export function parseQueryLine(args: readonly string[]): QueryLine | undefined {
  const globals: Record<string, unknown> = {};
  const options: Record<string, unknown> = {};
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("-")) {
      words.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const known = BY_LONG.get(flag);
    if (!known) return undefined; // -V, --help, --, short flags, unknown options
    const { option, root } = known;
    // Root options are recognised anywhere; a `query` option only after the word `query`.
    if (!root && words.length === 0) return undefined;
    const into = root ? globals : options;
    if (option.takes === "flag") {
      if (eq > 0 || into[option.key] !== undefined) return undefined;
      into[option.key] = true;
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || value === "" || (eq < 0 && value.startsWith("-"))) return undefined;
    if (option.choices && !option.choices.includes(value)) return undefined;
    if (option.takes === "many") {
      into[option.key] = [...(into[option.key] as string[] | undefined ?? []), value];
    } else {
      if (into[option.key] !== undefined) return undefined;
      into[option.key] = value;
    }
  }
  if (words.length !== 3 || words[0] !== "query") return undefined;
  return {
    globals: globals as GlobalOptions,
    name: words[1]!,
    sql: words[2]!,
    options: options as QueryCommandOptions,
  };
}
