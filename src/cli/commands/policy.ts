/**
 * `hecate policy show [--json]` and `hecate policy set KEY VALUE`: the vault's sealed security
 * policy (docs/SECURITY.md, "Policy"). Both need the master password; a change is audited with
 * its old and new value.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { POLICY_KEYS } from "../../policy/policy.ts";
import type { CliContext } from "../context.ts";

/**
 * Builds the `policy` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function policyCommand(ctx: CliContext) {
  const policy = new Command("policy").description(
    "the vault's security policy: lockout, TOTP, complexity, history, session and agent " +
      "limits, key rotation schedule, audit failure mode",
  );

  policy.addCommand(
    new Command("show")
      .description("list every policy key, its value and whether it is set or the default")
      .option("--json", "print JSON")
      .action(async (opts) => {
        const { vault } = await ctx.unlockWithPassword();
        const { rows, keysNextDue } = vault.policySettings();
        if (opts.json) {
          const out = {
            policy: Object.fromEntries(rows.map((r) => [r.key, r.value])),
            set: rows.filter((r) => r.set).map((r) => r.key),
            ...(keysNextDue ? { keysNextDue } : {}),
          };
          await ctx.io.out(JSON.stringify(out, null, 2) + "\n");
          return;
        }
        const width = Math.max(...rows.map((r) => r.key.length));
        for (const r of rows) {
          await ctx.io.out(
            `${r.key.padEnd(width)}  ${r.value}${r.set ? "" : "  (default)"}\n`,
          );
        }
        if (keysNextDue) await ctx.io.out(`\nVault keys next due for rotation: ${keysNextDue}\n`);
      }),
  );

  policy.addCommand(
    new Command("set")
      .description(
        `set one key (audited with old and new value); keys: ${
          Object.keys(POLICY_KEYS).join(", ")
        }`,
      )
      .argument("<key>", "the dotted key, e.g. lockout.attempts")
      .argument("<value>", "the value, e.g. 3, 15m, on, closed")
      .action(async (key, value) => {
        const { vault } = await ctx.unlockWithPassword();
        const { old, now } = await vault.setPolicy(key, value);
        await ctx.io.out(`${key}: ${old} -> ${now}\n`);
        if (key === "totp.profiles") {
          const withTotp = new Set(vault.totp.status().profiles);
          const missing = now === "none" ? [] : now.split(",").filter((n) => !withTotp.has(n));
          if (missing.length > 0) {
            await ctx.warn(
              `no TOTP on ${
                missing.join(", ")
              }: they are refused until 'hecate totp setup --server NAME'`,
            );
          }
        }
      }),
  );
  return policy;
}
