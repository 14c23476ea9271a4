/**
 * `hecate stats [--since T] [--json]`: usage statistics from the audit trail. The trail holds no
 * secrets, so no password is needed; when one is given (`--password-stdin`,
 * `HECATE_PASSWORD_FILE`, or `--verify` to be asked) the chain is verified first and a broken
 * chain is refused as `audit verify` refuses it.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import type { AuditEntry } from "../../audit/entry.ts";
import { parseSince, trailLines } from "../../audit/read.ts";
import { trailStats, type UsageStats } from "../../audit/stats.ts";
import { safeCell } from "../../db/output/width.ts";
import { HecateError } from "../../errors.ts";
import { checkHome, resolveHome } from "../../vault/home.ts";
import type { CliContext } from "../context.ts";
import { chainKey, unlockForAudit } from "./audit.ts";

function table(title: string, rows: Record<string, UsageStats>): string {
  const names = Object.keys(rows);
  if (names.length === 0) return `${title}: none\n`;
  const head = [title, "UNLOCKS", "READS", "QUERIES", "ROWS", "P50_MS", "P95_MS", "LAST USE"];
  const body = names.map((n) => {
    const s = rows[n]!;
    const failures = Object.entries(s.failures).sort(([a], [b]) => a < b ? -1 : 1)
      .map(([r, c]) => `${r}=${c}`).join(",");
    // Names and reasons come from the trail, which anyone with write access can forge: escaped.
    return [
      safeCell(n),
      String(s.unlocks),
      String(s.reads),
      String(s.queries),
      String(s.rows),
      s.p50Ms === null ? "-" : String(s.p50Ms),
      s.p95Ms === null ? "-" : String(s.p95Ms),
      s.lastUse === null ? "-" : safeCell(s.lastUse),
      failures ? `failures: ${safeCell(failures)}` : "",
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i < widths.length - 1 ? c.padEnd(widths[i]!) : c).join("  ").trimEnd();
  return [line(head), ...body.map(line)].join("\n") + "\n";
}

/**
 * Builds the `stats` command.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function statsCommand(ctx: CliContext) {
  return new Command("stats")
    .description(
      "usage per profile and per actor from the audit trail (no password needed; verified " +
        "first when the master password is given)",
    )
    .option("--since <time>", "only records at or after TIME (ISO-8601, or 15m, 2h, 7d ago)")
    .option("--verify", "ask for the master password and verify the trail first")
    .option("--json", "print JSON")
    .action(async (opts) => {
      const dir = resolveHome({ home: ctx.globals.home });
      await checkHome(dir);
      const since = opts.since !== undefined ? parseSince(opts.since) : undefined;
      const entries: AuditEntry[] = [];
      let any = false;
      let unreadable = 0;
      for await (const l of trailLines(dir)) {
        any = true;
        if (l.entry) entries.push(l.entry);
        else unreadable++;
      }
      if (!any) throw new HecateError("vault_not_found", `No audit trail in "${dir}"`);
      const verify = opts.verify === true || ctx.globals.passwordStdin === true ||
        !!ctx.io.env("HECATE_PASSWORD_FILE");
      if (verify) {
        // Snapshot after reading: the trail only grows, so every line counted is in what is checked.
        const { snapshotTrail, verifyTrail } = await import("../../audit/verify.ts");
        const snapshot = await snapshotTrail(dir);
        const vault = await unlockForAudit(ctx, dir);
        const report = await verifyTrail(dir, chainKey(vault), snapshot);
        if (!report.ok) {
          const p = report.problem!;
          throw new HecateError(
            "audit_tampered",
            `Audit trail failed verification (${p.kind}): ${p.message}`,
            { hint: "no statistics from a trail that does not verify; see `hecate audit verify`" },
          );
        }
      }
      const stats = trailStats(entries, since);
      const verified = verify ? "verified" : "not verified";
      if (opts.json) {
        await ctx.io.out(
          JSON.stringify(
            { verified: verify, since: since?.toISOString() ?? null, unreadable, ...stats },
            null,
            2,
          ) + "\n",
        );
        return;
      }
      await ctx.io.out(
        `Audit trail statistics (${verified}${
          verify ? "" : ": give the master password to check the chain first"
        }): ${stats.entries} records${since ? ` since ${since.toISOString()}` : ""}${
          unreadable ? `, ${unreadable} unreadable line(s) skipped` : ""
        }\n\n` + table("PROFILE", stats.profiles) + "\n" + table("ACTOR", stats.actors),
      );
    });
}
