/**
 * Renewing and revoking leases (`sys/leases/renew`, `sys/leases/revoke`). The lease id is sent in
 * the body, never in a URL; messages name only a short hash of it.
 *
 * @module
 */

import { sha256 } from "../../../src/sha256.ts";
import { toHex, utf8 } from "../../../src/vault/encoding.ts";
import type { Lease } from "../source.ts";
import { vaultRequest } from "./client.ts";
import { vaultError } from "./errors.ts";
import type { VaultSettings } from "./settings.ts";

/**
 * A short, stable name for a lease in messages and the audit trail (a hash, not the id).
 *
 * @param id The lease id.
 * @returns `lease:` and 12 hex digits of its SHA-256.
 */
export function leaseTag(id: string): string {
  return `lease:${toHex(sha256(utf8(id))).slice(0, 12)}`;
}

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
