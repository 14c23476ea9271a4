/**
 * `hecate totp setup|disable|status|verify`: a second factor for the vault or for one profile.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { HecateError } from "../../errors.ts";
import type { CliContext } from "../context.ts";

/**
 * Builds the `totp` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function totpCommand(ctx: CliContext) {
  const totp = new Command("totp").description(
    "one-time codes (RFC 6238) for every unlock, or for every use of one profile",
  );

  totp.addCommand(
    new Command("setup")
      .description(
        "make a secret, print its QR code and otpauth:// URI, and enable it after one valid code " +
          "(asked on a terminal, else the first line of standard input)",
      )
      .option("--server <profile>", "require the code for this profile only (default: the vault)")
      .option("--issuer <name>", "issuer shown in the authenticator app", "Hecate")
      .action(async (opts) => {
        const { vault } = await ctx.unlockWithPassword();
        const setup = await vault.totp.beginSetup(opts.server, opts.issuer);
        // Loaded only here: the unlock and cron paths never pay for the QR encoder.
        const { default: qrcode } = await import("qrcode");
        const qr = await qrcode.toString(setup.uri, { type: "terminal", small: true });
        await ctx.io.out(
          `${qr}\n${setup.uri}\n\nScan the code (or enter the secret ${setup.secret}) in an ` +
            "authenticator app, then give the current code.\n",
        );
        const code = ctx.io.stdinIsTerminal
          ? await ctx.io.promptSecret("Current code:")
          : await ctx.stdin.next("one-time code");
        const recovery = await vault.totp.enable(setup, code);
        await ctx.io.out(
          `TOTP is on for ${opts.server ? `profile "${opts.server}"` : "the vault"}.\n` +
            "Recovery codes (each works once, with the master password; store them offline):\n" +
            recovery.map((c) => `  ${c}\n`).join(""),
        );
      }),
  );

  totp.addCommand(
    new Command("disable")
      .description(
        "turn TOTP off (needs the master password and a current code or a recovery code)",
      )
      .option("--server <profile>", "the profile (default: the vault)")
      .action(async (opts) => {
        const { vault } = await ctx.unlockWithPassword();
        const status = vault.totp.status();
        const on = opts.server ? status.profiles.includes(opts.server) : status.vault;
        if (!on) {
          throw new HecateError(
            "usage",
            `TOTP is not on for ${opts.server ? `profile "${opts.server}"` : "the vault"}`,
          );
        }
        const code = opts.server ? await ctx.code(`profile "${opts.server}"`) : undefined;
        await vault.totp.disable(opts.server, code);
        await ctx.io.out(
          `TOTP is off for ${opts.server ? `profile "${opts.server}"` : "the vault"}\n`,
        );
      }),
  );

  totp.addCommand(
    new Command("verify")
      .description(
        "check a one-time code and spend it (it cannot be used again, here or at unlock); " +
          "exit 0, or 16 with the reason",
      )
      .argument("<code>", "the current 6-digit code (not a secret once spent)")
      .option("--server <profile>", "the profile's TOTP (default: the vault's)")
      .action(async (code, opts) => {
        const { vault } = await ctx.unlockWithPassword();
        await vault.totp.verify(opts.server, code);
        await ctx.io.out(
          `Code accepted for ${
            opts.server ? `profile "${opts.server}"` : "the vault"
          } (now spent)\n`,
        );
      }),
  );

  totp.addCommand(
    new Command("status")
      .description("show where TOTP is on")
      .action(async () => {
        const { vault } = await ctx.unlockWithPassword();
        const s = vault.totp.status();
        await ctx.io.out(
          `vault: ${s.vault ? "on" : "off"}\nprofiles: ${s.profiles.join(", ") || "none"}\n`,
        );
      }),
  );
  return totp;
}
