/**
 * The HTTP gateway (`hecate serve`): a JSON API for applications on the shared HTTP layer
 * (src/http: pipeline, JSON errors, security headers, request context in the trail). Every
 * request carries an API key (`Authorization: Bearer hcx_...`) and opens the vault with it for
 * that request only (stateless: the key's scope, read-only, audited with the key as actor).
 *
 * @module
 */

import { policyAuditOptions } from "../policy/overrides.ts";
import type { Actor } from "../audit/entry.ts";
import { HecateError } from "../errors.ts";
import type { Vault } from "../hecate.ts";
import { openVaultWithState } from "../api/open.ts";
import { RequestAuditLog } from "../http/audit.ts";
import { bodyLimit, type Check } from "../http/checks.ts";
import type { RequestContext } from "../http/context.ts";
import { HttpRefusal } from "../http/respond.ts";
import { handler, type Route, type RunningServer, startServer } from "../http/router.ts";
import type { ConnectionPool } from "../api/pool.ts";
import {
  csvLines,
  errorText,
  itemsOfRows,
  itemStream,
  ndjsonLine,
  type QueryRequest,
  type ResultItem,
  resultItems,
} from "../http/rows_stream.ts";
import { resolveHome } from "../vault/home.ts";
import type { ApiKeyPolicy } from "../vault/apikey.ts";
import { readOnlySession } from "./level.ts";
import { inCidr, parseRate, RateBuckets, userAgentMatches } from "./policy.ts";

/** Largest request body (a statement and its parameters). */
export const MAX_BODY = 1 << 20;
/** Default and largest row limit of one query. */
export const DEFAULT_LIMIT = 10_000_000;

const NOBODY: Actor = { kind: "none" };
const BEARER = /^Bearer (hcx_[A-Za-z0-9_-]{1,80})$/;

/** Options for {@link startGateway}. */
export interface GatewayOptions {
  /** Home directory. @default {$HECATE_HOME or ~/.hecate} */
  home?: string | undefined;
  /** Address to listen on. */
  hostname: string;
  /** Port; 0 for a free one. */
  port: number;
  /** PEM certificate chain and key: HTTPS. */
  tls?: { cert: string; key: string } | undefined;
  /** Allow plain HTTP on an address other than loopback. @default {false} */
  insecureHttp?: boolean;
  /** Lockout policy for key failures. @default {$HECATE_LOCKOUT, else 5/15m} */
  lockout?: string | undefined;
}

/** A running gateway. */
export interface RunningGateway {
  /** `http(s)://host:port`. */
  origin: string;
  /** One line saying how the gateway is reachable and how the transport is protected. */
  transport: string;
  /** The server. */
  server: RunningServer;
  /** Stops accepting, lets requests in flight finish, flushes the trail. */
  close(): Promise<void>;
}

/**
 * Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost): only the local machine
 * can reach it.
 *
 * @param host An address or name.
 * @returns True for loopback.
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The request's open vault, set by the key check, closed when the response is done. */
const vaults = new WeakMap<RequestContext, Vault>();

function vaultOf(ctx: RequestContext): Vault {
  const v = vaults.get(ctx);
  if (!v) throw new HttpRefusal(401, "no_key", "No API key");
  return v;
}

/**
 * Refuses a request the key's zero-trust checks do not allow, naming the check.
 *
 * @param policy The key's checks.
 * @param ctx The request (client address from the socket, User-Agent).
 * @param keyId The key id (its rate bucket).
 * @param buckets The gateway's rate buckets.
 */
function enforcePolicy(
  policy: ApiKeyPolicy,
  ctx: RequestContext,
  keyId: string,
  buckets: RateBuckets,
): void {
  if (policy.allowFrom && !policy.allowFrom.some((c) => inCidr(ctx.client, c))) {
    throw new HttpRefusal(403, "address_not_allowed", "This key may not be used from this address");
  }
  if (policy.userAgent !== undefined && !userAgentMatches(ctx.userAgent, policy.userAgent)) {
    throw new HttpRefusal(403, "user_agent_not_allowed", "This key may not be used by this client");
  }
  if (policy.rate !== undefined) {
    const wait = buckets.take(keyId, parseRate(policy.rate));
    if (wait > 0) {
      throw new HttpRefusal(429, "rate_limited", `This key's rate is ${policy.rate}`, {
        "retry-after": String(wait),
      });
    }
  }
}

/**
 * Refuses a request without a valid API key; opens the vault with it (audited as an unlock by
 * the key, failures count toward lockout), records the key id in the request context, then
 * applies the key's zero-trust checks (the vault is closed again when one refuses).
 */
function apiKeyCheck(home: string, audit: RequestAuditLog, lockout: string | undefined): Check {
  const buckets = new RateBuckets();
  return async (req, ctx) => {
    const m = BEARER.exec(req.headers.get("authorization") ?? "");
    if (!m) {
      throw new HttpRefusal(401, "no_key", "Send an API key as 'Authorization: Bearer hcx_...'");
    }
    const { vault, state } = await openVaultWithState({ home, apiKey: m[1]!, audit, lockout });
    const keyId = vault.actor.id ?? "";
    ctx.attributes.key_id = keyId;
    const policy = "keyId" in state ? state.policy : undefined;
    ctx.attributes.level = policy?.level ?? "write";
    try {
      if (policy) enforcePolicy(policy, ctx, keyId, buckets);
    } catch (e) {
      await vault.close().catch(() => {});
      throw e;
    }
    vaults.set(ctx, vault);
  };
}

/** Browsers send Origin; the gateway serves applications, so no page of any site may call it. */
const noBrowserCheck: Check = (req) => {
  if (req.headers.get("origin") !== null) {
    throw new HttpRefusal(403, "bad_origin", "The gateway does not answer browser pages");
  }
};

function parseQuery(body: unknown): QueryRequest & { format: "ndjson" | "csv" | undefined } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HecateError("usage", "The body must be a JSON object");
  }
  const b = body as Record<string, unknown>;
  if (typeof b.profile !== "string" || b.profile === "") {
    throw new HecateError("usage", "Give the profile");
  }
  if (typeof b.sql !== "string" || !b.sql.trim()) throw new HecateError("usage", "Give the SQL");
  const params = b.params ?? [];
  if (!Array.isArray(params)) throw new HecateError("usage", "params must be a list");
  const limit = b.limit ?? DEFAULT_LIMIT;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) {
    throw new HecateError("usage", "limit must be a positive integer");
  }
  const format = b.format;
  if (format !== undefined && format !== "ndjson" && format !== "csv") {
    throw new HecateError("usage", "format is ndjson or csv");
  }
  return {
    profile: b.profile,
    sql: b.sql,
    params: params.map((p) => p === null ? "" : String(p)),
    limit,
    format,
  };
}

async function closeQuietly(vault: Vault): Promise<void> {
  await vault.close().catch(() => {});
}

/**
 * Pools per key and profile for write-level keys. The key is still verified on every request (the
 * request's own vault open); the pool's vault stays open while the gateway runs, so a revoked key
 * is refused at that open while its pool lingers unused until the gateway stops.
 */
class KeyPools {
  readonly #pools = new Map<string, Promise<{ vault: Vault; pool: ConnectionPool }>>();

  /** The pool for `keyId`/`profile`, made with `vault` (then kept open) when there is none. */
  async get(keyId: string, profile: string, vault: Vault): Promise<[ConnectionPool, boolean]> {
    const id = `${keyId}\u0000${profile}`;
    let adopted = false;
    let entry = this.#pools.get(id);
    if (!entry) {
      adopted = true;
      entry = vault.pool(profile, { max: 8 }).then((pool) => ({ vault, pool }));
      this.#pools.set(id, entry);
      entry.catch(() => this.#pools.delete(id));
    }
    return [(await entry).pool, adopted];
  }

  /** Closes every pool and its vault. */
  async close(): Promise<void> {
    for (const e of this.#pools.values()) {
      const got = await e.catch(() => undefined);
      if (!got) continue;
      await got.pool.close().catch(() => {});
      await got.vault.close().catch(() => {});
    }
    this.#pools.clear();
  }
}

function routes(keyCheck: Check, pools: KeyPools): Route[] {
  return [
    {
      method: "GET",
      path: "/v1/health",
      checks: [],
      handle: () => Response.json({ status: "ok" }),
    },
    {
      method: "GET",
      path: "/v1/profiles",
      checks: [keyCheck],
      handle: async (_req, { ctx }) => {
        const vault = vaultOf(ctx);
        try {
          // Names and engines only: hosts, users and secrets stay in the vault.
          const profiles = vault.profiles.list().map((p) => ({ name: p.name, engine: p.engine }));
          return Response.json({ profiles });
        } finally {
          await closeQuietly(vault);
        }
      },
    },
    {
      method: "POST",
      path: "/v1/query",
      checks: [keyCheck],
      handle: async (req, { ctx }) => {
        const vault = vaultOf(ctx);
        let q: ReturnType<typeof parseQuery>;
        try {
          let body: unknown;
          try {
            body = await req.json();
          } catch {
            throw new HecateError("usage", "The body must be JSON");
          }
          q = parseQuery(body);
        } catch (e) {
          await closeQuietly(vault);
          throw e;
        }
        const csv = q.format === "csv" ||
          (q.format === undefined && (req.headers.get("accept") ?? "").includes("text/csv"));
        const read = ctx.attributes.level === "read";
        let items: AsyncGenerator<ResultItem>;
        let owned = true; // this request's vault is closed when the body ends
        if (read) {
          // A read-only session needs its own connection (a pooled one would keep the setting).
          items = resultItems(vault, q, readOnlySession);
        } else {
          let pool: ConnectionPool;
          try {
            const [p, adopted] = await pools.get(ctx.attributes.key_id ?? "", q.profile, vault);
            pool = p;
            owned = !adopted;
          } catch (e) {
            await closeQuietly(vault);
            throw e;
          }
          items = itemsOfRows(pool.query(q.sql, q.params), q.limit);
        }
        // The first item is read before the status is sent, so a refused connect or a bad
        // statement is a JSON error with its code, not a 200 with an error line.
        let first: IteratorResult<unknown>;
        try {
          first = await items.next();
        } catch (e) {
          if (owned) await closeQuietly(vault);
          throw e;
        }
        async function* all() {
          if (!first.done) yield first.value as never;
          yield* items;
        }
        const body = itemStream(
          all(),
          csv ? csvLines() : ndjsonLine,
          (e) =>
            csv
              ? `\n# error: ${errorText(e).replace(/[\r\n]/g, " ")}\n`
              : JSON.stringify({ error: { message: errorText(e), request_id: ctx.id } }) + "\n",
          () => void (owned ? closeQuietly(vault) : undefined),
        );
        return new Response(body, {
          headers: {
            "content-type": csv ? "text/csv; charset=utf-8" : "application/x-ndjson",
          },
        });
      },
    },
  ];
}

/**
 * Starts the gateway.
 *
 * @param options Address, TLS, home.
 * @returns The running gateway.
 * @throws {HecateError} `usage` for plain HTTP on an address other than loopback without
 * `insecureHttp`.
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  if (!options.tls && !isLoopback(options.hostname) && !options.insecureHttp) {
    throw new HecateError(
      "usage",
      `Refusing plain HTTP on ${options.hostname}: API keys would cross the network in clear`,
      { hint: "give --tls-cert and --tls-key, or --insecure-http if a TLS proxy is in front" },
    );
  }
  const home = resolveHome({ home: options.home });
  const audit = new RequestAuditLog(home, await policyAuditOptions(home));
  const keyCheck = apiKeyCheck(home, audit, options.lockout);
  const pools = new KeyPools();
  const server = startServer(
    options.hostname,
    options.port,
    handler(routes(keyCheck, pools), {
      checks: [noBrowserCheck, bodyLimit(MAX_BODY)],
      onRefusal: async (r) => {
        if (r.code === "not_found" || r.code === "method_not_allowed") return;
        await audit.append({
          event: "gateway.refused",
          actor: NOBODY,
          outcome: "fail",
          reason: r.code,
        })
          .catch(() => {});
      },
    }),
    options.tls,
  );
  const scheme = options.tls ? "https" : "http";
  const host = server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname;
  const origin = `${scheme}://${host}:${server.port}`;
  const transport = options.tls
    ? `Hecate gateway on ${origin} (TLS)`
    : isLoopback(options.hostname)
    ? `Hecate gateway on ${origin} (plain HTTP, loopback only)`
    : `WARNING: Hecate gateway on ${origin} over plain HTTP: API keys cross the network in clear`;
  await audit.append({
    event: "gateway.start",
    actor: NOBODY,
    outcome: "ok",
    detail: { origin, tls: options.tls !== undefined },
  });
  let closing: Promise<void> | undefined;
  return {
    origin,
    transport,
    server,
    close: () =>
      closing ??= (async () => {
        await server.shutdown();
        await pools.close();
        await audit.append({ event: "gateway.stop", actor: NOBODY, outcome: "ok" })
          .catch(() => {});
        await audit.flush?.();
      })(),
  };
}
