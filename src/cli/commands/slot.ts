/**
 * `hecate slot add pkcs11|list|remove`: other ways to open the vault than the master password.
 * A PKCS#11 slot wraps the root key on a hardware token; unlocking then needs the token and its
 * PIN (`hecate --pkcs11 MODULE ...`). Changing slots needs the master password.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import type { CliContext } from "../context.ts";
import { tokenPin } from "../secrets.ts";

/**
 * Builds the `slot` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function slotCommand(ctx: CliContext) {
  const slot = new Command("slot").description(
    "slots that open the vault besides the master password (hardware tokens)",
  );
  const add = new Command("add").description("add a slot");
  add.addCommand(
    new Command("pkcs11")
      .description(
        "wrap the root key with an AES key that never leaves a PKCS#11 token (made there if " +
          "missing); the PIN is asked on a terminal, or read with --pin-stdin",
      )
      .requiredOption("--module <path>", "the PKCS#11 module (shared library)")
      .requiredOption("--token <label>", "the token's label")
      .option("--key-label <label>", "the AES key's label on the token", "hecate")
      .action(async (opts) => {
        const { vault } = await ctx.unlockWithPassword();
        const pin = await tokenPin(ctx.io, ctx.stdin, ctx.globals.pinStdin === true, opts.token);
        const id = await vault.pkcs11.add({
          module: opts.module,
          token: opts.token,
          keyLabel: opts.keyLabel,
          pin,
        });
        await ctx.io.out(
          `Added PKCS#11 slot ${id} (token "${opts.token}", key "${opts.keyLabel}"); open with ` +
            `'hecate --pkcs11 ${opts.module} --pkcs11-token ${opts.token} ...'\n`,
        );
      }),
  );
  slot.addCommand(add);

  slot.addCommand(
    new Command("list")
      .description("list the slots besides the master password (id, kind, token, key label)")
      .action(async () => {
        const { vault } = await ctx.unlockWithPassword();
        const slots = vault.pkcs11.list();
        if (slots.length === 0) await ctx.io.out("No slots besides the master password\n");
        for (const s of slots) {
          await ctx.io.out(`${s.id}  pkcs11  token "${s.token}"  key "${s.key}"\n`);
        }
      }),
  );

  slot.addCommand(
    new Command("remove")
      .description(
        "remove a slot; 'hecate rotate' afterwards so copies of the file from before no longer " +
          "open with it",
      )
      .argument("<id>", "the slot id ('hecate slot list')")
      .action(async (id) => {
        const { vault } = await ctx.unlockWithPassword();
        await vault.pkcs11.remove(id);
        await ctx.io.out(
          `Removed slot ${id}; run 'hecate rotate' so older copies of the vault stop opening ` +
            "with it\n",
        );
      }),
  );
  return slot;
}
