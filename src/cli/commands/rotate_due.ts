/**
 * `hecate rotate-due`: rotate on the server every profile whose `--rotate-every` schedule is due
 * (for cron or a systemd timer). Exit code: the number of profiles that failed, at most 100.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { endAgentAfterKeyChange } from "./agent.ts";
import type { CliContext } from "../context.ts";

/** Most failures the exit code counts. */
const MAX_FAILED_CODE = 100;

/**
 * Builds the `rotate-due` command.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function rotateDueCommand(ctx: CliContext) {
  return new Command("rotate-due")
    .description(
      "rotate the server password of every profile whose --rotate-every schedule is due, and " +
        "the vault keys when the policy's keys.rotate-every is due; exit code = how many failed " +
        "(at most 100)",
    )
    .action(async () => {
      const { vault, password } = await ctx.unlockWithPassword();
      let failed = 0;
      const keysDue = vault.keys.due();
      if (keysDue !== undefined) {
        try {
          await endAgentAfterKeyChange(ctx); // the agent holds the old root key: end it first
          await vault.keys.rotate(password);
          await ctx.io.out(`rotated the vault keys (due ${keysDue})\n`);
        } catch (e) {
          failed++;
          await ctx.io.out(
            `FAILED  vault keys: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}\n`,
          );
        }
      }
      const results = await vault.profiles.rotateDue();
      for (const r of results) {
        if (r.error) {
          failed++;
          await ctx.io.out(`FAILED  ${r.name}: ${r.error.message.split("\n")[0]}\n`);
        } else await ctx.io.out(`rotated ${r.name} (version ${r.version})\n`);
      }
      if (results.length === 0) await ctx.io.out("No profile is due\n");
      const next = vault.policySettings().keysNextDue;
      if (next !== undefined) await ctx.io.out(`Vault keys next due: ${next}\n`);
      ctx.exitCode = Math.min(failed, MAX_FAILED_CODE);
    });
}
