/**
 * The OAuth2 client-credentials grant (RFC 6749 section 4.4) against a token endpoint such as
 * Microsoft Entra ID's, with a client secret or a client assertion (RFC 7523), and an in-memory
 * cache that keeps each access token until shortly before it expires.
 *
 * Errors are one line and never carry the client secret, the assertion or the token. Redirects
 * are not followed: a 3xx answer is a failure, so the credentials go only to the configured URL.
 *
 * @module
 */

import { HecateError } from "../../src/errors.ts";

/** A token request. */
export interface TokenRequest {
  /** The token endpoint URL. */
  tokenUrl: string;
  clientId: string;
  /** E.g. `https://database.windows.net/.default`. */
  scope: string;
  /** Exactly one of `clientSecret` and `assertion` (a function, so it is built only when needed). */
  clientSecret?: string;
  assertion?: () => Promise<string>;
  /** Milliseconds to wait for the endpoint. */
  timeoutMs: number;
}

/** An access token and when it stops being valid. */
export interface AccessToken {
  token: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** Calls the token endpoint once. */
export async function requestToken(req: TokenRequest, now = Date.now()): Promise<AccessToken> {
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: req.clientId,
    scope: req.scope,
  });
  if (req.assertion) {
    body.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    body.set("client_assertion", await req.assertion());
  } else {
    body.set("client_secret", req.clientSecret ?? "");
  }
  const where = `the token endpoint ${new URL(req.tokenUrl).origin}`;
  let res: Response;
  try {
    res = await fetch(req.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body,
      // A redirect would carry the client secret or assertion to a URL the profile never named
      // (fetch re-sends the body on 307 and 308): never followed, reported below.
      redirect: "manual",
      signal: AbortSignal.timeout(req.timeoutMs),
    });
  } catch (e) {
    const timedOut = e instanceof DOMException && e.name === "TimeoutError";
    throw new HecateError(
      "connection_failed",
      `Cannot get an access token from ${where}: ${
        timedOut ? `no answer within ${req.timeoutMs} ms` : "cannot connect"
      }`,
      { cause: timedOut ? undefined : e },
    );
  }
  if (res.type === "opaqueredirect" || (res.status >= 300 && res.status < 400)) {
    await res.body?.cancel().catch(() => {});
    throw new HecateError(
      "connection_failed",
      `Cannot get an access token from ${where}: it answered with a redirect (HTTP ${res.status}), ` +
        "which Hecate does not follow",
      { hint: "set the profile's tokenUrl to the endpoint itself" },
    );
  }
  let json: unknown;
  const text = await res.text().catch(() => "");
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const obj = (json && typeof json === "object" ? json : {}) as Record<string, unknown>;
  if (!res.ok) {
    // The OAuth error code (RFC 6749 5.2) is a fixed word; the description may echo input, so
    // it is left out.
    const code = typeof obj.error === "string" && /^[\w.-]{1,64}$/.test(obj.error)
      ? ` (${obj.error})`
      : "";
    const refused = res.status === 400 || res.status === 401 || res.status === 403;
    throw new HecateError(
      refused ? "auth_failed" : "connection_failed",
      refused
        ? `The token endpoint refused the client credentials: HTTP ${res.status}${code}`
        : `Cannot get an access token from ${where}: HTTP ${res.status}${code}`,
    );
  }
  const token = obj.access_token;
  const expiresIn = Number(obj.expires_in);
  if (typeof token !== "string" || token === "" || !Number.isFinite(expiresIn)) {
    throw new HecateError(
      "connection_failed",
      `Cannot get an access token from ${where}: the answer is not a token response`,
    );
  }
  return { token, expiresAt: now + expiresIn * 1000 };
}

/** Options for {@link TokenCache}. */
export interface TokenCacheOptions {
  /** The clock, in milliseconds. @default {Date.now} */
  now?: () => number;
  /** Renew this long before expiry, at most. @default {300000} */
  maxMarginMs?: number;
}

/**
 * Keeps access tokens in memory by key until shortly before they expire: the margin is a tenth of
 * the token's lifetime, at most five minutes, so short-lived tokens are still reused.
 */
export class TokenCache {
  readonly #entries = new Map<string, AccessToken & { margin: number }>();
  readonly #now: () => number;
  readonly #maxMargin: number;

  /** @param options Clock and margin. */
  constructor(options: TokenCacheOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#maxMargin = options.maxMarginMs ?? 300_000;
  }

  /**
   * Returns a cached token that is still fresh, or fetches, caches and returns a new one.
   *
   * @param key Identifies the credential (never the secret itself).
   * @param fetchToken Gets a new token; receives the current time.
   */
  async get(key: string, fetchToken: (now: number) => Promise<AccessToken>): Promise<string> {
    const now = this.#now();
    const hit = this.#entries.get(key);
    if (hit && now < hit.expiresAt - hit.margin) return hit.token;
    this.#entries.delete(key);
    const fresh = await fetchToken(now);
    const margin = Math.min(this.#maxMargin, (fresh.expiresAt - now) / 10);
    this.#entries.set(key, { ...fresh, margin });
    return fresh.token;
  }

  /** Forgets every token. */
  clear(): void {
    this.#entries.clear();
  }
}
