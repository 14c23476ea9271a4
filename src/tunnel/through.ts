/**
 * Connecting a driver through an SSH tunnel: build the hops from the profile, open the tunnel,
 * point the driver at 127.0.0.1:<ephemeral>, and tie the tunnel's life to the connection's.
 * Loaded only for profiles with `ssh` (ssh2 costs ~60 ms of start-up).
 *
 * @module
 */

import type {
  ConnectSettings,
  DbConnection,
  Driver,
  QueryOptions,
  ResultSet,
} from "../db/driver.ts";
import { HecateError } from "../errors.ts";
import type { Profile } from "../profile.ts";
import { isIP } from "node:net";
import { resolveSecretValue } from "../../providers/sources/resolve.ts";
import {
  type LearnedHostKey,
  openTunnel,
  type Tunnel,
  type TunnelHop,
  type TunnelStep,
} from "./tunnel.ts";

/** Options for {@link connectThroughTunnel}. */
export interface ThroughOptions {
  /** Called as each tunnel step completes, then once for the database login. */
  onStep?: ((step: TunnelStep | DatabaseStep) => void) | undefined;
  /** Stores host keys accepted under accept-new; if it throws, the connection is abandoned. */
  pinHostKeys?: ((learned: readonly LearnedHostKey[]) => Promise<void>) | undefined;
  /** The profile's secrets already resolved (with audit and failover); else resolved here. */
  secrets?: Readonly<Record<string, string>> | undefined;
}

/**
 * The database's own steps of a connect: the TLS handshake (PostgreSQL and MySQL, when TLS is
 * on) and the login (every engine; for a tunnelled profile the driver's login through it).
 */
export interface DatabaseStep {
  /** `tls` when the handshake completed, `database login` when the login did. */
  step: "tls" | "database login";
  /** Milliseconds the step took (for the login: the whole driver connect, TLS included). */
  ms: number;
  /** For `tls` the name the certificate was checked against; else `host:port` of the database. */
  label: string;
  /** For `tls` the mode: `verify` (certificate and name checked) or `insecure`. */
  detail?: string;
}

/** The known_hosts files to read: the profile's, else $HECATE_KNOWN_HOSTS, else OpenSSH's. */
function knownHostsFiles(profile: Profile): string[] {
  if (profile.ssh?.knownHostsFile) return [profile.ssh.knownHostsFile];
  const env = Deno.env.get("HECATE_KNOWN_HOSTS");
  if (env) return [env];
  const home = Deno.env.get("HOME");
  return [...(home ? [`${home}/.ssh/known_hosts`] : []), "/etc/ssh/ssh_known_hosts"];
}

async function hopsOf(
  profile: Profile,
  resolved?: Readonly<Record<string, string>>,
): Promise<TunnelHop[]> {
  const out: TunnelHop[] = [];
  for (const [i, h] of profile.ssh!.hops.entries()) {
    const secret = async (field: string) => {
      const key = `ssh.${i}.${field}`;
      if (resolved) return resolved[key];
      const s = profile.secrets[key];
      return s === undefined ? undefined : await resolveSecretValue(s);
    };
    out.push({
      host: h.host,
      port: h.port ?? 22,
      user: h.user,
      auth: h.auth,
      keyFile: h.keyFile,
      hostKey: h.hostKey,
      password: h.auth === "password" ? await secret("password") : undefined,
      passphrase: h.auth === "key" ? await secret("passphrase") : undefined,
    });
  }
  return out;
}

/** Wraps a driver connection so that closing it closes the tunnel, and a dead tunnel is named. */
class TunnelledConnection implements DbConnection {
  readonly #inner: DbConnection;
  readonly #tunnel: Tunnel;
  copyCsv?: NonNullable<DbConnection["copyCsv"]>;
  copyTsv?: NonNullable<DbConnection["copyTsv"]>;

  constructor(inner: DbConnection, tunnel: Tunnel) {
    this.#inner = inner;
    this.#tunnel = tunnel;
    if (inner.copyCsv) {
      this.copyCsv = async (sql, sink) => {
        try {
          return await inner.copyCsv!(sql, sink);
        } catch (e) {
          throw this.#map(e);
        }
      };
    }
    if (inner.copyTsv) {
      this.copyTsv = async (sql, sink) => {
        try {
          return await inner.copyTsv!(sql, sink);
        } catch (e) {
          throw this.#map(e);
        }
      };
    }
  }

  /** A failure caused by the tunnel dying says so, instead of a bare "connection lost". */
  #map(e: unknown): unknown {
    const dead = this.#tunnel.deadReason();
    if (!dead) return e;
    return new HecateError("connection_failed", `SSH tunnel lost: ${dead}`, { cause: e });
  }

  async *query(
    sql: string,
    params: readonly unknown[],
    options?: QueryOptions,
  ): AsyncGenerator<ResultSet> {
    const map = (e: unknown) => this.#map(e);
    try {
      for await (const set of this.#inner.query(sql, params, options)) {
        const inner = set.rows;
        yield {
          ...set,
          rows: (async function* () {
            try {
              yield* inner;
            } catch (e) {
              throw map(e);
            }
          })(),
        };
      }
    } catch (e) {
      throw map(e);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.#inner.ping();
    } catch (e) {
      throw this.#map(e);
    }
  }

  async close(): Promise<void> {
    try {
      await this.#inner.close();
    } finally {
      await this.#tunnel.close();
    }
  }
}

/**
 * Opens the profile's SSH tunnel, then the driver connection through it.
 *
 * @param profile The profile (with `ssh`).
 * @param settings Driver settings for the database as the last hop sees it.
 * @param driver The engine's driver.
 * @param options Progress reporting and accept-new pinning.
 * @returns A connection whose close() also closes the tunnel.
 */
/**
 * Opens the profile's SSH tunnel to its database host and port (hops, host-key checks, keepalives
 * as the profile says).
 *
 * @param profile A profile with `ssh`.
 * @param settings Its resolved connection settings (the database address is the forward target).
 * @param options Step reporting.
 * @returns The open tunnel; close it when done.
 */
export async function openProfileTunnel(
  profile: Profile,
  settings: ConnectSettings,
  options: ThroughOptions = {},
): Promise<Tunnel> {
  const ssh = profile.ssh!;
  const target = { host: settings.host ?? "localhost", port: settings.port ?? 0 };
  const agent = Deno.env.get("SSH_AUTH_SOCK");
  return await openTunnel({
    profile: profile.name,
    hops: await hopsOf(profile, options.secrets),
    target,
    knownHostsFiles: knownHostsFiles(profile),
    acceptNew: ssh.acceptNew ?? false,
    readyTimeoutMs: ssh.readyTimeoutMs ?? settings.connectTimeoutMs,
    ...(ssh.keepaliveMs ? { keepaliveMs: ssh.keepaliveMs } : {}),
    ...(ssh.keepaliveCountMax ? { keepaliveCountMax: ssh.keepaliveCountMax } : {}),
    ...(agent ? { agentSocket: agent } : {}),
    ...(options.onStep ? { onStep: options.onStep } : {}),
  });
}

export async function connectThroughTunnel(
  profile: Profile,
  settings: ConnectSettings,
  driver: Driver,
  options: ThroughOptions = {},
): Promise<DbConnection> {
  const target = { host: settings.host ?? "localhost", port: settings.port ?? 0 };
  const tunnel = await openProfileTunnel(profile, settings, options);
  try {
    if (tunnel.learned.length && options.pinHostKeys) await options.pinHostKeys(tunnel.learned);
    const t0 = performance.now();
    let conn: DbConnection;
    try {
      // The driver sees a local TCP server; TLS (if any) still runs end to end through it.
      conn = await driver.connect({
        ...settings,
        host: tunnel.host,
        port: tunnel.port,
        tls: isIP(target.host) ? settings.tls : { ...settings.tls, serverName: target.host },
      });
    } catch (e) {
      const why = tunnel.forwardError() ?? tunnel.deadReason();
      if (why) throw new HecateError("connection_failed", why, { cause: e });
      throw e;
    }
    options.onStep?.({
      step: "database login",
      ms: performance.now() - t0,
      label: `${target.host}:${target.port}`,
    });
    return new TunnelledConnection(conn, tunnel);
  } catch (e) {
    await tunnel.close();
    throw e;
  }
}
