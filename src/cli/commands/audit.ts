/**
 * `hecate audit show`: print the audit trail (it holds no secrets).
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { AUDIT_FILE } from "../../audit/log.ts";
import { HecateError } from "../../errors.ts";
import { resolveHome } from "../../vault/home.ts";
import type { CliContext } from "../context.ts";
import { parsePositiveInt } from "../parse.ts";

/**
 * Builds the `audit` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function auditCommand(ctx: CliContext) {
  const audit = new Command("audit").description("read the audit trail");
  audit.addCommand(
    new Command("show")
      .description("print audit records, oldest first")
      .option("--last <n>", "only the last N records", parsePositiveInt)
      .option("--json", "print the raw JSON lines")
      .action(async (opts) => {
        const path = `${resolveHome({ home: ctx.globals.home })}/${AUDIT_FILE}`;
        let text: string;
        try {
          text = await Deno.readTextFile(path);
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) {
            throw new HecateError("vault_not_found", `No audit trail at "${path}"`);
          }
          throw e;
        }
        let lines = text.split("\n").filter((l) => l !== "");
        if (opts.last !== undefined) lines = lines.slice(-opts.last);
        if (opts.json) {
          await ctx.io.out(lines.map((l) => l + "\n").join(""));
          return;
        }
        for (const l of lines) {
          const r = JSON.parse(l) as Record<string, unknown>;
          const actor = r.actor as { kind: string; id?: string } | undefined;
          const extra = [
            r.rows !== undefined ? `rows=${r.rows}` : "",
            r.duration_ms !== undefined ? `${r.duration_ms}ms` : "",
            r.reason !== undefined ? `reason=${r.reason}` : "",
          ].filter(Boolean).join(" ");
          const line = `${r.time}  ${String(r.event).padEnd(14)} ${String(r.outcome).padEnd(4)} ${
            actor ? actor.kind + (actor.id ? `:${actor.id}` : "") : "-"
          }  ${r.profile ?? "-"}  ${extra}`;
          await ctx.io.out(line.trimEnd() + "\n");
        }
      }),
  );
  return audit;
}
