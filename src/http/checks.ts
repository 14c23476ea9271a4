/**
 * Request checks: small functions a route lists in order, each either letting the request on
 * (undefined) or refusing it with an {@link HttpRefusal}. The console and the gateway use the same
 * ones; each surface adds its own (session, CSRF, API key) in the same shape.
 *
 * @module
 */

import type { RequestContext } from "./context.ts";
import { HttpRefusal } from "./respond.ts";

/** One check: throw an HttpRefusal to refuse, return to let the request on. */
export type Check = (req: Request, ctx: RequestContext) => void | Promise<void>;

/** Methods that change nothing (RFC 9110 "safe"); every other method is state-changing. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Refuses a request whose `Host` header is not one of `hosts` (exact `name:port`, compared case
 * insensitively). This is the defence against DNS rebinding: a page from another site whose name
 * was made to resolve to 127.0.0.1 still sends its own name as Host.
 *
 * @param hosts The accepted Host values, e.g. `127.0.0.1:8080`, `localhost:8080`.
 * @returns The check.
 */
export function hostCheck(hosts: () => readonly string[]): Check {
  return (req) => {
    const host = (req.headers.get("host") ?? "").toLowerCase();
    if (!hosts().some((h) => h.toLowerCase() === host)) {
      throw new HttpRefusal(421, "bad_host", "This server does not answer for that host name");
    }
  };
}

/**
 * Refuses a request whose `Origin` is present and not one of `origins`; for state-changing methods
 * an `Origin` (or a same-origin `Sec-Fetch-Site`) is required. Browsers always send Origin on
 * cross-site and on POST requests, so a page of another site cannot submit to this server.
 *
 * @param origins The accepted origins, e.g. `http://127.0.0.1:8080`.
 * @returns The check.
 */
export function originCheck(origins: () => readonly string[]): Check {
  return (req) => {
    const origin = req.headers.get("origin");
    const ok = origin !== null && origins().includes(origin.toLowerCase());
    if (origin !== null && !ok) {
      throw new HttpRefusal(403, "bad_origin", "Requests from another site are refused");
    }
    if (origin === null && !SAFE_METHODS.has(req.method)) {
      const site = req.headers.get("sec-fetch-site");
      if (site !== "same-origin") {
        throw new HttpRefusal(403, "bad_origin", "A state-changing request needs its Origin");
      }
    }
  };
}

/**
 * Refuses a body larger than `bytes` by its Content-Length (a chunked body is cut by the reader).
 *
 * @param bytes The limit.
 * @returns The check.
 */
export function bodyLimit(bytes: number): Check {
  return (req) => {
    const n = Number(req.headers.get("content-length") ?? "0");
    if (!Number.isFinite(n) || n > bytes) {
      throw new HttpRefusal(413, "too_large", `The request body is over ${bytes} bytes`);
    }
  };
}
