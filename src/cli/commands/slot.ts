/**
 * `hecate slot add|list|remove`: the key slots of the vault. `slot add age RECIPIENT` lets a
 * teammate open the vault with their own age identity (`hecate --identity FILE ...`); a kind that
 * another module adds is one more subcommand of `slot add` (see {@link slotAddKinds}) and one
 * entry of SLOT_KINDS (src/api/slots.ts) for the list.
 *
 * @module
 */

import { Command, type CommandUnknownOpts } from "@commander-js/extra-typings";
import type { SlotSummary } from "../../api/slots.ts";
import type { CliContext } from "../context.ts";

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
    "key slots: the password, API keys, teammates' age identities, ...",
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
