/**
 * From a profile to a live database connection: resolve secret references, let the profile's
 * authentication provider fill in credentials, load the engine's driver, connect.
 *
 * @module
 */

import type { ConnectSettings, DbConnection } from "./db/driver.ts";
import { driverFor } from "./db/registry.ts";
import type { Profile } from "./profile.ts";
import { connectSettings } from "../providers/mod.ts";

/**
 * Opens a driver connection for a profile.
 *
 * @param profile The profile, with its secrets.
 * @returns The live connection.
 * @throws {import("./errors.ts").HecateError} `secret_unresolved`, `invalid_profile`,
 * `connection_failed`, `auth_failed`.
 */
export async function openDbConnection(profile: Profile): Promise<DbConnection> {
  const settings = await connectSettings(profile);
  const driver = await driverFor(profile.engine);
  return await driver.connect(settings);
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
export async function openEndpoint(profile: Profile): Promise<Endpoint> {
  const settings = await connectSettings(profile);
  return { settings, close: () => Promise.resolve() };
}
