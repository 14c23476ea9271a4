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
import { type ConnectSettingsOptions, resolveConnection } from "../providers/mod.ts";
import type { HeldLease } from "../providers/sources/resolve.ts";
import type { ThroughOptions } from "./tunnel/through.ts";
import { reportTransportWarnings } from "./transport_warnings.ts";
import { log } from "./log.ts";

/** Options for {@link openDbConnection}: only used for profiles with an SSH tunnel. */
export type OpenDbConnectionOptions = ThroughOptions;

/** How a connect uses the profile's secret sources (internal: the library's layer sets it). */
export interface SourceUse {
  /** Audit hook, offline cache and environment for the profile's secret sources. */
  resolve?: ConnectSettingsOptions | undefined;
  /**
   * Receives the leases on dynamic credentials as soon as they are obtained (before the connect,
   * so a failed connect can still revoke them): the caller keeps them alive and revokes them.
   */
  onLeases?: ((leases: readonly HeldLease[]) => void) | undefined;
  /** Log in with a read-only intent where the protocol has one (a read-level API key). */
  readOnlyIntent?: boolean | undefined;
}

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
 * @param sources Audit, cache and lease hand-over for the profile's secret sources.
 * @returns The live connection; for a tunnelled profile, closing it also closes the tunnel.
 * @throws {import("./errors.ts").HecateError} `secret_unresolved`, `invalid_profile`,
 * `connection_failed`, `auth_failed`, `host_key_unknown`, `host_key_changed`.
 */
export async function openDbConnection(
  profile: Profile,
  options: OpenDbConnectionOptions & WarningOptions = {},
  sources: SourceUse = {},
): Promise<DbConnection> {
  const t0 = performance.now();
  log("debug", "connect", "resolving secrets", { engine: profile.engine });
  const resolved = await resolveConnection(profile, sources.resolve);
  const { secrets, leases } = resolved;
  const settings = sources.readOnlyIntent
    ? { ...resolved.settings, readOnlyIntent: true }
    : resolved.settings;
  const t1 = performance.now();
  // Names and addresses only: never a value of `settings` that can hold a secret.
  log("debug", "connect", "secrets resolved", {
    fields: Object.keys(secrets).length,
    leases: leases.length,
    ms: Math.round(t1 - t0),
  });
  if (leases.length) sources.onLeases?.(leases);
  const driver = await driverFor(profile.engine);
  reportTransportWarnings(withResolvedHost(profile, settings), options.onWarning);
  const where = {
    engine: profile.engine,
    host: typeof settings.host === "string" ? settings.host : undefined,
    port: typeof settings.port === "number" ? settings.port : undefined,
    database: typeof settings.database === "string" ? settings.database : undefined,
    tunnel: profile.ssh ? "ssh" : "none",
  };
  log("debug", "connect", "connecting", where);
  const onStep = options.onStep;
  const reported = onStep ? withTlsReport(settings, onStep) : settings;
  let conn: DbConnection;
  try {
    if (!profile.ssh) {
      const t0 = performance.now();
      conn = await driver.connect(reported);
      onStep?.({
        step: "database login",
        ms: performance.now() - t0,
        // SQLite has no host: its file stands for the address.
        label: settings.host === undefined
          ? settings.database ?? ""
          : `${settings.host}${settings.port ? `:${settings.port}` : ""}`,
      });
    } else {
      // ssh2 is loaded only by profiles that need it.
      const { connectThroughTunnel } = await import("./tunnel/through.ts");
      conn = await connectThroughTunnel(profile, reported, driver, { ...options, secrets });
    }
  } catch (e) {
    log("debug", "connect", "connect failed", {
      ...where,
      error: (e as { code?: unknown })?.code as string | undefined,
      ms: Math.round(performance.now() - t1),
    });
    throw e;
  }
  log("debug", "connect", "connected", { ...where, ms: Math.round(performance.now() - t1) });
  return conn;
}

/** The settings with a TLS handshake hook that reports the handshake as a step. */
function withTlsReport(
  settings: ConnectSettings,
  onStep: NonNullable<OpenDbConnectionOptions["onStep"]>,
): ConnectSettings {
  return {
    ...settings,
    tls: {
      ...settings.tls,
      onHandshake: (d) => onStep({ step: "tls", ms: d.ms, label: d.serverName, detail: d.mode }),
    },
  };
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
  /**
   * Leases on dynamic credentials behind `settings`: keep them alive while the program runs and
   * revoke them after (`close()` does not).
   */
  leases: readonly HeldLease[];
  /** Releases what the endpoint holds open; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Resolves a profile into settings another program can use (secret references resolved,
 * provider credentials filled in).
 *
 * @param profile The profile, with its secrets.
 * @param options Tunnel progress reporting, accept-new pinning, the warning sink.
 * @param sources Audit, cache and lease hand-over for the profile's secret sources.
 * @returns The endpoint; close it when the program is done.
 * @throws {import("./errors.ts").HecateError} `secret_unresolved`, `invalid_profile`.
 */
export async function openEndpoint(
  profile: Profile,
  options: OpenDbConnectionOptions & WarningOptions = {},
  sources: SourceUse = {},
): Promise<Endpoint> {
  const { settings, secrets, leases } = await resolveConnection(profile, sources.resolve);
  if (leases.length) sources.onLeases?.(leases);
  // The other program will send the login: the same warnings as for our own connection.
  reportTransportWarnings(withResolvedHost(profile, settings), options.onWarning);
  if (!profile.ssh) return { settings, leases, close: () => Promise.resolve() };
  const { openProfileTunnel } = await import("./tunnel/through.ts");
  const tunnel = await openProfileTunnel(profile, settings, { ...options, secrets });
  try {
    if (tunnel.learned.length && options.pinHostKeys) await options.pinHostKeys(tunnel.learned);
  } catch (e) {
    await tunnel.close();
    throw e;
  }
  // The other program connects to the tunnel's local end; TLS names stay the database's.
  return {
    settings: { ...settings, host: tunnel.host, port: tunnel.port },
    leases,
    close: () => tunnel.close(),
  };
}

/** The profile as the warnings judge it: with the host a whole-connection secret supplied. */
function withResolvedHost(profile: Profile, settings: ConnectSettings): Profile {
  return profile.host === undefined && settings.host !== undefined
    ? { ...profile, host: settings.host }
    : profile;
}
