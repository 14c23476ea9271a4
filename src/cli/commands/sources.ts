/**
 * `hecate sources`: the secret sources the profiles use, by scheme, with their health on request.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import type { CliContext } from "../context.ts";

/**
 * Builds the `sources` command.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function sourcesCommand(ctx: CliContext) {
  return new Command("sources")
    .description("list the secret sources the profiles use (scheme, profiles, health)")
    .option("--check", "ask each source whether it answers (each profile is read as by a connect)")
    .option("--json", "print JSON")
    .action(async (opts) => {
      const vault = await ctx.unlock();
      const list = await vault.sourcesInUse({ check: opts.check ?? false });
      if (opts.json) return await ctx.io.out(JSON.stringify(list, null, 2) + "\n");
      if (list.length === 0) return await ctx.io.out("No profile uses a secret source\n");
      const width = Math.max(6, ...list.map((s) => s.scheme.length));
      const lines = list.map((s) => {
        const title = s.title ?? "NOT REGISTERED";
        const health = s.healthy === undefined
          ? ""
          : `  ${s.healthy === s.refs ? "ok" : "FAIL"} (${s.healthy}/${s.refs} answered)`;
        const n = `${s.profiles} profile${s.profiles === 1 ? "" : "s"}`;
        return `${s.scheme.padEnd(width)}  ${n.padEnd(12)}  ${title}${health}\n`;
      });
      await ctx.io.out(lines.join(""));
    });
}
