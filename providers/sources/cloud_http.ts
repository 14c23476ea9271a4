/**
 * HTTP for the Azure and Google sources: endpoint overrides that must be `https:` (or `http:` on
 * loopback, for a test double or a local proxy), requests bounded by a timeout and the caller's
 * signal, bodies read with a size limit, and failures turned into exit-18 errors with a status.
 *
 * @module
 */

import { sourceError, type SourceStatus } from "./errors.ts";
import type { SourceHealth } from "./source.ts";
import { readLimited, TooLarge } from "./http_body.ts";

/** Reads an environment variable. */
export type Env = (name: string) => string | undefined;

/** Where a failure happened, for messages: the source's title and the reference or step. */
export interface Where {
  readonly title: string;
  readonly ref: string;
}

/**
 * An exit-18 error for a cloud step.
 *
 * @param w The source and reference or step.
 * @param status The failure class.
 * @param hint What the user can do.
 * @param detail A short non-secret addition (an HTTP status, a service's error code).
 * @returns The error to throw.
 */
export function cloudError(w: Where, status: SourceStatus, hint: string, detail?: string) {
  // Details may come from servers: one short line of printable text.
  // deno-lint-ignore no-control-regex
  const clean = detail?.replace(/[\x00-\x1f\x7f]+/g, " ").slice(0, 120);
  return sourceError(w.title, w.ref, status, hint, clean);
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/**
 * Parses an endpoint from configuration (an environment variable, a credentials file): `https:`,
 * or `http:` only on loopback, so a token or a secret never crosses a network in clear text.
 *
 * @param w The source and step, for messages.
 * @param name Where the value came from (e.g. `AZURE_AUTHORITY_HOST`).
 * @param value The URL text.
 * @returns The URL, without a trailing slash in its path.
 */
export function safeEndpoint(w: Where, name: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw cloudError(w, "failed", `set ${name} to an https:// URL`, `${name} is not a URL`);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK.test(url.hostname))) {
    throw cloudError(w, "failed", "use https:// (http:// only on loopback)", `${name} refused`);
  }
  url.pathname = url.pathname.replace(/\/+$/, "");
  return url;
}

/** A response read whole. */
export interface CloudResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

/**
 * Fetches and reads the body (at most `max` bytes), with a timeout and the caller's signal.
 *
 * @param w The source and step, for messages.
 * @param url The URL.
 * @param init Request options (no redirects are followed: a token must not be sent elsewhere).
 * @param signal The caller's signal.
 * @param timeoutMs This request's own limit.
 * @param max The largest body accepted.
 * @returns The status, headers and body.
 */
export async function cloudFetch(
  w: Where,
  url: URL | string,
  init: RequestInit,
  signal: AbortSignal | undefined,
  timeoutMs = 10_000,
  max = 1 << 20,
): Promise<CloudResponse> {
  const limit = AbortSignal.timeout(timeoutMs);
  const all = signal ? AbortSignal.any([signal, limit]) : limit;
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: all, redirect: "manual" });
  } catch (e) {
    if (all.aborted) throw cloudError(w, "timed_out", "check the endpoint and the network");
    throw cloudError(
      w,
      "unreachable",
      "check the endpoint and the network",
      e instanceof Error ? e.name : undefined,
    );
  }
  let body: string;
  try {
    // Counted as it arrives: a compressed answer cannot inflate past the limit in memory.
    body = new TextDecoder().decode(await readLimited(res, max));
  } catch (e) {
    if (e instanceof TooLarge) throw cloudError(w, "malformed", "the answer is too large");
    throw cloudError(w, all.aborted ? "timed_out" : "unreachable", "the answer was cut off");
  }
  return { status: res.status, headers: res.headers, body };
}

/**
 * Parses a JSON object answer.
 *
 * @param w The source and step, for messages.
 * @param body The body.
 * @returns The object.
 */
export function jsonObject(w: Where, body: string): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(body);
  } catch {
    throw cloudError(w, "malformed", "the endpoint did not answer JSON");
  }
  if (!j || typeof j !== "object" || Array.isArray(j)) {
    throw cloudError(w, "malformed", "the endpoint did not answer a JSON object");
  }
  return j as Record<string, unknown>;
}

/**
 * Turns a secret string into fields: a flat JSON object's scalar values, else one field `value`.
 *
 * @param secret The secret text.
 * @returns The fields.
 */
export function fieldsOf(secret: string): Record<string, string> {
  if (secret.trimStart().startsWith("{")) {
    try {
      const j = JSON.parse(secret);
      if (j && typeof j === "object" && !Array.isArray(j)) {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(j)) {
          if (typeof v === "string") out[k] = v;
          else if (typeof v === "number" || typeof v === "boolean") out[k] = String(v);
        }
        return out;
      }
    } catch {
      // A plain secret that happens to start with a brace.
    }
  }
  return { value: secret };
}

/**
 * Picks the fields a reference asks for: all, or the one `#FIELD`.
 *
 * @param w The source and reference, for messages.
 * @param all The secret's fields.
 * @param field The field asked for, if any.
 * @returns The fields to hand back.
 */
export function pickFields(
  w: Where,
  all: Record<string, string>,
  field: string | undefined,
): Record<string, string> {
  if (field === undefined) return all;
  const v = all[field];
  if (v === undefined) {
    throw cloudError(w, "field_missing", "the secret is not a JSON object with that field");
  }
  return { [field]: v };
}

/** A bearer token and when it stops working (ms since the epoch). */
export interface AccessToken {
  readonly token: string;
  readonly expiresAt: number;
  /** The chain step that gave it, for messages. */
  readonly origin: string;
}

/** Tokens are renewed this long before they expire, as the SDKs do. */
export const REFRESH_MARGIN_MS = 5 * 60_000;

/**
 * A per-process cache of tokens by key: parallel callers share one resolution, a failure is not
 * kept, a token is reused until {@link REFRESH_MARGIN_MS} before it expires.
 */
export class TokenCache {
  readonly #entries = new Map<string, Promise<AccessToken>>();

  /**
   * The cached token for a key, or a new one from `get`.
   *
   * @param key What the token depends on (the environment read, the resource).
   * @param get Runs the chain.
   * @returns The token.
   */
  async token(key: string, get: () => Promise<AccessToken>): Promise<AccessToken> {
    const hit = this.#entries.get(key);
    if (hit) {
      const t = await hit.catch(() => undefined);
      if (t && t.expiresAt - Date.now() > REFRESH_MARGIN_MS) return t;
      if (this.#entries.get(key) === hit) this.#entries.delete(key);
    }
    const p = get();
    this.#entries.set(key, p);
    p.catch(() => {
      if (this.#entries.get(key) === p) this.#entries.delete(key);
    });
    return await p;
  }

  /** Forgets every token. */
  clear(): void {
    this.#entries.clear();
  }
}

/**
 * The expiry of a token answer: `expires_in` seconds from now, or `expires_on` epoch seconds.
 *
 * @param j The answer.
 * @returns ms since the epoch, or NaN when neither is usable.
 */
export function expiryOf(j: Record<string, unknown>): number {
  const inS = Number(j.expires_in);
  if (j.expires_in !== undefined && Number.isFinite(inS) && inS > 0) return Date.now() + inS * 1000;
  const on = Number(j.expires_on);
  if (j.expires_on !== undefined && Number.isFinite(on) && on > 0) return on * 1000;
  return NaN;
}

/**
 * A source's health from one read of its secret: `readable` on HTTP 200, else the status or the
 * error's own detail (never a value: the answer's body is not looked at).
 *
 * @param probe Reads the secret once and returns the HTTP response.
 * @returns The health for `hecate server test` and `hecate sources --check`.
 */
export async function healthOfRead(
  probe: () => Promise<{ r: { status: number } }>,
): Promise<SourceHealth> {
  const started = performance.now();
  try {
    const { r } = await probe();
    return {
      ok: r.status === 200,
      detail: r.status === 200 ? "readable" : `HTTP ${r.status}`,
      latencyMs: performance.now() - started,
    };
  } catch (e) {
    const detail = e instanceof Error ? e.message.replace(/^.*?: "[^"]*": /, "") : "failed";
    return { ok: false, detail, latencyMs: performance.now() - started };
  }
}
