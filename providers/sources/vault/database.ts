/**
 * Dynamic database credentials: `GET MOUNT/creds/ROLE` on Vault's database secrets engine returns
 * a fresh login (`username`, `password`) under a lease Vault revokes when it ends.
 *
 * @module
 */

import type { ParsedRef, Resolved } from "../source.ts";
import { answerError, vaultRequest } from "./client.ts";
import { vaultError } from "./errors.ts";
import type { VaultSettings } from "./settings.ts";

/**
 * Asks Vault for a new login.
 *
 * @param s The settings.
 * @param ref The parsed `vault-db:` reference.
 * @param token The Vault token.
 * @param signal Aborted at the source timeout.
 * @returns `username` and `password`, and the lease.
 * @throws {HecateError} `secret_unresolved` (forbidden, not found, malformed).
 */
export async function readCreds(
  s: VaultSettings,
  ref: ParsedRef,
  token: string,
  signal: AbortSignal,
): Promise<Resolved> {
  const a = await vaultRequest(s.endpoint, "GET", `${ref.parts.mount}/creds/${ref.parts.role}`, {
    token,
    signal,
    ref: ref.raw,
  });
  if (a.status !== 200) {
    // Vault answers an unknown role with 400 "unknown role".
    if (a.status === 400) throw vaultError(ref.raw, "not found", "HTTP 400, no such role");
    throw answerError(ref.raw, a);
  }
  const data = a.body?.data as Record<string, unknown> | undefined;
  const leaseId = a.body?.lease_id, duration = a.body?.lease_duration;
  if (
    typeof data?.username !== "string" || typeof data.password !== "string" ||
    typeof leaseId !== "string" || !leaseId || typeof duration !== "number"
  ) throw vaultError(ref.raw, "malformed answer", "no username/password/lease");
  return {
    fields: { username: data.username, password: data.password },
    lease: {
      id: leaseId,
      durationSeconds: duration,
      renewable: a.body?.renewable === true,
      obtainedAt: Date.now(),
    },
  };
}
