/**
 * Renewing and revoking leases (`sys/leases/renew`, `sys/leases/revoke`). The lease id is sent in
 * the body, never in a URL; messages name only a short hash of it.
 *
 * @module
 */

import { leaseTag } from "../lease_keeper.ts";
import type { Lease } from "../source.ts";
import { vaultRequest } from "./client.ts";
import { vaultError } from "./errors.ts";
import type { VaultSettings } from "./settings.ts";

/**
 * Extends a lease by its role's TTL (Vault caps it at the max TTL).
 *
 * @param s The settings.
 * @param lease The lease.
 * @param token The Vault token.
 * @param signal Aborted at the source timeout.
 * @returns The renewed lease.
 * @throws {HecateError} `secret_unresolved` with `lease expired` when Vault no longer knows it.
 */
export async function renewLease(
  s: VaultSettings,
  lease: Lease,
  token: string,
  signal: AbortSignal,
): Promise<Lease> {
  const tag = leaseTag(lease.id);
  const a = await vaultRequest(s.endpoint, "PUT", "sys/leases/renew", {
    token,
    body: { lease_id: lease.id },
    signal,
    ref: tag,
  });
  if (a.status === 400) throw vaultError(tag, "lease expired", "HTTP 400");
  if (a.status !== 200) {
    throw vaultError(tag, a.status === 403 ? "forbidden" : "unreachable", `HTTP ${a.status}`);
  }
  const duration = a.body?.lease_duration;
  if (typeof duration !== "number") throw vaultError(tag, "malformed answer", "no lease_duration");
  return {
    id: lease.id,
    durationSeconds: duration,
    renewable: a.body?.renewable === true && duration > 0,
    obtainedAt: Date.now(),
  };
}

/**
 * Ends a lease now; Vault drops the login.
 *
 * @param s The settings.
 * @param lease The lease.
 * @param token The Vault token.
 * @param signal Aborted at the source timeout.
 * @throws {HecateError} `secret_unresolved` when Vault refuses.
 */
export async function revokeLease(
  s: VaultSettings,
  lease: Lease,
  token: string,
  signal: AbortSignal,
): Promise<void> {
  const tag = leaseTag(lease.id);
  const a = await vaultRequest(s.endpoint, "PUT", "sys/leases/revoke", {
    token,
    body: { lease_id: lease.id },
    signal,
    ref: tag,
  });
  if (a.status !== 204 && a.status !== 200) {
    throw vaultError(tag, a.status === 403 ? "forbidden" : "unreachable", `HTTP ${a.status}`);
  }
}
