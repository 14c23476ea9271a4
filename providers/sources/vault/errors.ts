/**
 * The one shape of a Vault source failure: the framework's `secret_unresolved` (exit 18, see
 * ../errors.ts) naming the reference and its status, with a Vault-specific detail and hint line.
 * Never a token, a secret id or a value: callers pass the reference (a location) and a status.
 *
 * @module
 */

import type { HecateError } from "../../../src/errors.ts";
import { sourceError, type SourceStatus } from "../errors.ts";

/** Why a Vault call failed, as shown to the user. */
export type VaultStatus =
  | "unreachable"
  | "timed out"
  | "forbidden"
  | "not found"
  | "field missing"
  | "lease expired"
  | "malformed answer"
  | "TLS verification failed"
  | "plain HTTP refused"
  | "CA file unreadable"
  | "login failed"
  | "secret id file readable by others"
  | "no token";

const MAP: Record<VaultStatus, [SourceStatus, string]> = {
  "unreachable": [
    "unreachable",
    "check VAULT_ADDR (or --vault-addr) and that Vault answers: vault status",
  ],
  "timed out": [
    "timed_out",
    "Vault did not answer in time; check the server or raise --source-timeout",
  ],
  "forbidden": [
    "forbidden",
    "the Vault token is unknown, expired or lacks a policy for this path: vault login, then vault token capabilities PATH",
  ],
  "not found": [
    "not_found",
    "no secret at this path (check the mount and path: vault kv get MOUNT/PATH)",
  ],
  "field missing": [
    "field_missing",
    "the secret has no such field (vault kv get MOUNT/PATH lists them)",
  ],
  "lease expired": [
    "lease_expired",
    "the dynamic credentials' lease ended; connect again for new ones",
  ],
  "malformed answer": [
    "malformed",
    "the server's answer is not Vault's JSON; check VAULT_ADDR points at Vault",
  ],
  "TLS verification failed": [
    "unreachable",
    "the Vault certificate does not chain to the trusted CA: set VAULT_CACERT or --vault-ca-file",
  ],
  "plain HTTP refused": [
    "unreachable",
    "use https:// or, for a local dev server only, --vault-tls disable",
  ],
  "CA file unreadable": ["unreachable", "check VAULT_CACERT or --vault-ca-file"],
  "login failed": [
    "forbidden",
    "Vault refused the login: check the role, the secret id or the JWT",
  ],
  "secret id file readable by others": ["forbidden", "chmod 600 the --vault-secret-id-file"],
  "no token": [
    "forbidden",
    "set VAULT_TOKEN, run vault login (writes ~/.vault-token) or configure --vault-auth",
  ],
};

/** Errors made from a 403 on an API call with a token (a fresh login may cure them). */
const refusedTokens = new WeakSet<HecateError>();

/**
 * Builds the error for a failed resolution.
 *
 * @param ref The reference (or `vault` for a source-wide failure such as a login).
 * @param status What went wrong.
 * @param detail Extra text without secrets (e.g. `HTTP 403`).
 * @returns The error to throw.
 */
export function vaultError(ref: string, status: VaultStatus, detail?: string): HecateError {
  const [framework, hint] = MAP[status];
  // The framework names the status; a Vault-specific word goes in the detail.
  const same = framework.replace("_", " ") === status || status === "malformed answer";
  const text = same ? detail : `${status}${detail ? `, ${detail}` : ""}`;
  return sourceError("HashiCorp Vault", ref, framework, hint, text);
}

/**
 * The error for a 403 with a token: marked so that a login token can be replaced once.
 *
 * @param ref The reference.
 * @param detail E.g. `HTTP 403`.
 * @returns The error.
 */
export function tokenRefused(ref: string, detail: string): HecateError {
  const e = vaultError(ref, "forbidden", detail);
  refusedTokens.add(e);
  return e;
}

/**
 * Whether Vault refused the token on an API call (not a login failure).
 *
 * @param e The error.
 * @returns True for an error made by {@link tokenRefused}.
 */
export function isTokenRefused(e: unknown): boolean {
  return e !== null && typeof e === "object" && refusedTokens.has(e as HecateError);
}
