/**
 * SQL Server errors: tedious's connection and request errors mapped to {@link HecateError}s with
 * one-line messages that never carry a password, a token or a parameter's text. Part of the SQL
 * Server driver (mssql.ts).
 *
 * @module
 */

import type { ConnectSettings } from "./driver.ts";
import { Decimal, JsonText } from "./value.ts";
import { HecateError } from "../errors.ts";

/** Reasons for socket failures, by Node error code. */
const NET_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  EAI_NONAME: "host not found",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ECONNRESET: "connection reset by the server",
  EPIPE: "connection closed by the server",
  CERT_HAS_EXPIRED: "TLS: server certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "TLS: server certificate is self-signed",
  SELF_SIGNED_CERT_IN_CHAIN: "TLS: self-signed certificate in chain",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "TLS: cannot verify the server certificate",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "TLS: unknown certificate issuer",
  ERR_TLS_CERT_ALTNAME_INVALID: "TLS: server certificate does not match the host name",
};

/**
 * One line without secrets: whitespace collapsed, secret and parameter texts masked.
 *
 * @param message The message.
 * @param secrets Texts to mask.
 * @returns The cleaned line.
 */
export function clean(message: string, secrets: readonly string[]): string {
  let out = message.replace(/\s+/g, " ").trim();
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join("***");
  return out;
}

/**
 * Texts that must never appear in a message: parameters' values, longest first.
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

/** Walks an error and its causes (including AggregateError members) for a Node error code. */
function causeCode(e: unknown, depth = 0): string | undefined {
  if (!e || typeof e !== "object" || depth > 5) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && !/^E(SOCKET|TIMEOUT|REQUEST|INSTLOOKUP)$/.test(code)) {
    return code;
  }
  const errors = (e as { errors?: unknown }).errors;
  if (Array.isArray(errors)) {
    for (const x of errors) {
      const c = causeCode(x, depth + 1);
      if (c) return c;
    }
  }
  return causeCode((e as { cause?: unknown }).cause, depth + 1);
}

/**
 * Maps a failure while connecting and logging in.
 *
 * @param e tedious's error.
 * @param s The settings (for the target and timeout).
 * @param secrets Texts to mask.
 * @param loginErrorNumber The server's error number from the login answer, if any.
 * @returns `auth_failed` for a refused login, else `connection_failed`.
 */
export function connectError(
  e: unknown,
  s: ConnectSettings,
  secrets: readonly string[],
  loginErrorNumber: number | undefined,
): HecateError {
  const where = `SQL Server at ${s.host ?? "localhost"}:${s.port ?? 1433}`;
  const code = (e as { code?: unknown } | null)?.code;
  const text = clean(e instanceof Error ? e.message : String(e), secrets);
  if (code === "ELOGIN") {
    const num = loginErrorNumber !== undefined ? ` (error ${loginErrorNumber})` : "";
    return new HecateError("auth_failed", `Login to ${where} refused: ${text}${num}`, { cause: e });
  }
  if (code === "ETIMEOUT") {
    return new HecateError(
      "connection_failed",
      `Cannot connect to ${where}: timed out after ${s.connectTimeoutMs} ms`,
      { cause: e },
    );
  }
  if (code === "EENCRYPT") {
    return new HecateError("connection_failed", `Cannot connect to ${where}: TLS: ${text}`, {
      cause: e,
      hint: s.tls.mode === "disable"
        ? "the server requires encryption: use --tls verify"
        : "the server does not offer encryption; only if that is acceptable, use --tls disable",
    });
  }
  const inner = causeCode(e);
  let reason: string;
  if (inner && NET_REASONS[inner]) reason = NET_REASONS[inner];
  else if (inner && /^(ERR_TLS_|ERR_SSL_|CERT_|ERR_OSSL)/.test(inner)) {
    reason = `TLS handshake failed (${inner})`;
  } else reason = text || "unknown error";
  return new HecateError("connection_failed", `Cannot connect to ${where}: ${reason}`, {
    cause: e,
  });
}

/**
 * Maps a failure while running a statement.
 *
 * @param e tedious's error.
 * @param secrets Texts to mask.
 * @returns `query_failed` for the server's or tedious's refusal, `connection_failed` when the
 * connection was lost.
 */
export function queryError(e: unknown, secrets: readonly string[]): HecateError {
  if (e instanceof HecateError) return e;
  const err = e as { code?: unknown; number?: unknown; message?: unknown };
  const text = clean(typeof err?.message === "string" ? err.message : String(e), secrets);
  if (typeof err?.number === "number") {
    return new HecateError("query_failed", `Query failed: ${text} (error ${err.number})`, {
      cause: e,
    });
  }
  const inner = causeCode(e);
  const lost = err?.code === "ESOCKET" || err?.code === "ECLOSE" ||
    (inner !== undefined && NET_REASONS[inner] !== undefined);
  if (!lost) {
    // Request errors without a server number: a parameter tedious cannot send (EPARAM), ...
    return new HecateError("query_failed", `Query failed: ${text}`, { cause: e });
  }
  const reason = inner && NET_REASONS[inner] ? NET_REASONS[inner] : text;
  return new HecateError("connection_failed", `Connection to SQL Server lost: ${reason}`, {
    cause: e,
  });
}
