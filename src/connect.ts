/**
 * From a profile to a live database connection: resolve secret references, let the profile's
 * authentication provider fill in credentials, load the engine's driver, connect.
 *
 * @module
 */

import type { DbConnection } from "./db/driver.ts";
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
