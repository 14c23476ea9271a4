/**
 * Responses every HTTP surface of Hecate shares: JSON error bodies with a stable code, and the
 * security headers added to every response (strict CSP with no inline script, no caching, no
 * framing, no sniffing, no referrer).
 *
 * @module
 */

/**
 * Content-Security-Policy for everything Hecate serves: only its own script, style and images;
 * no inline script or style attribute, no plugins, no framing, forms post only to itself.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

/** Headers set on every response (a route's own headers of the same name are replaced). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CSP,
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // Not no-referrer: with it, Chromium sends `Origin: null` on same-site form posts.
  "referrer-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/**
 * Adds {@link SECURITY_HEADERS} and the request id to a response.
 *
 * @param res The response.
 * @param requestId The request's id.
 * @returns The same response (headers changed in place), or a copy when its headers are immutable.
 */
export function secured(res: Response, requestId: string): Response {
  let out = res;
  try {
    out.headers.set("x-request-id", requestId);
  } catch {
    out = new Response(res.body, res); // Response.redirect() and fetch() results are immutable
    out.headers.set("x-request-id", requestId);
  }
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) out.headers.set(k, v);
  return out;
}

/** The stable error codes an HTTP client may see (the `error.code` member). */
export type HttpErrorCode =
  | "bad_host"
  | "bad_origin"
  | "no_session"
  | "csrf"
  | "not_found"
  | "method_not_allowed"
  | "bad_request"
  | "too_large"
  | "locked_out"
  | "auth_failed"
  | "internal"
  | string;

/**
 * A JSON error: `{"error":{"code":..,"message":..,"request_id":..}}`. The message is one line for
 * a person and never holds a secret.
 *
 * @param status HTTP status.
 * @param code Stable machine-readable code.
 * @param message One line.
 * @param requestId The request's id.
 * @returns The response.
 */
export function jsonError(
  status: number,
  code: HttpErrorCode,
  message: string,
  requestId: string,
): Response {
  return Response.json({ error: { code, message, request_id: requestId } }, { status });
}

/** Thrown by a handler or check to answer with a JSON error. */
export class HttpRefusal extends Error {
  /**
   * @param status HTTP status.
   * @param code Stable code.
   * @param message One line, no secret.
   * @param headers Extra response headers (e.g. `Retry-After` on a 429).
   */
  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "HttpRefusal";
  }
}
