/**
 * The library core: create and open a vault, manage profiles, connect and query. The CLI is a thin
 * shell over these functions; code can call them directly.
 *
 * @module
 */

export { initVault, type InitVaultOptions } from "./api/init.ts";
export { openVault, type OpenVaultOptions } from "./api/open.ts";
export {
  type ConnectOptions,
  type ProfileChanges,
  type ProfileInput,
  type ProfileSummary,
  Vault,
  type VaultPoolOptions,
} from "./api/vault.ts";
export { Connection, type StatementAudit, tlsWarnings } from "./api/connection.ts";
export { ConnectionPool, type PoolQueryOptions } from "./api/pool.ts";
export { QueryRows, type Row } from "./api/rows.ts";
