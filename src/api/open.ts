/**
 * Opening (unlocking) a vault.
 *
 * @module
 */

import { type AuditSink, FileAuditLog } from "../audit/log.ts";
import { checkHome, resolveHome } from "../vault/home.ts";
import { VaultStore } from "../vault/store.ts";
import { UnlockedVault } from "../vault/vault.ts";
import { reasonOf } from "./util.ts";
import { Vault } from "./vault.ts";

/**
 * Options for {@link openVault}.
 *
 * @example
 * ```ts ignore
 * const vault = await openVault({ home: "/srv/hecate", password });
 * ```
 */
export interface OpenVaultOptions {
  /** Home directory. @default {$HECATE_HOME or ~/.hecate} */
  home?: string | undefined;
  /** The master password. */
  password: string;
  /** Audit sink. @default {the home's audit.jsonl} */
  audit?: AuditSink;
}

/**
 * Opens (unlocks) the vault with the master password. The unlock, success or failure, is audited.
 *
 * @param options Home, password, audit sink.
 * @returns The open vault.
 * @throws {HecateError} `vault_not_found`, `auth_failed`, `vault_integrity`,
 * `unsupported_version`, `insecure_home`.
 *
 * @example Open a vault and list its profiles
 * ```ts ignore
 * import { openVault } from "./hecate.ts";
 * const vault = await openVault({ password: Deno.env.get("PW")! });
 * console.log(vault.profiles().map((p) => p.name));
 * ```
 */
export async function openVault(options: OpenVaultOptions): Promise<Vault> {
  const home = resolveHome({ home: options.home });
  await checkHome(home);
  const store = new VaultStore(home);
  const audit = options.audit ?? new FileAuditLog(home);
  const bytes = await store.read();
  let state: UnlockedVault;
  try {
    state = await UnlockedVault.unlock(bytes, options.password);
  } catch (e) {
    await audit.append({
      event: "unlock",
      actor: { kind: "password" },
      outcome: "fail",
      reason: reasonOf(e),
    }).catch(() => {}); // The unlock error matters more than a failed failure record.
    throw e;
  }
  await audit.append({ event: "unlock", actor: { kind: "password" }, outcome: "ok" });
  return new Vault(home, store, state, audit);
}
