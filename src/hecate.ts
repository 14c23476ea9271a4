/**
 * The library core: create and open a vault, manage profiles, connect and query. The CLI is a thin
 * shell over these functions; code can call them directly.
 *
 * @module
 */

export { initVault, type InitVaultOptions } from "./api/init.ts";
export { openVault, type OpenVaultOptions, type Pkcs11UnlockOptions } from "./api/open.ts";
export { Vault } from "./api/vault.ts";
export type { RefHealth, SourceInUse } from "./api/sources.ts";
export {
  type AddResult,
  type ProfileChanges,
  type ProfileInput,
  type ProfileSummary,
  type ProfileVersion,
  type RotateDueResult,
  VaultProfiles,
} from "./api/profiles.ts";
export type { ComplexityRule } from "./lifecycle/complexity.ts";
export type { PolicyRow } from "./api/policy.ts";
export type { VaultPolicy } from "./policy/policy.ts";
export { type ApiKeySummary, type CreateApiKeyOptions, VaultApiKeys } from "./api/api_keys.ts";
export { type SecretSummary, type SetSecretOptions, VaultSecrets } from "./api/secrets.ts";
export { effectiveRules, type LifecycleDefaults } from "./lifecycle/secret_record.ts";
export type { ApiKeyPolicy } from "./vault/apikey.ts";
export { type TotpSetup, VaultTotp } from "./api/totp.ts";
export { VaultKeys } from "./api/keys.ts";
export { type AddPkcs11SlotOptions, type SlotSummary, VaultSlots } from "./api/slots.ts";
export { type VaultBackupOptions, VaultBackups } from "./api/backups.ts";
export { type ConnectOptions, type VaultPoolOptions } from "./api/connections.ts";
export { Connection, type StatementAudit, tlsWarnings } from "./api/connection.ts";
export { ConnectionPool, type PoolQueryOptions } from "./api/pool.ts";
export { QueryRows, type Row } from "./api/rows.ts";
