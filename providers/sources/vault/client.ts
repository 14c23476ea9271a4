/**
 * A minimal HTTPS client for Vault's HTTP API: one request, JSON in and out, the token in the
 * `X-Vault-Token` header only (never in a URL), `X-Vault-Namespace` when set, TLS verified by
 * default. With a CA file the server must chain to that CA alone (the system roots are not
 * consulted), like a database profile's `--ca-file`; that is why it uses `node:https`, which
 * replaces the roots, where Deno's fetch could only add to them.
 *
 * @module
 */

import type { IncomingMessage } from "node:http";
import { HecateError } from "../../../src/errors.ts";
import { tokenRefused, vaultError } from "./errors.ts";
import { concatBytes } from "../../../src/vault/encoding.ts";

/** Where Vault is and how to reach it. */
export interface VaultEndpoint {
  /** `https://host:port` (as `VAULT_ADDR`). */
  readonly addr: string;
  /** Enterprise/OpenBao namespace, sent as `X-Vault-Namespace`. */
  readonly namespace?: string | undefined;
  /** `verify` (default), `insecure` (encrypt, no verification) or `disable` (an `http://` address). */
  readonly tlsMode: "verify" | "insecure" | "disable";
  /** PEM text of the only CA trusted for the server (pinning), when set. */
  readonly caPem?: string | undefined;
}

/** One answer: the status and the parsed JSON body (undefined for 204). */
export interface VaultAnswer {
  readonly status: number;
  readonly body: Record<string, unknown> | undefined;
}

const MAX_BODY = 1 << 20;

/**
 * Sends one request to Vault.
 *
 * @param ep The endpoint.
 * @param method HTTP method.
 * @param path The API path after `/v1/` (query string allowed, never a secret).
 * @param opts Token, JSON body, the abort signal, and the reference for error messages.
 * @returns Status and body; any status (the caller maps 4xx/5xx).
 * @throws {HecateError} `secret_unresolved` for unreachable, timed out, TLS failure, a body
 * that is not JSON.
 */
export async function vaultRequest(
  ep: VaultEndpoint,
  method: "GET" | "POST" | "PUT",
  path: string,
  opts: RequestOptions,
): Promise<VaultAnswer> {
  const url = new URL(`/v1/${path}`, ep.addr);
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers: Record<string, string> = { "X-Vault-Request": "true" };
  if (opts.token) headers["X-Vault-Token"] = opts.token;
  if (ep.namespace) headers["X-Vault-Namespace"] = ep.namespace;
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  // Deno's own TLS (fetch) is several times faster to start than the Node layer, but can only
  // add a CA to the trust roots: a pinned CA and `insecure` go through node:https instead.
  const viaNode = url.protocol === "https:" && (ep.caPem !== undefined || ep.tlsMode !== "verify");
  if (!viaNode) return await fetchRequest(url, method, headers, payload, opts);
  if (payload !== undefined) {
    headers["Content-Length"] = String(new TextEncoder().encode(payload).length);
  }
  return await nodeRequest(ep, url, method, headers, payload, opts);
}

/** What one request carries besides the method and path. */
export interface RequestOptions {
  token?: string | undefined;
  body?: unknown;
  signal: AbortSignal;
  ref: string;
}

function parseBody(ref: string, status: number, bytes: Uint8Array): VaultAnswer {
  const text = new TextDecoder().decode(bytes).trim();
  if (!text) return { status, body: undefined };
  try {
    const body = JSON.parse(text);
    if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error();
    return { status, body };
  } catch {
    throw vaultError(ref, "malformed answer", `HTTP ${status}, not a JSON object`);
  }
}

async function fetchRequest(
  url: URL,
  method: string,
  headers: Record<string, string>,
  payload: string | undefined,
  opts: RequestOptions,
): Promise<VaultAnswer> {
  if (opts.signal.aborted) throw vaultError(opts.ref, "timed out");
  let res: Response;
  try {
    // No redirect is followed: the token would go wherever the server points.
    res = await fetch(url, {
      method,
      headers,
      ...(payload !== undefined ? { body: payload } : {}),
      signal: opts.signal,
      redirect: "manual",
    });
  } catch (e) {
    if (opts.signal.aborted) throw vaultError(opts.ref, "timed out");
    throw transportError(opts.ref, e as Error & { code?: string });
  }
  try {
    const reader = res.body?.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_BODY) {
        await reader.cancel();
        throw vaultError(opts.ref, "malformed answer", "body over 1 MiB");
      }
      chunks.push(value);
    }
    return parseBody(opts.ref, res.status, concatBytes(...chunks));
  } catch (e) {
    if (e instanceof HecateError) throw e;
    if (opts.signal.aborted) throw vaultError(opts.ref, "timed out");
    throw vaultError(opts.ref, "unreachable", "connection reset");
  }
}

async function nodeRequest(
  ep: VaultEndpoint,
  url: URL,
  method: string,
  headers: Record<string, string>,
  payload: string | undefined,
  opts: RequestOptions,
): Promise<VaultAnswer> {
  // Deno's Node layer loads only for profiles that pin a CA or skip verification.
  const [{ request: httpsRequest }, { isIP }] = await Promise.all([
    import("node:https"),
    import("node:net"),
  ]);
  return await new Promise<VaultAnswer>((resolve, reject) => {
    if (opts.signal.aborted) return reject(vaultError(opts.ref, "timed out"));
    const options = {
      method,
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port || 443,
      path: url.pathname + url.search,
      headers,
      agent: false as const,
      rejectUnauthorized: ep.tlsMode === "verify",
      ...(ep.caPem ? { ca: ep.caPem } : {}),
      // SNI carries host names only; an IP address is checked against the certificate's SAN.
      ...(isIP(url.hostname.replace(/^\[|\]$/g, "")) ? {} : { servername: url.hostname }),
    };
    const onAnswer = (res: IncomingMessage) => {
      const chunks: Uint8Array[] = [];
      let size = 0;
      res.on("data", (c: Uint8Array) => {
        size += c.length;
        if (size > MAX_BODY) {
          res.destroy();
          reject(vaultError(opts.ref, "malformed answer", "body over 1 MiB"));
        } else chunks.push(c);
      });
      res.on("error", () => reject(vaultError(opts.ref, "unreachable", "connection reset")));
      res.on("end", () => {
        cleanup();
        try {
          resolve(parseBody(opts.ref, res.statusCode ?? 0, concatBytes(...chunks)));
        } catch (e) {
          reject(e);
        }
      });
    };
    let req: ReturnType<typeof httpsRequest>;
    try {
      req = httpsRequest(options, onAnswer);
    } catch {
      return reject(vaultError(opts.ref, "unreachable", "bad address"));
    }
    const onAbort = () => {
      req.destroy();
      reject(vaultError(opts.ref, "timed out"));
    };
    const cleanup = () => opts.signal.removeEventListener("abort", onAbort);
    opts.signal.addEventListener("abort", onAbort, { once: true });
    req.on("error", (e: Error & { code?: string }) => {
      cleanup();
      reject(transportError(opts.ref, e));
    });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

function transportError(ref: string, e: Error & { code?: string }): HecateError {
  const code = e.code ?? "";
  // fetch puts the TLS or socket failure in the cause; nothing of it is shown, only classified.
  const msg = `${String(e.message ?? "")} ${String((e.cause as Error | undefined)?.message ?? "")}`;
  if (
    /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|UnknownIssuer|certificate/i.test(code + " " + msg)
  ) return vaultError(ref, "TLS verification failed");
  if (!code && /refused/i.test(msg)) return vaultError(ref, "unreachable", "connection refused");
  return vaultError(ref, "unreachable", code || "connection failed");
}

/**
 * Maps a non-success answer to the error the user sees.
 *
 * @param ref The reference.
 * @param a The answer.
 * @returns The error (`forbidden`, `not found`, or the HTTP status).
 */
export function answerError(ref: string, a: VaultAnswer): HecateError {
  if (a.status === 403 || a.status === 401) return tokenRefused(ref, `HTTP ${a.status}`);
  if (a.status === 404) return vaultError(ref, "not found", "HTTP 404");
  return vaultError(ref, "unreachable", `HTTP ${a.status}`);
}
