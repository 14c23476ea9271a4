/**
 * `hecate ui`: the web console on 127.0.0.1 (src/console). Prints the one-time login URL, opens
 * the browser when a desktop is there, and stops cleanly on Ctrl-C (every session's vault closed).
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { parseDuration } from "../../access/duration.ts";
import { spawnWithEnv } from "../../run/spawn.ts";
import { resolveHome } from "../../vault/home.ts";
import type { CliContext } from "../context.ts";
import { untilStopped } from "../until_stopped.ts";
import { parsePort } from "../parse.ts";

function duration(what: string) {
  return (v: string) => parseDuration(v, what);
}

/**
 * Opens the login URL in the desktop's browser without putting its token on a command line
 * (where any local process could read it): the opener gets the path of a 0600 page in the home
 * that forwards to the URL. Silently nothing when no opener works: the printed URL is enough.
 *
 * @param home The home directory (0700).
 * @param url The login URL.
 * @returns The forwarding page's path, to remove at the end.
 */
async function openBrowser(home: string, url: string): Promise<string> {
  const page = `${home}/console-login.html`;
  await Deno.writeTextFile(
    page,
    `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${url}">` +
      `<title>Hecate console</title>`,
    { mode: 0o600 },
  );
  await Deno.chmod(page, 0o600);
  spawnWithEnv("xdg-open", [page], {}).catch(() => {});
  return page;
}

/**
 * Builds `ui`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function uiCommand(ctx: CliContext) {
  return new Command("ui")
    .description("serve the web console on 127.0.0.1 and print its one-time login URL")
    .option("--port <n>", "port to listen on (default: a free one)", parsePort)
    .option("--no-open", "do not open a browser")
    .option("--idle <time>", "end a session after this long without a request", duration("idle"))
    .option("--max-session <time>", "end a session this long after unlock", duration("limit"))
    .action(async (opts) => {
      const { startConsole } = await import("../../console/server.ts");
      const limits: { idleMs?: number; absoluteMs?: number } = {};
      if (opts.idle !== undefined) limits.idleMs = opts.idle;
      if (opts.maxSession !== undefined) limits.absoluteMs = opts.maxSession;
      const running = await startConsole({
        home: resolveHome({ home: ctx.globals.home }),
        port: opts.port ?? 0,
        limits,
        onLoginUrl: (url, why) =>
          void ctx.io.out(`A session ended (${why}). New one-time login URL:\n  ${url}\n`),
      });
      await ctx.io.out(
        `Hecate console on ${running.origin}\nOpen this one-time login URL:\n  ${running.loginUrl}\n` +
          `Press Ctrl-C to stop.\n`,
      );
      const desktop = ctx.io.env("DISPLAY") || ctx.io.env("WAYLAND_DISPLAY");
      const home = resolveHome({ home: ctx.globals.home });
      const opened = opts.open && desktop ? await openBrowser(home, running.loginUrl) : undefined;
      // The redirect page holding the login URL goes once the console has stopped.
      await untilStopped(running, async () => {
        if (opened) await Deno.remove(opened).catch(() => {});
      });
      await ctx.io.out("Console stopped; every key it held is forgotten.\n");
    });
}
