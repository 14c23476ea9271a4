/**
 * From a profile to a live database connection: resolve secret references, let the profile's
 * authentication provider fill in credentials, load the engine's driver, open the SSH tunnel if
 * the profile has one, connect.
 *
 * @module
 */

import type { DbConnection } from "./db/driver.ts";
import { driverFor } from "./db/registry.ts";
import type { Profile } from "./profile.ts";
import { connectSettings } from "../providers/mod.ts";
import type { ThroughOptions } from "./tunnel/through.ts";

/** Options for {@link openDbConnection}: only used for profiles with an SSH tunnel. */
export type OpenDbConnectionOptions = ThroughOptions;

/**
 * Opens a driver connection for a profile.
 *
 * @param profile The profile, with its secrets.
 * @param options Tunnel progress reporting and accept-new pinning.
 * @returns The live connection; for a tunnelled profile, closing it also closes the tunnel.
 * @throws {import("./errors.ts").HecateError} `secret_unresolved`, `invalid_profile`,
 * `connection_failed`, `auth_failed`, `host_key_unknown`, `host_key_changed`.
 */
export async function openDbConnection(
  profile: Profile,
  options: OpenDbConnectionOptions = {},
): Promise<DbConnection> {
  const settings = await connectSettings(profile);
  const driver = await driverFor(profile.engine);
  if (!profile.ssh) return await driver.connect(settings);
  // ssh2 is loaded only by profiles that need it.
  const { connectThroughTunnel } = await import("./tunnel/through.ts");
  return await connectThroughTunnel(profile, settings, driver, options);
}
