/**
 * Maps an engine to its driver, importing the driver module only when first used: the SQL Server
 * driver alone costs ~200 ms of start-up, which no other engine's user should pay.
 *
 * @module
 */

import type { Driver, Engine } from "./driver.ts";
import { HecateError } from "../errors.ts";

const loaders: Record<Engine, () => Promise<Driver>> = {
  sqlite: async () => (await import("./sqlite.ts")).sqliteDriver,
  postgres: async () => (await import("./postgres.ts")).postgresDriver,
  mysql: async () => (await import("./mysql.ts")).mysqlDriver,
  mssql: async () => (await import("./mssql.ts")).mssqlDriver,
};

function notYet(engine: string): HecateError {
  return new HecateError("connection_failed", `Engine "${engine}" is not available in this build`);
}

/**
 * Returns the driver for an engine, loading it on first use.
 *
 * @param engine The engine.
 * @returns Its driver.
 */
export function driverFor(engine: Engine): Promise<Driver> {
  const load = loaders[engine];
  if (!load) return Promise.reject(notYet(engine));
  return load();
}

/**
 * Starts loading an engine's driver without waiting for it, so that the module's parsing and
 * evaluation can overlap other work (e.g. the disk flush of an audit record). Loading a module
 * releases nothing; a failure is not reported here but by the {@link driverFor} call that needs
 * the driver.
 *
 * @param engine The engine.
 */
export function preloadDriver(engine: Engine): void {
  driverFor(engine).catch(() => {});
}
