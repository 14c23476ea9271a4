/**
 * SQL Server errors: tedious's connection and request errors mapped to {@link HecateError}s with
 * one-line messages that never carry a password, a token or a parameter's text. Part of the SQL
 * Server driver (mssql.ts).
 *
 * @module
 */

import type { ConnectSettings } from "./driver.ts";
import { HecateError } from "../errors.ts";
import { clean, NET_REASONS } from "./error_text.ts";

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
