/**
 * A certificate-signed client assertion for the OAuth2 client-credentials grant (RFC 7523, as
 * Microsoft Entra ID expects it): a JWT signed RS256 with the application's private key, whose
 * header names the certificate by its SHA-1 (`x5t`) and SHA-256 (`x5t#S256`) thumbprints. Signing
 * is done by npm `jose`, loaded only when this method is used.
 *
 * @module
 */

import { createHash, createPrivateKey, randomUUID, X509Certificate } from "node:crypto";
import { HecateError } from "../../src/errors.ts";

/** Lifetime of an assertion: it is used at once, so a short one limits replay. */
const ASSERTION_LIFETIME_S = 300;

/** What {@link clientAssertion} needs. */
export interface AssertionInput {
  /** The application (client) id: the assertion's `iss` and `sub`. */
  clientId: string;
  /** The token endpoint URL: the assertion's `aud`. */
  audience: string;
  /** The certificate (PEM). */
  certPem: string;
  /** The private key (PEM, PKCS#8 or PKCS#1, possibly encrypted). */
  keyPem: string;
  /** The key's passphrase, if it is encrypted. */
  passphrase?: string | undefined;
  /** Seconds since the epoch. @default {now} */
  now?: number;
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Builds and signs the client assertion.
 *
 * @param input Client id, audience, certificate and key.
 * @returns The compact JWS.
 * @throws {HecateError} `invalid_profile` when the certificate or key cannot be used (the message
 * names the problem, never key material or the passphrase).
 */
export async function clientAssertion(input: AssertionInput): Promise<string> {
  let der: Uint8Array;
  try {
    der = new Uint8Array(new X509Certificate(input.certPem).raw);
  } catch (e) {
    throw new HecateError(
      "invalid_profile",
      "The certificate file holds no usable PEM certificate",
      {
        cause: e,
      },
    );
  }
  let pkcs8: string;
  try {
    const key = createPrivateKey({
      key: input.keyPem,
      format: "pem",
      ...(input.passphrase ? { passphrase: input.passphrase } : {}),
    });
    if (key.asymmetricKeyType !== "rsa") throw new Error("not an RSA key");
    pkcs8 = key.export({ type: "pkcs8", format: "pem" }) as string;
  } catch (e) {
    const encrypted = /ENCRYPTED/.test(input.keyPem);
    throw new HecateError(
      "invalid_profile",
      encrypted
        ? "Cannot decrypt the private key file: wrong or missing key passphrase"
        : "The key file holds no usable RSA private key (PEM)",
      { cause: e },
    );
  }
  const { SignJWT, importPKCS8 } = await import("jose");
  const key = await importPKCS8(pkcs8, "RS256");
  const now = input.now ?? Math.floor(Date.now() / 1000);
  return await new SignJWT({})
    .setProtectedHeader({
      alg: "RS256",
      typ: "JWT",
      x5t: base64url(createHash("sha1").update(der).digest()),
      "x5t#S256": base64url(createHash("sha256").update(der).digest()),
    })
    .setIssuer(input.clientId)
    .setSubject(input.clientId)
    .setAudience(input.audience)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ASSERTION_LIFETIME_S)
    .sign(key);
}
