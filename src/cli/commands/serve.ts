/**
 * `hecate serve`: the HTTP gateway for applications (src/gateway). Says on every start how the
 * transport is protected; stops cleanly on SIGINT/SIGTERM.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import { resolveHome } from "../../vault/home.ts";
import type { CliContext } from "../context.ts";
import { untilStopped } from "../until_stopped.ts";

/**
 * Parses `HOST:PORT` (`[::1]:PORT` for IPv6; port 0: a free one).
 *
 * @param v The option text.
 * @returns Host and port.
 */
export function parseListen(v: string): { hostname: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError("must be HOST:PORT, e.g. 127.0.0.1:8443");
  return { hostname: m[1]!.replace(/^\[|\]$/g, ""), port };
}

/**
 * Builds `serve`.
 *
 * @param ctx The invocation context.
 * @returns The command.
 */
export function serveCommand(ctx: CliContext) {
  return new Command("serve")
    .description("serve the JSON/HTTP gateway for applications (API keys as Bearer tokens)")
    .requiredOption(
      "--listen <host:port>",
      "address to listen on (port 0: a free one)",
      parseListen,
    )
    .option("--tls-cert <file>", "PEM certificate chain: serve HTTPS")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .option("--insecure-http", "allow plain HTTP on an address other than loopback")
    .action(async (opts) => {
      const { HecateError } = await import("../../errors.ts");
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
        throw new HecateError("usage", "Give both --tls-cert and --tls-key, or neither");
      }
      let tls: { cert: string; key: string } | undefined;
      if (opts.tlsCert !== undefined && opts.tlsKey !== undefined) {
        try {
          tls = {
            cert: await Deno.readTextFile(opts.tlsCert),
            key: await Deno.readTextFile(opts.tlsKey),
          };
        } catch {
          throw new HecateError("usage", "Cannot read the TLS certificate or key file");
        }
      }
      const { startGateway } = await import("../../gateway/server.ts");
      const running = await startGateway({
        home: resolveHome({ home: ctx.globals.home }),
        hostname: opts.listen.hostname,
        port: opts.listen.port,
        tls,
        insecureHttp: opts.insecureHttp ?? false,
      });
      await ctx.io.out(`${running.transport}\nPress Ctrl-C to stop.\n`);
      await untilStopped(running);
      await ctx.io.out("Gateway stopped.\n");
    });
}
