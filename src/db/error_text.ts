/**
 * Text for driver errors, shared by every engine: one line, with passwords and parameter values
 * masked, and the reason for socket and TLS failures named by their Node error code (never by
 * parsing message text).
 *
 * @module
 */

import { Decimal, JsonText } from "./value.ts";

/** Reasons for socket and TLS failures, by Node error code. */
export const NET_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  EAI_NONAME: "host not found",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ECONNRESET: "connection reset by the server",
  EPIPE: "connection closed by the server",
  ECONNABORTED: "connection aborted",
  EADDRNOTAVAIL: "address not available",
  CERT_HAS_EXPIRED: "TLS: server certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "TLS: server certificate is self-signed",
  SELF_SIGNED_CERT_IN_CHAIN: "TLS: self-signed certificate in chain",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "TLS: cannot verify the server certificate",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "TLS: unknown certificate issuer",
  ERR_TLS_CERT_ALTNAME_INVALID: "TLS: server certificate does not match the host name",
};

/**
 * One line without secrets: whitespace collapsed, secret and parameter texts masked. Texts shorter
 * than three characters are left alone: masking them would mangle the message and hide little.
 *
 * @param message The message.
 * @param secrets Texts to mask, longest first.
 * @returns The cleaned line.
 */
export function clean(message: string, secrets: readonly string[]): string {
  let out = message.replace(/\s+/g, " ").trim();
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join("***");
  return out;
}

/**
 * Texts that must never appear in a message: every parameter's value, longest first so that a
 * parameter containing another is masked whole.
 *
 * @param params The statement's parameters.
 * @returns Their texts.
 */
export function paramSecrets(params: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const p of params) {
    if (p === null || p === undefined || p instanceof Uint8Array) continue;
    if (typeof p === "object" && !(p instanceof Decimal) && !(p instanceof JsonText)) continue;
    out.push(String(p));
  }
  return out.sort((a, b) => b.length - a.length);
}
