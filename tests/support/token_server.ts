/**
 * A local OAuth2 token endpoint for tests (Deno.serve on 127.0.0.1): the client-credentials grant
 * (RFC 6749 4.4) with a client secret or a JWT client assertion (RFC 7523) whose signature is
 * checked with the test certificate's public key by npm `jose`. Issues opaque access tokens with
 * a short `expires_in`, and can be told to fail in the ways a real endpoint does.
 *
 * @module
 */

import { decodeProtectedHeader, importX509, jwtVerify } from "jose";
import { createHash, X509Certificate } from "node:crypto";

/** How the endpoint misbehaves, if at all. */
export type TokenServerFailure =
  | { kind: "status"; status: number; body?: string }
  | { kind: "bad-json" }
  | { kind: "hang" }
  | { kind: "redirect"; status: number; location: string };

/** Options for {@link startTokenServer}. */
export interface TokenServerOptions {
  clientId: string;
  /** The accepted client secret. */
  clientSecret?: string;
  /** The accepted client certificate (PEM) for assertions. */
  certPem?: string;
  /** `expires_in` of issued tokens, in seconds. @default {3600} */
  expiresIn?: number;
  /** Called with every token issued. */
  onIssue?: (token: string) => void;
}

/** A running endpoint. */
export interface TokenServer {
  /** `http://127.0.0.1:PORT/<tenant>/oauth2/v2.0/token` for any tenant. */
  url(tenant: string): string;
  /** Tokens issued, in order. */
  readonly issued: string[];
  /** Requests received (form fields), in order. */
  readonly requests: Record<string, string>[];
  /** Makes the endpoint fail (or succeed again with undefined). */
  fail(failure: TokenServerFailure | undefined): void;
  /** Changes `expires_in` for later tokens. */
  setExpiresIn(seconds: number): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function thumbprint(certPem: string, alg: "sha1" | "sha256"): string {
  const der = new X509Certificate(certPem).raw;
  return createHash(alg).update(der).digest("base64url");
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/**
 * Starts the endpoint on a free port.
 *
 * @param options The one client it knows, and token lifetime.
 * @returns The running endpoint.
 */
export function startTokenServer(options: TokenServerOptions): TokenServer {
  const issued: string[] = [];
  const requests: Record<string, string>[] = [];
  let failure: TokenServerFailure | undefined;
  let expiresIn = options.expiresIn ?? 3600;
  const hung: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const form = Object.fromEntries(new URLSearchParams(await req.text()));
    requests.push(form);
    if (failure?.kind === "hang") {
      await new Promise<void>((r) => hung.push(r));
      return json(503, { error: "temporarily_unavailable" });
    }
    if (failure?.kind === "status") {
      return new Response(failure.body ?? "", { status: failure.status });
    }
    if (failure?.kind === "redirect") {
      return new Response(null, {
        status: failure.status,
        headers: { location: failure.location },
      });
    }
    if (failure?.kind === "bad-json") return new Response("<html>oops</html>", { status: 200 });
    if (req.method !== "POST" || !/^\/[^/]+\/oauth2\/v2\.0\/token$/.test(url.pathname)) {
      return json(404, { error: "not_found" });
    }
    if (form.grant_type !== "client_credentials") {
      return json(400, { error: "unsupported_grant_type" });
    }
    if (form.client_id !== options.clientId || !form.scope) {
      return json(400, { error: "invalid_client" });
    }
    let ok = false;
    if (form.client_secret !== undefined) {
      ok = options.clientSecret !== undefined && form.client_secret === options.clientSecret;
    } else if (
      form.client_assertion_type === "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" &&
      form.client_assertion && options.certPem
    ) {
      try {
        const header = decodeProtectedHeader(form.client_assertion);
        const key = await importX509(options.certPem, "RS256");
        await jwtVerify(form.client_assertion, key, {
          algorithms: ["RS256"],
          issuer: options.clientId,
          subject: options.clientId,
          audience: url.href,
        });
        ok = header.x5t === thumbprint(options.certPem, "sha1") &&
          header["x5t#S256"] === thumbprint(options.certPem, "sha256");
      } catch {
        ok = false;
      }
    }
    if (!ok) return json(401, { error: "invalid_client", error_description: "AADSTS7000215" });
    const token = `test-access-token-${issued.length + 1}-${crypto.randomUUID()}`;
    issued.push(token);
    options.onIssue?.(token);
    return json(200, { token_type: "Bearer", expires_in: expiresIn, access_token: token });
  });
  const close = async () => {
    for (const r of hung.splice(0)) r();
    await server.shutdown();
  };
  return {
    url: (tenant) => `http://127.0.0.1:${server.addr.port}/${tenant}/oauth2/v2.0/token`,
    issued,
    requests,
    fail: (f) => void (failure = f),
    setExpiresIn: (s) => void (expiresIn = s),
    close,
    [Symbol.asyncDispose]: close,
  };
}
