/**
 * Creating a vault.
 *
 * @module
 */

import { type AuditEvent, type AuditSink, FileAuditLog, startChain } from "../audit/log.ts";
import { withChainKey } from "../audit/meta.ts";
import { HecateError } from "../errors.ts";
import { calibrateIterations, MIN_KDF_ITERATIONS } from "../kdf.ts";
import { ensureHome, resolveHome } from "../vault/home.ts";
import { VaultStore } from "../vault/store.ts";
import { UnlockedVault } from "../vault/vault.ts";
import { auditVaultWrite, saveVault } from "./vault_write.ts";

const INIT_EVENT: AuditEvent = { event: "init", actor: { kind: "password" }, outcome: "ok" };

/**
 * Options for {@link initVault}.
 *
 * @example
 * ```ts ignore
 * await initVault({ home: "/srv/hecate", password, kdfIterations: 600_000 });
 * ```
 */
export interface InitVaultOptions {
  /** Home directory. @default {$HECATE_HOME or ~/.hecate} */
  home?: string | undefined;
  /** The master password. */
  password: string;
  /** PBKDF2 iterations; at least 600,000. @default {calibrated to ~250 ms, at least 600,000} */
  kdfIterations?: number | undefined;
  /** Audit sink. @default {the home's audit.jsonl} */
  audit?: AuditSink;
}

/**
 * Creates a new vault in an empty home directory.
 *
 * @param options Home, password and KDF cost.
 * @returns The home directory and the iteration count used.
 * @throws {HecateError} `already_exists` if a vault is there, `usage` for a cost below the floor.
 *
 * @example
 * ```ts ignore
 * import { initVault } from "@hecate/hecate";
 * const { home } = await initVault({ home: "/srv/hecate", password: "a long master password" });
 * ```
 */
export async function initVault(
  options: InitVaultOptions,
): Promise<{ home: string; kdfIterations: number }> {
  const home = resolveHome({ home: options.home });
  await ensureHome(home);
  const store = new VaultStore(home);
  const iterations = options.kdfIterations ?? await calibrateIterations();
  if (!Number.isSafeInteger(iterations) || iterations < MIN_KDF_ITERATIONS) {
    throw new HecateError("usage", `KDF iterations must be at least ${MIN_KDF_ITERATIONS}`);
  }
  const vault = await UnlockedVault.create(options.password, { iterations });
  await store.withLock(async () => {
    if (await store.exists()) {
      throw new HecateError("already_exists", `A vault already exists at "${home}"`, {
        hint: "use it, or choose another --home",
      });
    }
    // The audit chain's first key lives only in the vault (sealed under the root key); the
    // chain starts with the init entry, so the state file begins at A(1), never A0.
    vault.meta = withChainKey(vault.meta, await startChain(home, new Date(), INIT_EVENT));
    await saveVault(store, vault, undefined, { kind: "password" });
  });
  // The home's trail has its init entry already; a custom sink gets its own.
  await options.audit?.append(INIT_EVENT);
  await auditVaultWrite(
    options.audit ?? new FileAuditLog(home),
    { kind: "password" },
    vault.id,
    vault.generation,
  );
  return { home, kdfIterations: iterations };
}
