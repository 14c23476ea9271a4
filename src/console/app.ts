/**
 * What every console route shares: the session store, the home, the cookie, and the checks a
 * route declares (a session, an unlocked vault, a CSRF token), plus form reading and the
 * redirect-after-post helper.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import type { Vault } from "../hecate.ts";
import type { Check } from "../http/checks.ts";
import type { RequestContext } from "../http/context.ts";
import type { RequestAuditLog } from "../http/audit.ts";
import { HttpRefusal } from "../http/respond.ts";
import type { Route, RouteArgs } from "../http/router.ts";
import type { LastUses } from "./last_use.ts";
import { sameToken, type Session, type SessionStore } from "./session.ts";

/** The session cookie: HttpOnly, SameSite=Strict, only sent to the console's paths. */
export const COOKIE = "hecate_console";
/** Where the console lives. */
export const BASE = "/console";
/** Largest form or JSON body accepted. */
export const MAX_BODY = 256 * 1024;

/** The console's shared state. */
export interface ConsoleApp {
  /** The vault's home. */
  home: string;
  /** Sessions and the login token. */
  sessions: SessionStore;
  /** The trail, stamped with each request. */
  audit: RequestAuditLog;
  /** Lockout policy text for unlocks. */
  lockout: string | undefined;
  /** Each profile's last use, from the trail. */
  lastUses: LastUses;
}

/** A handler that runs with the request's session. */
export type SessionHandler = (
  req: Request,
  args: RouteArgs & { session: Session },
) => Response | Promise<Response>;

/** A handler that runs with the session's open vault. */
export type VaultHandler = (
  req: Request,
  args: RouteArgs & { session: Session; vault: Vault },
) => Response | Promise<Response>;

/**
 * The Set-Cookie value for a session (or one that clears it).
 *
 * @param value Session id, or undefined to clear.
 * @returns The header value.
 */
export function cookieHeader(value: string | undefined): string {
  const v = value ?? "";
  const age = value === undefined ? "; Max-Age=0" : "";
  return `${COOKIE}=${v}; Path=${BASE}; HttpOnly; SameSite=Strict${age}`;
}

function cookieOf(req: Request): string | undefined {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === COOKIE) return v.join("=");
  }
  return undefined;
}

const sessions = new WeakMap<RequestContext, Session>();

/**
 * The check that a request carries a live session; it stamps the session's audit id on the
 * request context, so every record written for it names the console session.
 *
 * @param app The console.
 * @param unlocked Also require an unlocked vault.
 * @returns The check.
 */
export function sessionCheck(app: ConsoleApp, unlocked: boolean): Check {
  return async (req, ctx) => {
    const s = await app.sessions.get(cookieOf(req));
    if (!s || (unlocked && !s.vault)) {
      throw new HttpRefusal(401, "no_session", "No console session: use the login URL");
    }
    ctx.attributes.console_session = s.auditId;
    sessions.set(ctx, s);
  };
}

/**
 * The session a session check found for this request.
 *
 * @param ctx The request context.
 * @returns The session.
 */
export function sessionOf(ctx: RequestContext): Session {
  const s = sessions.get(ctx);
  if (!s) throw new HttpRefusal(401, "no_session", "No console session");
  return s;
}

const LIST = "\u0000list:";

/**
 * Every value of a repeated form field (or a JSON array member).
 *
 * @param form What {@link fieldsOf} returned.
 * @param name The field.
 * @returns The values, in order.
 */
export function listField(form: Record<string, string>, name: string): string[] {
  const raw = form[LIST + name];
  return raw === undefined ? [] : JSON.parse(raw) as string[];
}

/** Form fields or JSON members of a request, read once. */
const bodies = new WeakMap<Request, Record<string, string>>();

/**
 * Reads a urlencoded/multipart form or a JSON object body (string members only), at most
 * {@link MAX_BODY} bytes.
 *
 * @param req The request.
 * @returns Field values by name.
 */
export async function fieldsOf(req: Request): Promise<Record<string, string>> {
  const known = bodies.get(req);
  if (known) return known;
  // Read with a cap: a chunked body has no Content-Length for the server-wide check to refuse.
  const parts: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    for await (const chunk of req.body) {
      size += chunk.length;
      if (size > MAX_BODY) throw new HttpRefusal(413, "too_large", "Request body too large");
      parts.push(chunk);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  const text = new TextDecoder().decode(bytes);
  const type = req.headers.get("content-type") ?? "";
  const out: Record<string, string> = Object.create(null);
  if (type.startsWith("application/json")) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new HttpRefusal(400, "bad_request", "The body is not JSON");
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      throw new HttpRefusal(400, "bad_request", "The body must be a JSON object");
    }
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === "string") out[k] = x;
      else if (Array.isArray(x)) {
        out[k] = JSON.stringify(x);
        out[LIST + k] = JSON.stringify(x.map((i) => String(i)));
      } else if (typeof x === "number" || typeof x === "boolean") out[k] = String(x);
    }
  } else {
    const lists = new Map<string, string[]>();
    for (const [k, x] of new URLSearchParams(text)) {
      out[k] = x;
      lists.set(k, [...(lists.get(k) ?? []), x]);
    }
    for (const [k, xs] of lists) out[LIST + k] = JSON.stringify(xs);
  }
  bodies.set(req, out);
  return out;
}

/**
 * The check that a state-changing request carries the session's CSRF token, in the
 * `X-CSRF-Token` header or the `csrf` form field. Runs after {@link sessionCheck}.
 *
 * @returns The check.
 */
export function csrfCheck(): Check {
  return async (req, ctx) => {
    const s = sessionOf(ctx);
    const given = req.headers.get("x-csrf-token") ?? (await fieldsOf(req)).csrf ?? "";
    if (!sameToken(given, s.csrf)) {
      throw new HttpRefusal(403, "csrf", "Missing or wrong CSRF token");
    }
  };
}

/**
 * A GET page that needs an unlocked session.
 *
 * @param app The console.
 * @param path The path.
 * @param fn The handler.
 * @returns The route.
 */
export function viewRoute(app: ConsoleApp, path: string, fn: VaultHandler): Route {
  return {
    method: "GET",
    path,
    checks: [sessionCheck(app, true)],
    handle: (req, args) => {
      const session = sessionOf(args.ctx);
      return fn(req, { ...args, session, vault: session.vault! });
    },
  };
}

/**
 * A state-changing POST that needs an unlocked session and the CSRF token. A HecateError it
 * throws becomes an error message on the page it redirects to (`back`).
 *
 * @param app The console.
 * @param path The path.
 * @param back Where to go afterwards (a function of the path parameters).
 * @param fn The handler; returns a response, or undefined to redirect to `back`.
 * @returns The route.
 */
export function actionRoute(
  app: ConsoleApp,
  path: string,
  back: string | ((params: Record<string, string>) => string),
  fn: (
    req: Request,
    args: RouteArgs & { session: Session; vault: Vault; form: Record<string, string> },
  ) => Promise<Response | undefined>,
): Route {
  return {
    method: "POST",
    path,
    checks: [sessionCheck(app, true), csrfCheck()],
    handle: async (req, args) => {
      const session = sessionOf(args.ctx);
      const target = typeof back === "string" ? back : back(args.params);
      try {
        const form = await fieldsOf(req);
        const res = await fn(req, { ...args, session, vault: session.vault!, form });
        return res ?? redirect(target);
      } catch (e) {
        if (!(e instanceof HecateError)) throw e;
        session.flash.push({ kind: "error", text: e.message });
        return redirect(target);
      }
    },
  };
}

/**
 * 303 See Other to a console path.
 *
 * @param path The path.
 * @param cookie A Set-Cookie value to send with it.
 * @returns The response.
 */
export function redirect(path: string, cookie?: string): Response {
  const headers = new Headers({ location: path });
  if (cookie) headers.set("set-cookie", cookie);
  return new Response(null, { status: 303, headers });
}
