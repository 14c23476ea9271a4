/**
 * AWS Signature Version 4 (header-signed requests and presigned query strings), synchronous, on
 * Hecate's own SHA-256 (src/sha256.ts). Written from AWS's SigV4 description, for the services
 * Hecate calls (Secrets Manager, STS, `rds-db` tokens); not for S3, whose path and payload rules
 * differ. Signing inline, rather than through a package and a chain of awaited WebCrypto calls,
 * keeps it off the cron path's load and event-loop time (docs/PERFORMANCE.md, secret sources).
 *
 * @module
 */

import type { AwsCredentials } from "./net.ts";
import { sha256 } from "../../../src/sha256.ts";
import { toHex, utf8 } from "../../../src/vault/encoding.ts";

/** What to sign. */
export interface SignInput {
  readonly method: string;
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly service: string;
  readonly region: string;
  /** Put the signature in the query string (a presigned URL) instead of the headers. */
  readonly signQuery?: boolean;
  /** The signing time as `YYYYMMDDTHHMMSSZ` (tests); now when absent. */
  readonly datetime?: string;
}

const ALGORITHM = "AWS4-HMAC-SHA256";

/** HMAC-SHA256 (RFC 2104, 64-byte blocks). */
function hmac(key: Uint8Array, message: string): Uint8Array {
  const k = new Uint8Array(64);
  k.set(key.length > 64 ? sha256(key) : key);
  const m = utf8(message);
  const inner = new Uint8Array(64 + m.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    inner[i] = k[i]! ^ 0x36;
    outer[i] = k[i]! ^ 0x5c;
  }
  inner.set(m, 64);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}

/** RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - . _ ~`, as SigV4 requires. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The canonical path: each segment of the (already encoded) path encoded again (non-S3). */
function canonicalPath(url: URL): string {
  const path = url.pathname.replace(/\/+/g, "/") || "/";
  return path.split("/").map(uriEncode).join("/");
}

/** The canonical query: encoded names and values, sorted by name, then value. */
function canonicalQuery(url: URL): string {
  return [...url.searchParams]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([k1, v1], [k2, v2]) => k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0)
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/**
 * Signs a request with SigV4.
 *
 * @param creds The credentials.
 * @param input What to sign.
 * @returns The signed request (Authorization header, or the signature in the URL).
 */
export function signRequest(creds: AwsCredentials, input: SignInput): Promise<Request> {
  const datetime = input.datetime ?? new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
  const scope = `${datetime.slice(0, 8)}/${input.region}/${input.service}/aws4_request`;
  const url = new URL(input.url);
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(input.headers)) {
    headers.set(k.toLowerCase(), v.trim().replace(/\s+/g, " "));
  }
  headers.delete("host");
  if (input.signQuery) {
    url.searchParams.set("X-Amz-Algorithm", ALGORITHM);
    url.searchParams.set("X-Amz-Credential", `${creds.accessKeyId}/${scope}`);
    url.searchParams.set("X-Amz-Date", datetime);
    if (creds.sessionToken) url.searchParams.set("X-Amz-Security-Token", creds.sessionToken);
  } else {
    headers.set("x-amz-date", datetime);
    if (creds.sessionToken) headers.set("x-amz-security-token", creds.sessionToken);
  }
  // The host as the request will carry it (with a port that is not the scheme's default).
  const entries: [string, string][] = [...headers, ["host", url.host]];
  const signed = new Map(entries.sort(([a], [b]) => a < b ? -1 : 1));
  const signedHeaders = [...signed.keys()].join(";");
  if (input.signQuery) url.searchParams.set("X-Amz-SignedHeaders", signedHeaders);
  const canonical = [
    input.method.toUpperCase(),
    canonicalPath(url),
    canonicalQuery(url),
    ...[...signed].map(([k, v]) => `${k}:${v}`),
    "",
    signedHeaders,
    toHex(sha256(utf8(input.body ?? ""))),
  ].join("\n");
  const toSign = [ALGORITHM, datetime, scope, toHex(sha256(utf8(canonical)))].join("\n");
  let key: Uint8Array = utf8(`AWS4${creds.secretAccessKey}`);
  for (const part of [datetime.slice(0, 8), input.region, input.service, "aws4_request"]) {
    key = hmac(key, part);
  }
  const signature = toHex(hmac(key, toSign));
  const out = new Headers([...headers]);
  if (input.signQuery) {
    url.searchParams.set("X-Amz-Signature", signature);
  } else {
    out.set(
      "authorization",
      `${ALGORITHM} Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, ` +
        `Signature=${signature}`,
    );
  }
  return Promise.resolve(
    new Request(url, {
      method: input.method,
      headers: out,
      ...(input.body !== undefined ? { body: input.body } : {}),
    }),
  );
}
