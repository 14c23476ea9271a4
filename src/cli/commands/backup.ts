/**
 * `hecate backup create|list|verify|restore|retention`.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { listBackups, restoreBackup, verifyBackup } from "../../api/backup.ts";
import { FileAuditLog } from "../../audit/log.ts";
import { resolveHome } from "../../vault/home.ts";
import type { CliContext } from "../context.ts";
import { parsePositiveInt } from "../parse.ts";
import { terminalProgress } from "../progress.ts";
import { masterPassword } from "../secrets.ts";

function size(n: number): string {
  return n < 1024
    ? `${n} B`
    : n < 1024 * 1024
    ? `${(n / 1024).toFixed(1)} KiB`
    : `${(n / 1048576).toFixed(1)} MiB`;
}

/**
 * Builds the `backup` command group.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function backupCommand(ctx: CliContext) {
  const backup = new Command("backup").description(
    "encrypted, authenticated backups of the vault and the audit trail",
  );
  backup.addCommand(
    new Command("create")
      .description("write a backup bundle (default: HOME/backups/<time>-manual.hecate-backup)")
      .option("--output <file>", "write the bundle to FILE (must not exist)")
      .action(async (opts) => {
        const vault = await ctx.unlock();
        const made = await vault.backups.create({
          output: opts.output,
          progress: terminalProgress(ctx.io, "backup"),
        });
        await ctx.io.out(`${made.path}\n`);
      }),
  );
  backup.addCommand(
    new Command("list")
      .description("list the bundles in HOME/backups (no password needed)")
      .action(async () => {
        const list = await listBackups(ctx.globals.home);
        for (const b of list) {
          await ctx.io.out(
            `${b.created}  ${b.automatic ? "auto  " : "manual"}  ${b.reason.padEnd(15)}  ${
              size(b.size).padStart(10)
            }  ${b.path}\n`,
          );
        }
      }),
  );
  backup.addCommand(
    new Command("verify")
      .description(
        "check that a bundle is intact and opens with the master password it was made with " +
          "(an unlock: lockout, one-time code, audited)",
      )
      .argument("<file>", "the bundle")
      .action(async (file) => {
        const password = await masterPassword(ctx.io, ctx.stdin, ctx.globals);
        const s = await verifyBackup({
          file,
          password,
          home: ctx.globals.home,
          totp: (what) => ctx.code(what),
          audit: new FileAuditLog(resolveHome({ home: ctx.globals.home }), {
            failure: "warn",
            onWarning: (m) => void ctx.warn(m),
          }),
          progress: terminalProgress(ctx.io, "verify"),
        });
        await ctx.io.out(
          `ok: made ${s.manifest.created} (${s.manifest.reason}), vault generation ${s.manifest.generation}, ` +
            `${s.profiles} profile(s), files: ${s.manifest.files.map((f) => f.name).join(", ")}\n`,
        );
      }),
  );
  backup.addCommand(
    new Command("restore")
      .description(
        "replace the vault with a bundle's (needs the current vault's password and one-time code; " +
          "the current vault is kept as a backup)",
      )
      .argument("<file>", "the bundle")
      .option(
        "--bundle-password-stdin",
        "read the bundle's password, when it differs from the current one, from the next line of standard input",
      )
      .option("--foreign", "accept a bundle of another vault than this home's")
      .action(async (file, opts) => {
        const password = await masterPassword(ctx.io, ctx.stdin, ctx.globals);
        const bundlePassword = opts.bundlePasswordStdin
          ? await ctx.stdin.next("bundle password")
          : undefined;
        const r = await restoreBackup({
          file,
          password,
          bundlePassword,
          foreign: opts.foreign === true,
          totp: (what) => ctx.code(what),
          home: ctx.globals.home,
          progress: terminalProgress(ctx.io, "restore"),
        });
        await ctx.io.out(
          `restored vault generation ${r.generation}` +
            (r.keptPrevious ? `; the previous vault is kept in ${r.keptPrevious}` : "") + "\n",
        );
        if (r.newChain) {
          await ctx.warn(
            "this home had no audit trail: a new one starts with this restore" +
              (r.archivedTrail ? `; the bundle's trail is archived in ${r.archivedTrail}` : ""),
          );
        }
      }),
  );
  backup.addCommand(
    new Command("retention")
      .description("show or set how many automatic backups are kept (default 10)")
      .argument("[n]", "keep the newest N automatic bundles", parsePositiveInt)
      .action(async (n) => {
        const vault = await ctx.unlock();
        if (n !== undefined) await vault.backups.setRetention(n);
        await ctx.io.out(`${vault.backups.retention}\n`);
      }),
  );
  return backup;
}
