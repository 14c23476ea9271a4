/**
 * The one way the library writes the vault file: the next generation replaces the file (under the
 * vault lock, which the caller holds), its number is recorded in `generation.state.json` for the
 * rollback gate at unlock, and a `vault.write` record puts it in the audit trail, where
 * `audit verify` finds the highest generation ever written.
 *
 * @module
 */

import type { Actor, AuditSink } from "../audit/log.ts";
import { recordVaultWrite } from "../access/vault_generation.ts";
import type { VaultStore } from "../vault/store.ts";
import type { UnlockedVault } from "../vault/vault.ts";

/** The audit event that records a vault write (detail: `vault` id and `generation`). */
export const VAULT_WRITE_EVENT = "vault.write";

/**
 * Writes the vault's next generation and records it. Call holding the vault lock.
 *
 * @param store The vault store.
 * @param state The vault to write (marked saved afterwards).
 * @param audit Where the `vault.write` record goes; undefined when the caller records it itself
 * (after the chain's first entry, at init).
 * @param actor Who wrote it.
 * @returns The generation written.
 */
export async function saveVault(
  store: VaultStore,
  state: UnlockedVault,
  audit: AuditSink | undefined,
  actor: Actor,
): Promise<number> {
  // In parts: the header and seal lines, then the rest (no joined copy of a large file).
  const { parts, generation } = await state.serializeParts();
  await store.replace(parts, generation);
  state.markSaved(generation);
  await recordVaultWrite(store.home, state.id, generation);
  if (audit) await auditVaultWrite(audit, actor, state.id, generation);
  return generation;
}

/**
 * Appends the `vault.write` record of a write.
 *
 * @param audit The sink.
 * @param actor Who wrote.
 * @param vaultId The vault id.
 * @param generation The generation written.
 */
export async function auditVaultWrite(
  audit: AuditSink,
  actor: Actor,
  vaultId: string,
  generation: number,
): Promise<void> {
  await audit.append({
    event: VAULT_WRITE_EVENT,
    actor,
    outcome: "ok",
    detail: { vault: vaultId, generation },
  });
}
