/**
 * `hecate init` and `hecate passwd`.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { initVault } from "../../hecate.ts";
import { endAgentAfterKeyChange } from "./agent.ts";
import type { CliContext } from "../context.ts";
import { parsePositiveInt } from "../parse.ts";
import { newPassword } from "../secrets.ts";

/**
 * Builds `init`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function initCommand(ctx: CliContext) {
  return new Command("init")
    .description(
      "create a new vault: the master password from --password-stdin, else the file " +
        "HECATE_NEW_PASSWORD_FILE or HECATE_PASSWORD_FILE names, else asked twice",
    )
    .option(
      "--kdf-iterations <n>",
      "PBKDF2 iterations (at least 600000; default: calibrated to ~250 ms here)",
      parsePositiveInt,
    )
    .action(async (opts) => {
      const password = await newPassword(ctx.io, ctx.stdin, ctx.globals.passwordStdin ?? false, {
        passwordFileFallback: true,
      });
      const { home, kdfIterations } = await initVault({
        home: ctx.globals.home,
        password,
        kdfIterations: opts.kdfIterations,
      });
      await ctx.io.out(
        `Created a vault in ${home} (PBKDF2-HMAC-SHA256, ${kdfIterations} iterations)\n`,
      );
    });
}

/**
 * Builds `passwd`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function passwdCommand(ctx: CliContext) {
  return new Command("passwd")
    .description(
      "change the master password (re-wraps the root key; records are untouched); the new one " +
        "from --new-password-stdin, else the file HECATE_NEW_PASSWORD_FILE names, else asked twice",
    )
    .option(
      "--new-password-stdin",
      "read the new password from standard input (after the current one, if that is on stdin too)",
    )
    .option("--kdf-iterations <n>", "PBKDF2 iterations for the new password", parsePositiveInt)
    .action(async (opts) => {
      const { vault } = await ctx.unlockWithPassword();
      await endAgentAfterKeyChange(ctx); // the agent holds the old key material: end it first
      const password = await newPassword(ctx.io, ctx.stdin, opts.newPasswordStdin ?? false);
      await vault.keys.changePassword(
        password,
        opts.kdfIterations !== undefined ? { kdfIterations: opts.kdfIterations } : {},
      );
      await ctx.io.out("Master password changed\n");
    });
}
