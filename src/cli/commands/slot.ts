/**
 * `hecate slot add|list|remove`: the key slots of the vault. `slot add age RECIPIENT` lets a
 * teammate open the vault with their own age identity (`hecate --identity FILE ...`); `slot add
 * pkcs11` wraps the root key on a hardware token (`hecate --pkcs11 MODULE ...`); a kind that
 * another module adds is one more subcommand of `slot add` (see {@link slotAddKinds}) and one
 * entry of SLOT_KINDS (src/api/slots.ts) for the list.
 *
 * @module
 */

import { Command, type CommandUnknownOpts } from "@commander-js/extra-typings";
import type { SlotSummary } from "../../api/slots.ts";
import type { CliContext } from "../context.ts";
import { tokenPin } from "../secrets.ts";

/**
 * The `slot add KIND` subcommands, one per kind that can be added from the command line.
 *
 * @param ctx The invocation context.
 * @returns The subcommands.
 */
export function slotAddKinds(ctx: CliContext): CommandUnknownOpts[] {
  return [
    new Command("age")
      .argument("<recipient>", "the teammate's age1... X25519 recipient (age-keygen's public key)")
      .description("wrap the root key to a teammate's age identity")
      .option("--label <label>", "a label shown by 'slot list' (e.g. the teammate's name)")
      .action(async (recipient, opts) => {
        const { vault } = await ctx.unlockWithPassword();
        const id = await vault.slots.addAge(recipient, { label: opts.label });
        await ctx.io.out(
          `Added age slot ${id}: the teammate opens the vault with 'hecate --identity FILE ...'\n`,
        );
      }),
    new Command("pkcs11")
      .description(
        "wrap the root key with an AES key that never leaves a PKCS#11 token (made there if " +
          "missing); the PIN is asked on a terminal, or read with --pin-stdin",
      )
      .requiredOption("--module <path>", "the PKCS#11 module (shared library)")
      .requiredOption("--token <label>", "the token's label")
      .option("--key-label <label>", "the AES key's label on the token", "hecate")
      .option("--label <label>", "a label shown by 'slot list' (default: TOKEN/KEY-LABEL)")
      .action(async (opts) => {
        const { vault } = await ctx.unlockWithPassword();
        const pin = await tokenPin(ctx.io, ctx.stdin, ctx.globals.pinStdin === true, opts.token);
        const id = await vault.slots.addPkcs11({
          module: opts.module,
          token: opts.token,
          keyLabel: opts.keyLabel,
          pin,
          label: opts.label,
        });
        await ctx.io.out(
          `Added PKCS#11 slot ${id} (token "${opts.token}", key "${opts.keyLabel}"); open with ` +
            `'hecate --pkcs11 ${opts.module} --pkcs11-token ${opts.token} ...'\n`,
        );
      }),
  ];
}

/** One line of the list. */
function row(s: SlotSummary): string[] {
  return [s.id, s.kind, s.label ?? "-", s.created ?? "-", s.lastUsed ?? "never", s.detail ?? ""];
}

/**
 * Builds the `slot` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function slotCommand(ctx: CliContext) {
  const slot = new Command("slot").description(
    "key slots: the password, API keys, teammates' age identities, hardware tokens (PKCS#11)",
  );
  const add = new Command("add").description("add a key slot of a kind");
  for (const kind of slotAddKinds(ctx)) add.addCommand(kind);
  slot.addCommand(add);

  slot.addCommand(
    new Command("list")
      .description("list every slot: id, kind, label, created, last used (never key material)")
      .option("--json", "print JSON")
      .action(async (opts) => {
        const vault = await ctx.unlock();
        const slots = await vault.slots.list();
        if (opts.json) {
          await ctx.io.out(JSON.stringify(slots, null, 2) + "\n");
          return;
        }
        const rows = [["ID", "KIND", "LABEL", "CREATED", "LAST USED", "DETAIL"], ...slots.map(row)];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        for (const r of rows) {
          await ctx.io.out(r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd() + "\n");
        }
      }),
  );

  slot.addCommand(
    new Command("remove")
      .argument("<id>", "the slot's id (from 'slot list')")
      .description("remove a slot (not the password's); then 'hecate rotate' to cut its holder off")
      .action(async (id) => {
        const { vault } = await ctx.unlockWithPassword();
        await vault.slots.remove(id);
        await ctx.io.out(
          `Removed slot ${id}. Run 'hecate rotate' so that copies of the vault made before open nothing new to it.\n`,
        );
      }),
  );
  return slot;
}
