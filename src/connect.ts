/**
 * From a profile to a live database connection: resolve secret references, let the profile's
 * authentication provider fill in credentials, load the engine's driver, open the SSH tunnel if
 * the profile has one, connect.
 *
 * @module
 */

import type { ConnectSettings, DbConnection } from "./db/driver.ts";
import { driverFor } from "./db/registry.ts";
import type { Profile } from "./profile.ts";
import { connectSettings } from "../providers/mod.ts";
import type { ThroughOptions } from "./tunnel/through.ts";
import { reportTransportWarnings } from "./transport_warnings.ts";

/** Options for {@link openDbConnection}: only used for profiles with an SSH tunnel. */
export type OpenDbConnectionOptions = ThroughOptions;

/** Where {@link openDbConnection} and {@link openEndpoint} send transport warnings. */
export interface WarningOptions {
  /**
   * Receives each transport-security warning (TLS off to another host, certificate verification
   * off) before the login is used. @default {stderr, `hecate: warning: ...`, once per process}
   */
  onWarning?: ((message: string) => void) | undefined;
}

/**
 * Opens a driver connection for a profile.
 *
 * @param profile The profile, with its secrets.
 * @param options Tunnel progress reporting, accept-new pinning, the warning sink.
 * @returns The live connection; for a tunnelled profile, closing it also closes the tunnel.
 * @throws {import("./errors.ts").HecateError} `secret_unresolved`, `invalid_profile`,
 * `connection_failed`, `auth_failed`, `host_key_unknown`, `host_key_changed`.
 */
export async function openDbConnection(
  profile: Profile,
  options: OpenDbConnectionOptions & WarningOptions = {},
): Promise<DbConnection> {
  const settings = await connectSettings(profile);
  const driver = await driverFor(profile.engine);
  reportTransportWarnings(profile, options.onWarning);
  if (!profile.ssh) return await driver.connect(settings);
  // ssh2 is loaded only by profiles that need it.
  const { connectThroughTunnel } = await import("./tunnel/through.ts");
  return await connectThroughTunnel(profile, settings, driver, options);
}

// ---------------------------------------------------------------------------------------------
// Endpoints for other programs (`hecate run`, `hecate env`): the same resolution as a driver
// connection, handed out as settings. Whatever must stay up while they are used (a tunnel) is
// opened here and closed by `close()`.

/**
 * Resolved connection settings for a profile, valid until {@link Endpoint.close}.
 *
 * @example
 * ```ts ignore
 * const endpoint = await vault.endpoint("billing");
 * try {
 *   console.log(endpoint.settings.host, endpoint.settings.port);
 * } finally {
 *   await endpoint.close();
 * }
 * ```
 */
export interface Endpoint {
  /** Host, port, database, user and password to give another program. */
  settings: ConnectSettings;
  /** Releases what the endpoint holds open; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Resolves a profile into settings another program can use (secret references resolved,
 * provider credentials filled in).
 *
 * @param profile The profile, with its secrets.
 * @returns The endpoint; close it when the program is done.
 * @throws {import("./errors.ts").HecateError} `secret_unresolved`, `invalid_profile`.
 */
export async function openEndpoint(
  profile: Profile,
  options: OpenDbConnectionOptions & WarningOptions = {},
): Promise<Endpoint> {
  const settings = await connectSettings(profile);
  // The other program will send the login: the same warnings as for our own connection.
  reportTransportWarnings(profile, options.onWarning);
  if (!profile.ssh) return { settings, close: () => Promise.resolve() };
  const { openProfileTunnel } = await import("./tunnel/through.ts");
  const tunnel = await openProfileTunnel(profile, settings, options);
  try {
    if (tunnel.learned.length && options.pinHostKeys) await options.pinHostKeys(tunnel.learned);
  } catch (e) {
    await tunnel.close();
    throw e;
  }
  // The other program connects to the tunnel's local end; TLS names stay the database's.
  return {
    settings: { ...settings, host: tunnel.host, port: tunnel.port },
    close: () => tunnel.close(),
  };
}
