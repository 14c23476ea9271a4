/**
 * `hecate import hecate-pyx|dotenv|pgpass` and `hecate export --encrypted FILE`.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { HecateError } from "../../errors.ts";
import { applyImport, type ImportNote, type ImportPlan } from "../../import/plan.ts";
import { planPyxImport } from "../../import/pyx.ts";
import { planDotenvImport, planPgpassImport } from "../../import/sources.ts";
import type { CliContext } from "../context.ts";
import { terminalProgress } from "../progress.ts";

function homeDir(ctx: CliContext): string {
  const h = ctx.io.env("HOME");
  if (!h) throw new HecateError("usage", "HOME is not set: give the path explicitly");
  return h;
}

async function printReport(ctx: CliContext, report: ImportNote[]): Promise<void> {
  for (const n of report) {
    await ctx.io.out(`${n.kind.padEnd(8)} ${n.profile ? `${n.profile}: ` : ""}${n.message}\n`);
  }
  const imported = report.filter((n) => n.kind === "imported").length;
  const skipped = report.filter((n) => n.kind === "skipped").length;
  await ctx.io.err(`hecate: ${imported} imported, ${skipped} not brought over\n`);
}

async function run(
  ctx: CliContext,
  plan: (vault: Awaited<ReturnType<CliContext["unlock"]>>) => Promise<ImportPlan>,
  dryRun: boolean,
): Promise<void> {
  const vault = await ctx.unlock();
  const p = await plan(vault);
  const recovery: string[] = [];
  const report = await applyImport(vault, p, {
    dryRun,
    onRecoveryCodes: (profile, codes) => {
      recovery.push(
        `Recovery codes for profile "${profile}" (each works once, with the master password; ` +
          `store them offline):\n${codes.map((c) => `  ${c}\n`).join("")}`,
      );
    },
  });
  await printReport(ctx, report);
  // Shown once, like 'hecate totp setup' does: only their hashes are stored.
  for (const r of recovery) await ctx.io.out(r);
}

/**
 * Builds the `import` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function importCommand(ctx: CliContext) {
  const cmd = new Command("import").description(
    "bring profiles over from Hecate Pyx, a .env file or ~/.pgpass (sources are only read)",
  );
  cmd.addCommand(
    new Command("hecate-pyx")
      .description(
        "import a Hecate Pyx directory (credentials.enc, totp_secrets.enc, api_keys.enc; the " +
          "legacy and the 3.0 layout): every profile, incomplete ones marked with the " +
          "'server edit' that completes them; enabled TOTP secrets become the profiles' TOTP",
      )
      .argument("[dir]", "the directory (default: ~/.hecate_pyx)")
      .option(
        "--legacy-password-stdin",
        "read the Hecate Pyx password from standard input (the line after the master password)",
      )
      .option("--dry-run", "report what would be imported, change nothing")
      .action(async (dir, opts) => {
        await run(ctx, async () => {
          const legacy = opts.legacyPasswordStdin
            ? await ctx.stdin.next("Hecate Pyx password")
            : ctx.io.stdinIsTerminal
            ? await ctx.io.promptSecret("Hecate Pyx password:")
            : (() => {
              throw new HecateError(
                "no_credential",
                "No Hecate Pyx password given and no terminal",
                {
                  hint: "use --legacy-password-stdin",
                },
              );
            })();
          return await planPyxImport(dir ?? `${homeDir(ctx)}/.hecate_pyx`, legacy);
        }, opts.dryRun ?? false);
      }),
  );
  cmd.addCommand(
    new Command("dotenv")
      .description("import DATABASE_URL, or PG* or MYSQL_* variables, from a .env file")
      .argument("<file>", "the .env file")
      .requiredOption("--name <name>", "the new profile's name")
      .option("--dry-run", "report what would be imported, change nothing")
      .action(async (file, opts) => {
        await run(ctx, () => planDotenvImport(file, opts.name), opts.dryRun ?? false);
      }),
  );
  cmd.addCommand(
    new Command("pgpass")
      .description("import one PostgreSQL profile per ~/.pgpass line")
      .argument("[file]", "the file (default: ~/.pgpass)")
      .option("--prefix <prefix>", "prefix of the generated profile names", "pg-")
      .option("--dry-run", "report what would be imported, change nothing")
      .action(async (file, opts) => {
        await run(
          ctx,
          () => planPgpassImport(file ?? `${homeDir(ctx)}/.pgpass`, opts.prefix),
          opts.dryRun ?? false,
        );
      }),
  );
  return cmd;
}

/**
 * Builds `export`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function exportCommand(ctx: CliContext) {
  return new Command("export")
    .description(
      "write the vault and audit trail as an encrypted bundle for another machine " +
        "(restore there with 'hecate backup restore FILE')",
    )
    .requiredOption("--encrypted <file>", "the bundle to write (must not exist)")
    .action(async (opts) => {
      const vault = await ctx.unlock();
      const made = await vault.backups.create({
        output: opts.encrypted,
        reason: "export",
        progress: terminalProgress(ctx.io, "export"),
      });
      await ctx.io.out(`${made.path}\n`);
    });
}
