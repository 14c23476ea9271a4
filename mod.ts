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
  Connection,
  type ConnectOptions,
  initVault,
  type InitVaultOptions,
  openVault,
  type OpenVaultOptions,
  type ProfileChanges,
  type ProfileInput,
  type ProfileSummary,
  Vault,
} from "./src/hecate.ts";
export { type ErrorCode, ExitCode, type ExitCodeValue, HecateError } from "./src/errors.ts";
export type { Column, Engine, QueryOptions, ResultSet, ValueMode } from "./src/db/driver.ts";
export { Decimal, JsonText } from "./src/db/value.ts";
export type { SecretValue, SshAuth, SshHop, SshProfile, TlsProfile } from "./src/profile.ts";
export type { DatabaseStep } from "./src/tunnel/through.ts";
export type { TunnelStep } from "./src/tunnel/tunnel.ts";
export type { Actor, AuditEvent, AuditSink } from "./src/audit/log.ts";
export { VERSION } from "./src/version.ts";
