/**
 * The one shape of a Vault source failure: `secret_unresolved` (exit 18) naming the reference and
 * Vault's status, with a hint line. Never a token, a secret id or a value: callers pass the
 * reference (a location) and a status word.
 *
 * @module
 */

import { HecateError } from "../../../src/errors.ts";

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
  | "login failed"
  | "no token";

const HINTS: Record<VaultStatus, string> = {
  "unreachable": "check VAULT_ADDR (or --vault-addr) and that Vault answers: vault status",
  "timed out": "Vault did not answer in time; check the server or raise the source timeout",
  "forbidden":
    "the Vault token is unknown, expired or lacks a policy for this path: vault login, then vault token capabilities PATH",
  "not found": "no secret at this path (check the mount and path: vault kv get MOUNT/PATH)",
  "field missing": "the secret has no such field (vault kv get MOUNT/PATH lists them)",
  "lease expired": "the dynamic credentials' lease ended; connect again for new ones",
  "malformed answer": "the server's answer is not Vault's JSON; check VAULT_ADDR points at Vault",
  "TLS verification failed":
    "the Vault certificate does not chain to the trusted CA: set VAULT_CACERT or --vault-ca-file",
  "login failed": "Vault refused the login: check the role, the secret id or the JWT",
  "no token": "set VAULT_TOKEN, run vault login (writes ~/.vault-token) or configure --vault-auth",
};

/**
 * Builds the error for a failed resolution.
 *
 * @param ref The reference (or `vault` for a source-wide failure such as a login).
 * @param status What went wrong.
 * @param detail Extra text without secrets (e.g. `HTTP 403`).
 * @returns The error to throw.
 */
export function vaultError(ref: string, status: VaultStatus, detail?: string): HecateError {
  const what = detail ? `${status} (${detail})` : status;
  return new HecateError("secret_unresolved", `Vault source "${ref}": ${what}`, {
    hint: HINTS[status],
  });
}
