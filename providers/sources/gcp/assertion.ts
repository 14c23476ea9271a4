/**
 * The RS256 JWT a service account signs to ask Google's token endpoint for an access token,
 * made with WebCrypto alone: the key file's PKCS#8 PEM imported, the header and claims signed
 * (RSASSA-PKCS1-v1_5, SHA-256). No JWT package: that kept about 110 KB of `jose` off the
 * `gcp-sm:` cron path (docs/PERFORMANCE.md, secret sources).
 *
 * @module
 */

import { toBase64Url, utf8 } from "../../../src/vault/encoding.ts";

/**
 * Imports a service account's private key.
 *
 * @param pem The key file's `private_key` (`-----BEGIN PRIVATE KEY-----`, PKCS#8).
 * @returns The signing key.
 * @throws {Error} For anything that is not a PKCS#8 RSA key (the caller reports it).
 */
export async function importServiceAccountKey(pem: string): Promise<CryptoKey> {
  const m = /^\s*-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----\s*$/.exec(
    pem,
  );
  if (!m) throw new Error("not a PKCS#8 PEM key");
  const der = Uint8Array.from(atob(m[1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  return await crypto.subtle.importKey(
    "pkcs8",
    der,
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

/**
 * Signs a JWT with RS256.
 *
 * @param key The key from {@link importServiceAccountKey}.
 * @param header The header's fields besides `alg` and `typ` (e.g. `kid`).
 * @param claims The claims.
 * @returns The compact JWT.
 */
export async function signRs256(
  key: CryptoKey,
  header: Record<string, string>,
  claims: Record<string, string | number>,
): Promise<string> {
  const part = (o: object) => toBase64Url(utf8(JSON.stringify(o)));
  const input = `${part({ alg: "RS256", typ: "JWT", ...header })}.${part(claims)}`;
  const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, utf8(input));
  return `${input}.${toBase64Url(new Uint8Array(signature))}`;
}
