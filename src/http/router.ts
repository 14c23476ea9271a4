/**
 * Routes and the request pipeline: each route names its method, path, the checks it needs and
 * its handler; {@link handler} turns a route table into a Deno.serve handler that builds the
 * request context, runs the server-wide checks, then the route's, then the handler, and answers
 * every refusal or failure with a JSON error (never a stack trace) and the security headers.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import type { Check } from "./checks.ts";
import { contextOf, type RequestContext, withRequest } from "./context.ts";
import { HttpRefusal, jsonError, secured } from "./respond.ts";

/** What a handler gets besides the request. */
export interface RouteArgs {
  /** The request context. */
  ctx: RequestContext;
  /** Path parameters (`:name` segments). */
  params: Record<string, string>;
  /** The parsed URL. */
  url: URL;
}

/** One route. */
export interface Route {
  /** HTTP method. */
  method: "GET" | "POST" | "DELETE" | "PUT";
  /** Path with optional `:name` segments, e.g. `/console/profiles/:name`. */
  path: string;
  /** Checks run in order after the server-wide ones. */
  checks: readonly Check[];
  /** Produces the response. */
  handle(req: Request, args: RouteArgs): Response | Promise<Response>;
}

/** Options for {@link handler}. */
export interface PipelineOptions {
  /** Checks every request passes first (Host, Origin). */
  checks: readonly Check[];
  /** Maps an error a handler threw to a response; the default answers `internal`. */
  onError?: (e: unknown, req: Request, ctx: RequestContext) => Response | undefined;
  /** Called with each refusal (e.g. to audit it). */
  onRefusal?: (r: HttpRefusal, req: Request, ctx: RequestContext) => void | Promise<void>;
  /**
   * Renders a refusal for a person (e.g. an HTML page for a browser's navigation); the default
   * and an undefined return give the JSON error body.
   */
  renderRefusal?: (r: HttpRefusal, req: Request, ctx: RequestContext) => Response | undefined;
}

function match(pattern: string, path: string): Record<string, string> | undefined {
  const p = pattern.split("/");
  const s = path.split("/");
  if (p.length !== s.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    const want = p[i]!;
    const got = s[i]!;
    if (want.startsWith(":")) {
      let v: string;
      try {
        v = decodeURIComponent(got);
      } catch {
        return undefined;
      }
      if (v === "") return undefined;
      params[want.slice(1)] = v;
    } else if (want !== got) return undefined;
  }
  return params;
}

/** HecateError codes an HTTP client may see as they are, with their status. */
const CLIENT_ERRORS: Readonly<Record<string, number>> = {
  usage: 400,
  auth_failed: 401,
  totp_failed: 401,
  locked_out: 429,
  profile_not_found: 404,
  already_exists: 409,
  key_revoked: 401,
  key_not_allowed: 403,
  key_expired: 401,
  connection_failed: 502,
  query_failed: 400,
};

/**
 * Builds a Deno.serve handler from a route table.
 *
 * @param routes The routes.
 * @param options Server-wide checks and error mapping.
 * @returns The handler.
 */
export function handler(
  routes: readonly Route[],
  options: PipelineOptions,
): (req: Request, info: Deno.ServeHandlerInfo) => Promise<Response> {
  return async (req, info) => {
    const ctx = contextOf(req, info.remoteAddr);
    const res = await withRequest(ctx, async () => {
      try {
        for (const check of options.checks) await check(req, ctx);
        const url = new URL(req.url);
        let allowed = false;
        for (const r of routes) {
          const params = match(r.path, url.pathname);
          if (!params) continue;
          allowed = true;
          if (r.method !== req.method && !(r.method === "GET" && req.method === "HEAD")) continue;
          for (const check of r.checks) await check(req, ctx);
          return await r.handle(req, { ctx, params, url });
        }
        if (allowed) throw new HttpRefusal(405, "method_not_allowed", "Method not allowed");
        throw new HttpRefusal(404, "not_found", "Not found");
      } catch (e) {
        if (e instanceof HttpRefusal) {
          await options.onRefusal?.(e, req, ctx);
          const out = options.renderRefusal?.(e, req, ctx) ??
            jsonError(e.status, e.code, e.message, ctx.id);
          for (const [k, v] of Object.entries(e.headers)) out.headers.set(k, v);
          return out;
        }
        const mapped = options.onError?.(e, req, ctx);
        if (mapped) return mapped;
        if (e instanceof HecateError && CLIENT_ERRORS[e.code] !== undefined) {
          return jsonError(CLIENT_ERRORS[e.code]!, e.code, e.message, ctx.id);
        }
        return jsonError(500, "internal", "Internal error", ctx.id);
      }
    });
    return secured(res, ctx.id);
  };
}

/** A running server. */
export interface RunningServer {
  /** The port it listens on. */
  port: number;
  /** The address it listens on. */
  hostname: string;
  /** Stops accepting, lets requests in flight finish. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
}

/**
 * Starts a server on `hostname:port` (port 0: a free one).
 *
 * @param hostname The address to listen on.
 * @param port The port.
 * @param serve The handler.
 * @param tls Certificate chain and key (PEM) to serve HTTPS; plain HTTP without.
 * @returns The running server.
 */
export function startServer(
  hostname: string,
  port: number,
  serve: (req: Request, info: Deno.ServeHandlerInfo) => Promise<Response>,
  tls?: { cert: string; key: string },
): RunningServer {
  const server = Deno.serve({ hostname, port, onListen: () => {}, ...(tls ?? {}) }, serve);
  const addr = server.addr as Deno.NetAddr;
  return {
    port: addr.port,
    hostname: addr.hostname,
    shutdown: () => server.shutdown(),
    finished: server.finished,
  };
}
