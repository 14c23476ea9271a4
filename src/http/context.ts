/**
 * The request context every HTTP route sees and the audit trail records: a random request id,
 * the client address, the user agent and attributes a route adds (the console's session id, later
 * the gateway's key id). It travels with the request through async calls, so an audit record
 * written deep inside the library still names the request that caused it (see audit.ts).
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { toBase64Url } from "../vault/encoding.ts";
import { randomBytes } from "../vault/primitives.ts";

/** Longest user agent kept: a client chooses it, the trail should not grow with it. */
export const MAX_USER_AGENT = 200;

/** Who is asking, as the server saw it. */
export interface RequestContext {
  /** Random id, also sent back as `X-Request-Id` and in error bodies. */
  readonly id: string;
  /** The peer's IP address (from the socket, never from a header). */
  readonly client: string;
  /** The `User-Agent` header, cut to {@link MAX_USER_AGENT} characters, control characters removed. */
  readonly userAgent: string;
  /** Attributes set by a check for the audit trail (e.g. `console_session`); never secrets. */
  readonly attributes: Record<string, string>;
}

const current = new AsyncLocalStorage<RequestContext>();

/**
 * Makes the context of one request.
 *
 * @param req The request.
 * @param remote The peer address as Deno.serve reports it.
 * @returns A fresh context with a new request id.
 */
export function contextOf(req: Request, remote: Deno.Addr | undefined): RequestContext {
  const client = remote && "hostname" in remote ? remote.hostname : "unknown";
  // deno-lint-ignore no-control-regex
  const ua = (req.headers.get("user-agent") ?? "").replace(/[\u0000-\u001f\u007f]/g, "")
    .slice(0, MAX_USER_AGENT);
  return { id: toBase64Url(randomBytes(12)), client, userAgent: ua, attributes: {} };
}

/**
 * Runs `fn` with `ctx` as the current request.
 *
 * @param ctx The request's context.
 * @param fn The handler.
 * @returns What `fn` returns.
 */
export function withRequest<T>(ctx: RequestContext, fn: () => T): T {
  return current.run(ctx, fn);
}

/**
 * The request being handled on this async path, if any.
 *
 * @returns The context, or undefined outside a request.
 */
export function currentRequest(): RequestContext | undefined {
  return current.getStore();
}
