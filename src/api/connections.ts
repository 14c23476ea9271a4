/**
 * Connections of an open vault: single connections, one-shot queries, pools with their circuit
 * breakers, endpoints and environments for other programs, and `run`. Every release of a
 * profile's secrets goes through the core's gate (`profile.read` first). The `Vault` hub
 * delegates to this class; it is not exported from mod.ts.
 *
 * @module
 */

import { settlePending } from "../lifecycle/rotate_password.ts";
import { log } from "../log.ts";
import type { Engine } from "../db/driver.ts";
import type { Profile } from "../profile.ts";
import { preloadDriver } from "../db/registry.ts";
import { HecateError } from "../errors.ts";
import {
  type Endpoint,
  openDbConnection,
  type OpenDbConnectionOptions,
  openEndpoint,
  type SourceUse,
} from "../connect.ts";
import type { Actor } from "../audit/log.ts";
import {
  type HeldLease,
  prepareProfile,
  type ResolutionRecord,
} from "../../providers/sources/resolve.ts";
import { fileSecretCache } from "./source_cache.ts";
import {
  keepHeld,
  type LeaseEvent,
  LeaseKeeper,
  type LeaseOutcome,
  leaseTag,
} from "../../providers/sources/lease_keeper.ts";
import { statusOf } from "../../providers/sources/errors.ts";
import { sha256 } from "../sha256.ts";
import { toHex, utf8 } from "../vault/encoding.ts";
import { connectionEnv, type EnvMapping, type SecretMapping } from "../run/env.ts";
import { VaultSecrets } from "./secrets.ts";
import { spawnWithEnv } from "../run/spawn.ts";
import { type BreakerOptions, CircuitBreaker } from "../db/breaker.ts";
import type { PoolOptions } from "../db/pool.ts";
import type { VaultCore } from "./_core.ts";
import { Connection, type StatementAudit, tlsWarnings } from "./connection.ts";
import { ConnectionPool } from "./pool.ts";
import { isReadLevel, makeReadOnly } from "./read_level.ts";
import { reasonOf } from "./util.ts";

/**
 * Options for {@link Vault.connect}.
 *
 * @example
 * ```ts ignore
 * await using db = await vault.connect("billing", { auditStatements: false });
 * ```
 */
export interface ConnectOptions {
  /** Called as each SSH tunnel step (and the database login behind it) completes. */
  onStep?: OpenDbConnectionOptions["onStep"];
  /**
   * Record every statement in the audit trail (SQL hash, rows, duration, outcome). `true` puts each
   * record on disk before the statement's result is final (concurrent statements of one process
   * share a flush, so a busy pool pays about one flush per round of its connections);
   * `"deferred"` writes the records behind the statements in group
   * writes (a crash can lose the last moments' records; a lost record stops every later statement
   * and `close()` waits for the rest); `false` records only the opening of the profile. See
   * docs/SECURITY.md and docs/PERFORMANCE.md. @default {true}
   */
  auditStatements?: StatementAudit;
}

/**
 * Options for {@link Vault.pool}.
 *
 * @example
 * ```ts ignore
 * await using pool = await vault.pool("billing", {
 *   max: 4,
 *   retry: { attempts: 5 },
 *   breaker: { failureThreshold: 3, coolDownMs: 5000 },
 * });
 * ```
 */
export interface VaultPoolOptions extends PoolOptions, ConnectOptions {
  /** Settings for the profile's circuit breaker (shared by the vault's pools of the profile). */
  breaker?: BreakerOptions;
}

/** The connections, pools and breakers of one open vault. */
export class VaultConnections {
  readonly #core: VaultCore;
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #pools = new Set<ConnectionPool>();
  /**
   * Leases of connections and pools: renewed while they live, revoked at their close, and on
   * SIGINT/SIGTERM before the process exits.
   */
  readonly #keeper = new LeaseKeeper({ revokeOnSignals: true, onEvent: leaseWarning });
  /** Leases of `run` children: the child gets the signal, the lease is revoked after it ends. */
  readonly #runKeeper = new LeaseKeeper({ onEvent: leaseWarning });

  /** @param core The open vault's core. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  /** Opens a connection (see {@link Vault.connect}). */
  async connect(name: string, options: ConnectOptions = {}): Promise<Connection> {
    // The driver module holds no secret: load it while the profile.read record is flushed.
    // Without the whole profile index: a query by name reads one record (vault format 4).
    const engine = await this.#core.engineOf(name) as Engine | undefined;
    if (engine) preloadDriver(engine);
    // Likewise the sources' modules and credential chains (no secret request before the record).
    const released = await this.#core.released(name, (p) => prepareProfile(p));
    const { actor, id } = released;
    // A rotation a crash left pending is settled before the profile is used.
    const profile = await settlePending(this.#core, name, released.profile);
    const held: HeldLease[] = [];
    let release: (() => Promise<void>) | undefined;
    try {
      const readLevel = isReadLevel(this.#core.state);
      const conn = await openDbConnection(profile, {
        onStep: options.onStep,
        pinHostKeys: (learned) => this.#pinHostKeys(name, profile, learned),
      }, { ...await this.#sourceUse(name, id, profile, actor, held), readOnlyIntent: readLevel });
      if (readLevel) {
        // Before the caller's first statement; a connection that cannot be made read-only is
        // closed and refused.
        try {
          await makeReadOnly(conn, profile.engine);
        } catch (e) {
          await conn.close().catch(() => {});
          throw e;
        }
      }
      if (held.length) {
        // Dynamic credentials live exactly as long as this connection (a pool's connections
        // each hold their own login, resolved once when the connection is opened).
        const done = keepHeld(this.#keeper, held, this.#leaseAudit(name, actor));
        release = done;
        const close = conn.close.bind(conn);
        conn.close = async () => {
          try {
            await close();
          } finally {
            await done();
          }
        };
      }
      return new Connection(
        name,
        profile.engine,
        conn,
        this.#core.audit,
        tlsWarnings(profile),
        actor,
        options.auditStatements ?? true,
      );
    } catch (e) {
      // A login obtained for a connect that failed is revoked at once.
      await (release ?? keepHeld(this.#keeper, held, this.#leaseAudit(name, actor)))();
      await this.#core.audit.append({
        event: "connect",
        actor,
        profile: name,
        outcome: "fail",
        reason: reasonOf(e),
      }).catch(() => {});
      throw e;
    }
  }

  /**
   * Receives the leases on dynamic credentials each connect or endpoint obtains (the lease
   * keeper renews them while the connection lives and revokes them after). Until a keeper is
   * set, leases simply run out at their end.
   */
  onLeases: ((profile: string, leases: readonly HeldLease[]) => void) | undefined;

  /** How a use of profile `name` resolves its secrets: audited, cached if the profile opts in. */
  async #sourceUse(
    name: string,
    id: string,
    profile: Profile,
    actor: Actor,
    held?: HeldLease[],
  ): Promise<SourceUse> {
    const audit = this.#core.audit;
    const ttl = profile.sources?.cacheTtlMs;
    const side = ttl ? await this.#core.sideKey(id) : undefined;
    return {
      resolve: {
        // The attempts' records go out with the next durable record of this use (the statement,
        // `env`, `run`, or the failure's), so a source costs no flush of its own; the
        // `profile.read` record was on disk before anything was resolved.
        onAttempt: (r) => {
          const event = resolutionEvent(name, actor, r);
          // The audit record's own fields: a reference and a status, never a value.
          log("debug", "sources", "secret source tried", {
            profile: name,
            field: r.field,
            scheme: r.scheme,
            ref: r.ref,
            outcome: r.outcome,
            reason: r.reason,
            ms: Math.round(r.latencyMs),
          });
          if (audit.enqueue) return void audit.enqueue(event);
          return audit.append(event);
        },
        ...(side
          ? { cache: fileSecretCache({ home: this.#core.home, recordId: id, ...side }) }
          : {}),
      },
      onLeases: (leases) => {
        held?.push(...leases);
        this.onLeases?.(name, leases);
      },
    };
  }

  /** Records each renew and revoke of a profile's leases (a hash of the lease id, never it). */
  #leaseAudit(name: string, actor: Actor): (o: LeaseOutcome) => Promise<void> {
    return async (o) => {
      await this.#core.audit.append({
        event: o.kind === "renew" ? "lease.renew" : "lease.revoke",
        actor,
        profile: name,
        outcome: o.ok ? "ok" : "fail",
        ...(o.ok ? {} : { reason: statusOf(o.error) }),
        detail: {
          scheme: o.scheme,
          lease_sha256: toHex(sha256(utf8(o.lease.id))),
          ...(o.kind === "renew" ? { duration_s: o.lease.durationSeconds } : {}),
        },
      });
    };
  }

  /** Pins host keys learned under accept-new, unless the profile changed meanwhile. */
  async #pinHostKeys(
    name: string,
    seen: Profile,
    learned: readonly { hop: number; fingerprint: string }[],
  ): Promise<void> {
    await this.#core.audited("profile.pin_host_key", name, async () => {
      await this.#core.mutate(async (state) => {
        const { id, profile } = await this.#core.find(name, state);
        if (!profile.ssh) return;
        const hops = profile.ssh.hops.map((h, i) => {
          const l = learned.find((x) => x.hop === i);
          const was = seen.ssh?.hops[i];
          if (!l || !was || was.host !== h.host || was.port !== h.port) return h;
          if (h.hostKey && h.hostKey !== l.fingerprint) {
            // Another process pinned a different key in between: trust neither silently.
            throw new HecateError(
              "host_key_changed",
              `Host key of SSH server ${h.host}:${
                h.port ?? 22
              } differs from the one just pinned (${h.hostKey})`,
            );
          }
          return { ...h, hostKey: l.fingerprint };
        });
        state.putRecord({
          ...profile,
          ssh: { ...profile.ssh, hops },
          updated: new Date().toISOString(),
        } as unknown as Record<string, unknown>, id);
      });
    });
  }

  /** One statement on a fresh connection (see {@link Vault.query}). */
  async query(
    name: string,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<Record<string, unknown>[]> {
    const conn = await this.connect(name);
    try {
      const out: Record<string, unknown>[] = [];
      for await (const row of conn.query(sql, params)) out.push(row);
      return out;
    } finally {
      await conn.close();
    }
  }

  /** A profile's shared circuit breaker (see {@link Vault.breaker}). */
  breaker(name: string, options: BreakerOptions = {}): CircuitBreaker {
    let b = this.#breakers.get(name);
    if (!b) {
      b = new CircuitBreaker(name, options);
      this.#breakers.set(name, b);
    } else {
      b.configure(options);
    }
    return b;
  }

  /** Opens a pool (see {@link Vault.pool}). */
  async pool(name: string, options: VaultPoolOptions = {}): Promise<ConnectionPool> {
    await this.#core.find(name);
    const { breaker, auditStatements, ...poolOptions } = options;
    const pool: ConnectionPool = new ConnectionPool(
      name,
      () => this.connect(name, { auditStatements: auditStatements ?? true }),
      poolOptions,
      this.breaker(name, breaker),
      () => this.#pools.delete(pool),
    );
    this.#pools.add(pool);
    try {
      await pool.fill();
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Closes every pool opened through these connections (each waits for its borrowed ones). */
  async close(): Promise<void> {
    await Promise.all([...this.#pools].map((p) => p.close()));
    await Promise.all([this.#keeper.close(), this.#runKeeper.close()]);
  }

  /** Resolves a profile for another program (see {@link Vault.endpoint}). */
  async endpoint(name: string): Promise<Endpoint> {
    this.#mayHandOutCredentials(name);
    const released = await this.#core.released(name, (p) => prepareProfile(p));
    const { actor, id } = released;
    // A rotation a crash left pending is settled before the profile is used.
    const profile = await settlePending(this.#core, name, released.profile);
    try {
      return await openEndpoint(profile, {
        pinHostKeys: (learned) => this.#pinHostKeys(name, profile, learned),
      }, await this.#sourceUse(name, id, profile, actor));
    } catch (e) {
      // The records of the sources that failed are on disk before the failure is reported.
      await this.#core.audit.flush?.().catch(() => {});
      throw e;
    }
  }

  /**
   * Refuses raw credentials (`run`, `env`, an endpoint) to an API key made without that
   * permission; keys made before the permission existed carry none and keep today's behaviour.
   */
  #mayHandOutCredentials(name: string): void {
    const state = this.#core.state;
    if ("keyId" in state && state.policy?.credentials === false) {
      throw new HecateError(
        "key_not_allowed",
        `This API key may query "${name}" but not hand out its credentials (run, env)`,
        { hint: "create a key with --allow-credentials for run/env" },
      );
    }
  }

  /** The variables `hecate run` gives a program (see {@link Vault.environment}). */
  async environment(
    name: string,
    mappings: readonly EnvMapping[] = [],
  ): Promise<Record<string, string>> {
    if ((await this.#core.find(name)).profile.ssh) {
      // The tunnel's local port is gone when this returns: the variables would point nowhere.
      throw new HecateError(
        "usage",
        `Profile "${name}" is reached through an SSH tunnel, which lives only while a command runs`,
        { hint: `use 'hecate run ${name} -- COMMAND', which keeps the tunnel open` },
      );
    }
    const endpoint = await this.endpoint(name);
    try {
      const env = connectionEnv(name, endpoint.settings, mappings);
      await this.#core.audit.append({
        event: "env",
        actor: this.#core.actor,
        profile: name,
        outcome: "ok",
      });
      return env;
    } finally {
      await endpoint.close();
    }
  }

  /** Runs a program with a profile's connection (see {@link Vault.run}). */
  async run(
    name: string,
    command: string,
    args: readonly string[] = [],
    options: { env?: readonly EnvMapping[]; secrets?: readonly SecretMapping[] } = {},
  ): Promise<number> {
    // Stored secrets first (each read audited): a missing one fails before anything starts.
    const extra: Record<string, string> = {};
    const secrets = new VaultSecrets(this.#core);
    for (const m of options.secrets ?? []) extra[m.variable] = await secrets.get(m.secret);
    const endpoint = await this.endpoint(name);
    // A dynamic login is renewed while the program runs and revoked when it has ended (also
    // when it ended because hecate passed it SIGTERM).
    const release = keepHeld(
      this.#runKeeper,
      endpoint.leases,
      this.#leaseAudit(name, this.#core.actor),
    );
    let code: number | undefined;
    let failure: unknown;
    try {
      const env = { ...connectionEnv(name, endpoint.settings, options.env ?? []), ...extra };
      code = await spawnWithEnv(command, args, env);
      return code;
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      await release();
      await endpoint.close();
      const record = this.#core.audit.append({
        event: "run",
        actor: this.#core.actor,
        profile: name,
        outcome: code === 0 ? "ok" : "fail",
        ...(failure !== undefined ? { reason: reasonOf(failure) } : {}),
        // The program's name only: never its arguments or environment.
        detail: { command, ...(code !== undefined ? { exit_code: code } : {}) },
      });
      // The program's own failure is the one to report.
      if (failure === undefined) await record;
      else await record.catch(() => {});
    }
  }
}

/** The audit record of one resolution attempt: where and how, never a value or a token. */
function resolutionEvent(profile: string, actor: Actor, r: ResolutionRecord) {
  const cache = r.outcome === "cached" || r.reason?.startsWith("cache_");
  return {
    event: cache ? "secret.cache" as const : "secret.resolve" as const,
    actor,
    profile,
    outcome: r.outcome === "fail" ? "fail" as const : "ok" as const,
    ...(r.reason && r.outcome === "fail" ? { reason: r.reason } : {}),
    detail: {
      field: r.field,
      scheme: r.scheme,
      ref: r.ref,
      latency_ms: Math.round(r.latencyMs),
      ...(r.version !== undefined ? { version: r.version } : {}),
      ...(r.leaseSha256 !== undefined ? { lease_sha256: r.leaseSha256 } : {}),
      ...(r.cacheAgeSeconds !== undefined ? { age_s: r.cacheAgeSeconds } : {}),
      ...(r.outcome === "cached" && r.reason ? { sources: r.reason } : {}),
    },
  };
}

/** Tells the user when a lease could not be renewed or revoked (a hash names it, not its id). */
function leaseWarning(e: LeaseEvent): void {
  if (e.kind !== "renew_failed" && e.kind !== "revoke_failed") return;
  const what = e.kind === "renew_failed"
    ? "could not be renewed; the login ends with its lease"
    : "could not be revoked; the login stays valid until its lease ends";
  try {
    Deno.stderr.writeSync(
      new TextEncoder().encode(
        `hecate: warning: dynamic credentials (${leaseTag(e.lease.id)}) ${what}\n`,
      ),
    );
  } catch {
    // stderr closed
  }
}
