/**
 * Hecate as a library: the same capabilities as the `hecate` command.
 *
 * @example Query through a profile
 * ```ts ignore
 * import { openVault } from "@hecate/hecate";
 *
 * const vault = await openVault({ password: await Deno.readTextFile("/run/secrets/hecate") });
 * await using db = await vault.connect("billing");
 * for await (const row of db.query("select id, total from invoices where due < $1", ["2026-12-01"])) {
 *   console.log(row.id, row.total);
 * }
 * ```
 *
 * @module
 */

export {
  type AddPkcs11SlotOptions,
  type AddResult,
  type ApiKeyPolicy,
  type ApiKeySummary,
  type ComplexityRule,
  Connection,
  ConnectionPool,
  type ConnectOptions,
  type CreateApiKeyOptions,
  initVault,
  type InitVaultOptions,
  openVault,
  type OpenVaultOptions,
  type Pkcs11UnlockOptions,
  type PolicyRow,
  type PoolQueryOptions,
  type ProfileChanges,
  type ProfileInput,
  type ProfileSummary,
  type ProfileVersion,
  QueryRows,
  type RefHealth,
  type RotateDueResult,
  type Row,
  type SecretSummary,
  type SetSecretOptions,
  type SlotSummary,
  type SourceInUse,
  type StatementAudit,
  type TotpSetup,
  Vault,
  VaultApiKeys,
  type VaultBackupOptions,
  VaultBackups,
  VaultKeys,
  type VaultPolicy,
  type VaultPoolOptions,
  VaultProfiles,
  VaultSecrets,
  VaultSlots,
  VaultTotp,
} from "./src/hecate.ts";
export { effectiveRules, type LifecycleDefaults } from "./src/hecate.ts";
export type { PoolOptions, PoolStats } from "./src/db/pool.ts";
export {
  type BreakerOptions,
  type BreakerSnapshot,
  type BreakerState,
  CircuitBreaker,
} from "./src/db/breaker.ts";
export { isTransient, type RetryOptions } from "./src/db/retry.ts";
export type { Endpoint } from "./src/connect.ts";
export {
  ENV_FIELDS,
  type EnvField,
  type EnvMapping,
  parseEnvMapping,
  parseSecretMapping,
  type SecretMapping,
} from "./src/run/env.ts";
export { type ErrorCode, ExitCode, type ExitCodeValue, HecateError } from "./src/errors.ts";
export type {
  Column,
  ConnectSettings,
  Engine,
  QueryOptions,
  ResultSet,
  TlsHandshakeDone,
  TlsSettings,
  ValueMode,
} from "./src/db/driver.ts";
export { Decimal, JsonText } from "./src/db/value.ts";
export type {
  SecretValue,
  SourceSettings,
  SshAuth,
  SshHop,
  SshProfile,
  TlsProfile,
} from "./src/profile.ts";
export {
  malformedRef,
  parseRef,
  registerSource,
  sourceError,
  type SourceStatus,
} from "./providers/sources/registry.ts";
export type {
  Lease,
  ParsedRef,
  Resolved,
  SecretSource,
  SourceContext,
  SourceHealth,
} from "./providers/sources/source.ts";
export type { HeldLease } from "./providers/sources/resolve.ts";
export type { OpenDbConnectionOptions } from "./src/connect.ts";
export type { CodeSource } from "./src/api/access.ts";
export type { DetailValue } from "./src/audit/log.ts";
export type { DatabaseStep } from "./src/tunnel/through.ts";
export type { TunnelStep } from "./src/tunnel/tunnel.ts";
export type { Actor, AuditEvent, AuditSink } from "./src/audit/log.ts";
export { AUDIT_EVENTS, type AuditEventName } from "./src/audit/events.ts";
export { VERSION } from "./src/version.ts";
export {
  type BackupEntry,
  type BackupFileOptions,
  type BackupSummary,
  type BundleManifest,
  listBackups,
  type Progress,
  restoreBackup,
  type RestoreBackupOptions,
  type RestoreResult,
  verifyBackup,
} from "./src/api/backup.ts";
export type { CreatedBackup } from "./src/backup/backup.ts";
export {
  applyImport,
  type ApplyImportOptions,
  type ImportNote,
  type ImportPlan,
  type PlannedTotp,
} from "./src/import/plan.ts";
export type { IncompleteMarker } from "./src/incomplete.ts";
export { planPyxImport } from "./src/import/pyx.ts";
export { planDotenvImport, planPgpassImport } from "./src/import/sources.ts";
