/**
 * `hecate unlock` and `hecate lock`: start the unlock agent (src/agent/), which keeps the vault
 * unlocked for later commands of this user, and end it. The agent unlocks with the master
 * password, an age identity (`--identity`) or a token (`--pkcs11`), as a one-shot command would.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { parseDuration } from "../../access/duration.ts";
import { lockAgent } from "../../agent/client.ts";
import { startAgent, type Started } from "../../agent/start.ts";
import { HecateError } from "../../errors.ts";
import { checkHome, resolveHome } from "../../vault/home.ts";
import type { CliContext } from "../context.ts";

/** The home as an absolute path (the agent runs in another directory). */
function absoluteHome(ctx: CliContext): string {
  const home = resolveHome({ home: ctx.globals.home, env: (n) => ctx.io.env(n) });
  return home.startsWith("/") ? home : `${Deno.cwd()}/${home}`;
}

/**
 * Builds `unlock`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function unlockCommand(ctx: CliContext) {
  return new Command("unlock")
    .description(
      "keep the vault unlocked in a background agent for later commands, opened with the " +
        "master password, --identity or --pkcs11 (ends at --for, when idle for --idle, at " +
        "`hecate lock`, or when the vault file changes)",
    )
    .option("--for <duration>", "end the agent after this long (e.g. 15m, 2h)", "15m")
    .option("--idle <duration>", "end the agent after this long without a command", "5m")
    .action(async (opts) => {
      const forMs = parseDuration(opts.for, "--for");
      const idleMs = parseDuration(opts.idle, "--idle");
      const apiKey = ctx.io.env("HECATE_API_KEY");
      if (ctx.globals.apiKeyFile !== undefined || (apiKey !== undefined && apiKey.trim() !== "")) {
        // An API key is already unattended: there is nothing for an agent to keep.
        throw new HecateError(
          "no_credential",
          "The unlock agent needs the master password, an age identity or a token, not an API key",
          { hint: "run it without --api-key-file / HECATE_API_KEY" },
        );
      }
      const home = absoluteHome(ctx);
      await checkHome(home);
      // Read here, with this user's file checks and prompts; the agent gets the secret itself
      // (the identity's text, not its path) on its stdin.
      const credential = await ctx.fullCredential();
      const given = ctx.globals.totp ?? ctx.io.env("HECATE_TOTP");
      // A running agent is left alone until the new one has unlocked; then the new one ends it
      // and takes its place (one agent per home; src/agent/handover.ts).
      const started = await startAgent(
        { home, ...credential, ...(given ? { totp: given } : {}), forMs, idleMs },
        (what) => ctx.code(what),
      );
      await ctx.io.err(
        `hecate: unlocked until ${started.expires} (agent pid ${started.pid}; ` +
          `\`hecate lock\` ends it)\n`,
      );
      if (started.hung) await killReplaced(ctx, home, started.hung);
    });
}

/**
 * Kills the agent a new one replaced without an answer from it (stopped or hung: its socket and
 * session file are the new agent's now, but it still holds the vault in memory), if `ps` still
 * shows it as that agent, and records its end; as `hecate lock` does for an agent that does not
 * answer.
 */
async function killReplaced(
  ctx: CliContext,
  home: string,
  hung: NonNullable<Started["hung"]>,
): Promise<void> {
  const { killIfSameAgent } = await import("../../agent/process_start.ts");
  if (!await killIfSameAgent(hung.pid, hung.started)) return;
  const { recordKilledAgent } = await import("../../agent/killed_record.ts");
  await recordKilledAgent(home, hung, "unlock");
  await ctx.io.err(
    `hecate: warning: the unlock agent it replaced (pid ${hung.pid}) did not answer; it was ` +
      "killed (SIGKILL)\n",
  );
}

/**
 * Builds `lock`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function lockCommand(ctx: CliContext) {
  return new Command("lock")
    .description("end the unlock agent at once (no agent is not an error)")
    .action(async () => {
      const home = absoluteHome(ctx);
      const outcome = await lockAgent(home, undefined, undefined, { kill: true });
      await ctx.io.err(
        outcome === "ended"
          ? "hecate: locked\n"
          : outcome === "killed"
          ? "hecate: warning: the unlock agent did not answer (stopped or hung); it was killed " +
            "(SIGKILL) and its socket and session file removed\n"
          : outcome === "hung"
          ? "hecate: warning: the unlock agent did not answer (stopped or hung); its socket and " +
            "session file were removed, so no command can reach it, and it ends itself when it " +
            "runs again\n"
          : "hecate: note: no unlock agent was running\n",
      );
    });
}

/**
 * Ends the agent of the home after a command that changes the keys or the password (`passwd`,
 * `rotate`); the vault-file watch would end it too, this is at once.
 *
 * @param ctx The invocation context.
 */
export async function endAgentAfterKeyChange(ctx: CliContext): Promise<void> {
  await lockAgent(absoluteHome(ctx), undefined, undefined, { kill: true }).catch(() => {});
}
