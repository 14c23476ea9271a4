/**
 * Opening a vault with a teammate's age identity (`hecate --identity FILE`): through the age slot
 * made for that identity's recipient, under the same lockout, rollback gate, vault second factor
 * and audit as the master password. What such an opening may do is in docs/SECURITY.md
 * ("Age slots"); the refusals are in VaultCore.requireMasterPassword.
 *
 * @module
 */

import { recordApiKeyUse } from "../access/apikey_state.ts";
import type { Lockout } from "../access/lockout.ts";
import { totpConfigOf } from "../access/totp.ts";
import { readGenerationGate } from "../access/vault_generation.ts";
import type { Actor, AuditSink } from "../audit/log.ts";
import { parseAgeIdentities } from "../vault/age_slot.ts";
import { toBase64Url } from "../vault/encoding.ts";
import type { VaultStore } from "../vault/store.ts";
import { UnlockedVault } from "../vault/vault.ts";
import {
  type AccessContext,
  type CodeSource,
  failureOf,
  guarded,
  requireSecondFactor,
} from "./access.ts";
import { VaultCore } from "./_core.ts";
import { readForUnlock, refuseRolledBack, refuseUnreadable } from "./open.ts";
import { Vault } from "./vault.ts";

/** What opening needs besides the identity. */
export interface IdentityOpenContext {
  home: string;
  store: VaultStore;
  audit: AuditSink;
  lockout: Lockout;
  now: () => Date;
  code: CodeSource;
  /** Read only what a listing needs (see openVaultForListing in ./open.ts). */
  listing?: boolean;
}

/**
 * Opens the vault with the identities of an age identity file. Lockout counts failures per
 * recipient (`age:<recipient>`); a file that holds no valid identity is refused before any
 * attempt (usage) and audited.
 *
 * @param c Home, store, audit, lockout, clock, code source.
 * @param identityText The identity file's text.
 * @returns The open vault and its state.
 * @throws {HecateError} `usage` (no identity in the text), `auth_failed` (no slot for it, or the
 * slot does not open), `locked_out`, `totp_failed`, `vault_integrity`, `vault_rolled_back`.
 */
export async function openWithIdentity(
  c: IdentityOpenContext,
  identityText: string,
): Promise<{ vault: Vault; state: UnlockedVault }> {
  const anonymous: Actor = { kind: "age" };
  const identities = await refuseUnreadable(
    c.audit,
    anonymous,
    () => parseAgeIdentities(identityText),
  );
  const subject = `age:${identities[0]!.recipient}`;
  const gate = await readGenerationGate(c.home); // before the file, as on the password path
  const bytes = await readForUnlock(c.store, c.listing ?? false);
  const { vault: state, slot } = await guarded(
    { actor: anonymous, subject, lockout: c.lockout, audit: c.audit },
    "unlock",
    () => UnlockedVault.unlockWithAge(bytes, identities),
    failureOf("auth_failed"),
  );
  const id = toBase64Url(slot.id);
  const label = state.slotInfo().find((s) => s.id === id)?.label;
  const actor: Actor = { kind: "age", id, ...(label ? { name: label } : {}) };
  await refuseRolledBack(gate, c.audit, actor, state);
  const { listing: _listing, ...access } = c;
  const ctx: AccessContext = { actor, subject, ...access };
  const core = new VaultCore(c.home, c.store, state, c.audit, ctx);
  const totp = totpConfigOf(state.meta.totp);
  if (totp) {
    // The vault's second factor binds every opening; recovery codes stay the owner's.
    await requireSecondFactor(ctx, totp, "vault", "the vault", "unlock", false);
    core.passed.add("vault");
  }
  await c.lockout.succeeded(subject);
  await c.audit.append({ event: "unlock", actor, outcome: "ok" });
  await recordApiKeyUse(c.home, id, c.now()).catch(() => {}); // informational, as for API keys
  return { vault: new Vault(core), state };
}
