/**
 * `hecate audit show|verify|export`: read, check and ship the audit trail (it holds no secrets).
 *
 * @module
 */

import { Command, Option } from "@commander-js/extra-typings";
import { FileAuditLog, type FileAuditLogOptions } from "../../audit/log.ts";
import {
  type EntryFilter,
  jsonSafe,
  matches,
  parseSince,
  type TrailLine,
  trailLines,
} from "../../audit/read.ts";
import type { VerifyReport } from "../../audit/verify.ts";
import type { AuditEntry } from "../../audit/entry.ts";
import { safeCell } from "../../db/output/width.ts";
import { rolledBack } from "../../access/vault_generation.ts";
import { HecateError } from "../../errors.ts";
import { openVault, type Vault } from "../../hecate.ts";
import { checkHome, resolveHome } from "../../vault/home.ts";
import type { CliContext } from "../context.ts";
import { OutputTarget } from "../output_target.ts";
import { parsePositiveInt } from "../parse.ts";
import { masterPassword } from "../secrets.ts";

function formatEntry(r: AuditEntry): string {
  const a = r.actor;
  const actor = a ? a.kind + (a.name ? `:${a.name}` : "") + (a.id ? `(${a.id})` : "") : "-";
  const extra = [
    r.rows !== undefined ? `rows=${r.rows}` : "",
    r.duration_ms !== undefined ? `${r.duration_ms}ms` : "",
    r.reason !== undefined ? `reason=${r.reason}` : "",
  ].filter(Boolean).join(" ");
  return `${r.time}  ${String(r.event).padEnd(15)} ${String(r.outcome).padEnd(4)} ${
    actor.padEnd(10)
  } ${r.profile ?? "-"}  ${extra}`.trimEnd();
}

/**
 * The log options of the audit commands: a failure to write only warns (see below), and no
 * retention: it would remove files the snapshot being checked or exported still lists.
 */
function auditLogOptions(ctx: CliContext): FileAuditLogOptions {
  return { failure: "warn", onWarning: (m) => void ctx.warn(m), keepSegments: undefined };
}

/**
 * Unlocks for audit work. The unlock is recorded as usual, but a failure to record it only warns:
 * verifying or exporting releases no database secret, and a damaged trail must still be checkable.
 *
 * @param ctx The invocation context.
 * @param home The home directory.
 * @returns The open vault.
 */
export async function unlockForAudit(ctx: CliContext, home: string): Promise<Vault> {
  const password = await masterPassword(ctx.io, ctx.stdin, ctx.globals);
  const audit = new FileAuditLog(home, auditLogOptions(ctx));
  return await openVault({ home, password, audit });
}

/**
 * The audit chain's first key of an open vault.
 *
 * @param vault The vault, opened with the master password.
 * @returns A0.
 */
export function chainKey(vault: Vault): Uint8Array {
  const a0 = vault.auditChainKey();
  if (!a0) throw new HecateError("internal", "This vault has no audit chain key");
  return a0;
}

function describe(report: VerifyReport): string {
  const out = [
    `Audit trail intact: ${report.entries} entries (seq ${report.firstSeq}..${report.lastSeq}) ` +
    `in ${report.files} file(s)`,
  ];
  if (report.firstSeq > 1) {
    out.push(`Entries 1..${report.firstSeq - 1} removed by retention (proof checked under A0):`);
  }
  // The names come from the trail: escaped, like everything printed from it.
  for (const r of report.removed) {
    out.push(`  ${safeCell(String(r.segment))} (seq ${r.first_seq}..${r.last_seq})`);
  }
  return out.join("\n") + "\n";
}

/**
 * Builds the `audit` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function auditCommand(ctx: CliContext) {
  const audit = new Command("audit").description("read, verify and export the audit trail");
  const home = () => resolveHome({ home: ctx.globals.home });

  audit.addCommand(
    new Command("show")
      .description("print audit records, oldest first")
      .option("--last <n>", "only the last N matching records", parsePositiveInt)
      .option("--since <time>", "only records at or after TIME (ISO-8601, or 15m, 2h, 7d ago)")
      .option("--server <name>", "only records about this profile")
      .option("--actor <actor>", "only records by password, apikey, apikey:ID, or a key id or name")
      .addOption(
        new Option("--outcome <outcome>", "only ok or failed records").choices(
          ["ok", "fail"] as const,
        ),
      )
      .option("--json", "print the stored JSON lines")
      .action(async (opts) => {
        const dir = home();
        await checkHome(dir);
        const filter: EntryFilter = {
          since: opts.since !== undefined ? parseSince(opts.since) : undefined,
          profile: opts.server,
          actor: opts.actor,
          outcome: opts.outcome,
        };
        const keep: TrailLine[] = [];
        let any = false;
        const emit = async (l: TrailLine) => {
          // Lines may be forged: no control character from the file reaches the terminal.
          if (opts.json) await ctx.io.out(jsonSafe(l.text) + "\n");
          else {
            await ctx.io.out(
              safeCell(l.entry ? formatEntry(l.entry) : `(unreadable) ${l.text}`) + "\n",
            );
          }
        };
        for await (const l of trailLines(dir)) {
          any = true;
          if (l.entry && !matches(l.entry, filter)) continue;
          if (opts.last === undefined) await emit(l);
          else {
            keep.push(l);
            if (keep.length > opts.last) keep.shift();
          }
        }
        if (!any) throw new HecateError("vault_not_found", `No audit trail in "${dir}"`);
        for (const l of keep) await emit(l);
      }),
  );

  audit.addCommand(
    new Command("verify")
      .description("recompute the MAC chain from its first key (asks for the master password)")
      .option("--export <file>", "verify an export file instead of the trail")
      .action(async (opts) => {
        const dir = home();
        await checkHome(dir);
        // The trail as it stands now, before this command's own unlock record.
        // Verification and export load the verifier and its hash engine; only these commands pay.
        const { snapshotTrail, verifyTrail } = await import("../../audit/verify.ts");
        const snapshot = await snapshotTrail(dir);
        const vault = await unlockForAudit(ctx, dir);
        const a0 = chainKey(vault);
        const log = new FileAuditLog(dir, auditLogOptions(ctx));
        if (opts.export !== undefined) {
          const { verifyExport } = await import("../../audit/export.ts");
          const h = await verifyExport(await Deno.readTextFile(opts.export), a0);
          await ctx.io.out(
            `Export intact: ${h.entries} entries (seq ${h.first_seq}..${h.last_seq}) of vault ${h.vault}\n`,
          );
          return;
        }
        const report = await verifyTrail(dir, a0, snapshot);
        // The verified trail knows every generation written: a lower vault file was put back.
        const { trailVaultFacts } = await import("../../audit/written_generation.ts");
        const facts = report.ok
          ? await trailVaultFacts(dir, vault.id, report.firstSeq, report.lastSeq)
          : undefined;
        const rolled = facts && vault.generation < facts.highestGeneration;
        await log.append({
          event: "audit.verify",
          actor: { kind: "password" },
          outcome: report.ok && !rolled ? "ok" : "fail",
          ...(report.problem
            ? { reason: report.problem.kind }
            : rolled
            ? { reason: "vault_rolled_back" }
            : {}),
        });
        if (rolled) {
          throw rolledBack(vault.generation, facts.highestGeneration, "the verified audit trail");
        }
        if (!report.ok) {
          const p = report.problem!;
          throw new HecateError(
            "audit_tampered",
            `Audit trail failed verification (${p.kind}): ${p.message}`,
            {
              hint: `first bad point: ${p.file}${p.line !== undefined ? ` line ${p.line}` : ""}; ` +
                `${report.entries} entries before it verified`,
            },
          );
        }
        await ctx.io.out(describe(report));
        if (facts?.newChainByRestore) {
          await ctx.io.out(
            `This trail was started by a restore at ${facts.newChainByRestore} (the previous trail was missing)\n`,
          );
        }
      }),
  );

  audit.addCommand(
    new Command("export")
      .description(
        "write verified entries plus the header a verifier needs (asks for the password)",
      )
      .option("--since <time>", "start at the first record at or after TIME (ISO-8601, or 7d ago)")
      .option("--output <file>", "write to FILE (created 0600) instead of standard output")
      .action(async (opts) => {
        const dir = home();
        await checkHome(dir);
        const since = opts.since !== undefined ? parseSince(opts.since) : undefined;
        const { snapshotTrail } = await import("../../audit/verify.ts");
        const { exportTrail } = await import("../../audit/export.ts");
        const snapshot = await snapshotTrail(dir);
        const vault = await unlockForAudit(ctx, dir);
        const target = opts.output
          ? await OutputTarget.file(opts.output)
          : OutputTarget.stdout(ctx.io);
        const enc = new TextEncoder();
        try {
          const h = await exportTrail(
            dir,
            chainKey(vault),
            vault.id,
            (t) => target.write(enc.encode(t)),
            {
              since,
              snapshot,
            },
          );
          await target.commit();
          await new FileAuditLog(dir, auditLogOptions(ctx))
            .append({
              event: "audit.export",
              actor: { kind: "password" },
              outcome: "ok",
              detail: { first_seq: h.first_seq, last_seq: h.last_seq },
            });
        } catch (e) {
          await target.abort();
          throw e;
        }
      }),
  );
  return audit;
}
