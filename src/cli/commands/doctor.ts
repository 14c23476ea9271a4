/**
 * `hecate doctor [--json]`: checks the home, the vault, the audit trail and the profiles, and
 * prints each finding with its severity and the command that fixes it. Exit code by the worst
 * severity: 0 (nothing or notes), 26 (warnings), 27 (errors).
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { FileAuditLog } from "../../audit/log.ts";
import { safeCell } from "../../db/output/width.ts";
import { runDoctor } from "../../doctor/doctor.ts";
import { doctorExitCode, type Finding, sortFindings, worstSeverity } from "../../doctor/finding.ts";
import { openVault } from "../../hecate.ts";
import { resolveHome } from "../../vault/home.ts";
import type { CliContext } from "../context.ts";
import { masterPassword } from "../secrets.ts";

/** Why the checks that need the master password cannot run, or undefined when they can. */
function whyNoUnlock(ctx: CliContext, wanted: boolean): string | undefined {
  if (!wanted) return "--no-unlock";
  if (ctx.globals.apiKeyFile !== undefined) return "an API key cannot read the vault's meta";
  if (ctx.identityPath() !== undefined) return undefined; // an age slot opens the root key too
  if (ctx.globals.passwordStdin || ctx.io.env("HECATE_PASSWORD_FILE")) return undefined;
  if (ctx.io.stdinIsTerminal) return undefined;
  return "no master password given and no terminal to ask on";
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function render(home: string, findings: readonly Finding[]): string {
  const lines = [`Hecate doctor: ${safeCell(home)}`];
  for (const f of sortFindings(findings)) {
    lines.push(`${f.severity.padEnd(5)}  ${f.check.padEnd(11)}  ${safeCell(f.message)}`);
    if (f.fix) lines.push(`${" ".repeat(20)}fix: ${safeCell(f.fix)}`);
  }
  const count = (s: Finding["severity"]) => findings.filter((f) => f.severity === s).length;
  lines.push(
    `${plural(count("error"), "error")}, ${plural(count("warn"), "warning")}, ` +
      `${plural(count("info"), "note")}`,
  );
  return lines.join("\n") + "\n";
}

/**
 * Builds `doctor`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function doctorCommand(ctx: CliContext) {
  return new Command("doctor")
    .description(
      "check permissions, KDF cost, TLS and SSH pins, API-key expiry, the audit trail, locks " +
        "and leftover files; print what to fix (exit 26 warnings, 27 errors)",
    )
    .option("--json", "print the findings as JSON")
    .option("--no-unlock", "skip the checks that need the master password (or --identity)")
    .action(async (opts) => {
      const home = resolveHome({ home: ctx.globals.home });
      const skipped = whyNoUnlock(ctx, opts.unlock);
      const unlock = skipped !== undefined ? undefined : async () => {
        const identity = await ctx.identity();
        const credential = identity !== undefined
          ? { identity }
          : { password: await masterPassword(ctx.io, ctx.stdin, ctx.globals) };
        // The unlock is audited as usual; a failure to record it only warns, so that a damaged
        // trail can still be diagnosed (as for `audit verify`).
        const audit = new FileAuditLog(home, {
          failure: "warn",
          onWarning: (m) => void ctx.warn(m),
          keepSegments: undefined,
        });
        return await openVault({ home, ...credential, audit, totp: (what) => ctx.code(what) });
      };
      const report = await runDoctor({ home, unlock, skipped });
      const code = doctorExitCode(report.findings);
      if (opts.json) {
        await ctx.io.out(
          JSON.stringify(
            {
              home: report.home,
              unlocked: report.unlocked,
              status: code === 0 ? "ok" : worstSeverity(report.findings),
              exitCode: code,
              findings: sortFindings(report.findings),
            },
            null,
            2,
          ) + "\n",
        );
      } else {
        await ctx.io.out(render(home, report.findings));
      }
      ctx.exitCode = code;
    });
}
