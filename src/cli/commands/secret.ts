/**
 * `hecate secret set|get|list|history|remove`: secrets that are not database logins (API
 * tokens, webhook keys), sealed in the vault and versioned. A value never comes from argv: a
 * hidden prompt or one line of standard input.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { parseComplexity } from "../../lifecycle/complexity.ts";
import { MAX_KEEP } from "../../lifecycle/history.ts";
import { HecateError } from "../../errors.ts";
import type { CliContext } from "../context.ts";
import { parsePositiveInt } from "../parse.ts";
import { parseSecretMapping, type SecretMapping } from "../../run/env.ts";

function parseKeep(text: string): number {
  const n = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n <= MAX_KEEP)) {
    throw new HecateError("usage", `--keep must be a whole number from 0 to ${MAX_KEEP}`);
  }
  return n;
}

/**
 * Builds the `secret` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function secretCommand(ctx: CliContext) {
  const secret = new Command("secret").description(
    "secrets that are not database logins (API tokens, webhook keys): sealed, versioned, scoped",
  );

  secret.addCommand(
    new Command("set")
      .argument("<name>", "the secret's name")
      .description(
        "store a value as the secret's next version (from a hidden prompt, or one line of " +
          "standard input with --stdin; never from the command line)",
      )
      .option("--stdin", "read the value from the next line of standard input")
      .option(
        "--min-length <n>",
        "rule kept on the secret: at least N characters",
        parsePositiveInt,
      )
      .option(
        "--classes <n>",
        "rule kept on the secret: use N of upper case, lower case, digits, others (1-4)",
        parsePositiveInt,
      )
      .option("--keep <n>", `previous versions to keep (0-${MAX_KEEP}, default 5)`, parseKeep)
      .action(async (name, opts) => {
        const parts = [
          ...(opts.minLength !== undefined ? [`length=${opts.minLength}`] : []),
          ...(opts.classes !== undefined ? [`classes=${opts.classes}`] : []),
        ];
        const complexity = parts.length ? parseComplexity(parts.join(",")) : undefined;
        const { vault } = await ctx.unlockWithPassword();
        let value: string;
        if (opts.stdin) {
          value = await ctx.stdin.next("secret value");
        } else if (ctx.io.stdinIsTerminal) {
          value = await ctx.io.promptSecret(`Value for secret "${name}":`);
        } else {
          throw new HecateError("no_credential", "No value given and no terminal to ask on", {
            hint: "use --stdin and give the value on standard input",
          });
        }
        const version = await vault.secrets.set(name, value, { complexity, keep: opts.keep });
        await ctx.io.out(`Secret "${name}": version ${version} stored\n`);
      }),
  );

  secret.addCommand(
    new Command("get")
      .argument("<name>", "the secret's name")
      .description("print the secret's value on standard output (refused on a terminal)")
      .option("--reveal", "print it even when standard output is a terminal")
      .action(async (name, opts) => {
        // Checked before the vault is opened: a refused read releases and records nothing.
        if (ctx.io.stdoutIsTerminal && !opts.reveal) {
          throw new HecateError("usage", "Refusing to print a secret on a terminal", {
            hint: "redirect standard output, or add --reveal",
          });
        }
        const vault = await ctx.unlock();
        const value = await vault.secrets.get(name);
        await ctx.io.out(value);
      }),
  );

  secret.addCommand(
    new Command("list")
      .description("list the secrets: name, version, last change (never a value)")
      .option("--json", "print JSON")
      .action(async (opts) => {
        const list = await (await ctx.unlock()).secrets.list();
        if (opts.json) {
          await ctx.io.out(JSON.stringify(list, null, 2) + "\n");
          return;
        }
        if (list.length === 0) {
          await ctx.io.out("No secrets\n");
          return;
        }
        const w = Math.max(4, ...list.map((s) => s.name.length));
        await ctx.io.out(`${"NAME".padEnd(w)}  VERSION  UPDATED\n`);
        for (const s of list) {
          await ctx.io.out(`${s.name.padEnd(w)}  ${String(s.version).padStart(7)}  ${s.updated}\n`);
        }
      }),
  );

  secret.addCommand(
    new Command("history")
      .argument("<name>", "the secret's name")
      .description("list the secret's versions: version, time, actor, reason (no value)")
      .option("--json", "print JSON")
      .action(async (name, opts) => {
        const list = await (await ctx.unlock()).secrets.history(name);
        if (opts.json) {
          await ctx.io.out(JSON.stringify(list, null, 2) + "\n");
          return;
        }
        await ctx.io.out(
          list.map((v) =>
            `${String(v.version).padStart(4)}${v.current ? "*" : " "}  ${v.time}  ${
              v.actor.padEnd(16)
            }  ${v.reason}\n`
          ).join(""),
        );
      }),
  );

  secret.addCommand(
    new Command("remove")
      .argument("<name>", "the secret's name")
      .description("remove the secret and its kept versions (a backup bundle is made first)")
      .action(async (name) => {
        const { vault } = await ctx.unlockWithPassword();
        await vault.secrets.remove(name);
        await ctx.io.out(`Removed secret "${name}"\n`);
      }),
  );
  secret.addCommand(
    new Command("run")
      .usage("--secret VAR=NAME [--secret ...] -- <command> [args...]")
      .argument("<command...>", "the program and its arguments, after --")
      .description(
        "run COMMAND with stored secrets in its environment, no profile (for a profile's " +
          "connection too, use 'hecate run NAME --secret VAR=NAME'); exits with COMMAND's exit code",
      )
      .requiredOption(
        "--secret <VAR=NAME>",
        "set VAR to the stored secret NAME (repeatable)",
        (value: string, previous: SecretMapping[] | undefined) => [
          ...(previous ?? []),
          parseSecretMapping(value),
        ],
      )
      .action(async (command, opts) => {
        const [program, ...args] = command;
        const vault = await ctx.unlock();
        ctx.exitCode = await vault.secrets.run(program!, args, opts.secret);
      }),
  );
  return secret;
}
