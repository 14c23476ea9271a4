/**
 * `hecate rotate`: new root key and data keys, every record re-encrypted.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { endAgentAfterKeyChange } from "./agent.ts";
import type { CliContext } from "../context.ts";

/**
 * Builds `rotate`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function rotateCommand(ctx: CliContext) {
  return new Command("rotate")
    .description(
      "make a new root key and new data keys and re-encrypt every record (API keys keep working)",
    )
    .action(async () => {
      const { vault, password } = await ctx.unlockWithPassword();
      await endAgentAfterKeyChange(ctx); // the agent holds the old root key: end it first
      // PKCS#11 slots wrap the old root key and only their token could wrap the new one: dropped.
      const tokens = (await vault.slots.list()).filter((s) => s.kind === "pkcs11").length;
      await vault.keys.rotate(password);
      if (tokens > 0) {
        await ctx.warn(
          `${tokens} PKCS#11 slot(s) wrapped the old root key and were removed; add them again ` +
            "with 'hecate slot add pkcs11'",
        );
      }
      await ctx.io.out(
        `Rotated every key: ${vault.profiles.list().length} profiles re-encrypted, ${
          (await vault.apiKeys.list()).length
        } API keys re-sealed\n`,
      );
    });
}
