/**
 * The HTTP gateway (`hecate serve`): a JSON API for applications on the shared HTTP layer
 * (src/http: pipeline, JSON errors, security headers, request context in the trail). Every
 * request carries an API key (`Authorization: Bearer hcx_...`); the vault opened with it (the key's
 * scope, read-only, audited with the key as actor) and its pools are kept for a short time in a
 * session cache (./sessions.ts) that any write of the vault file empties.
 *
 * @module
 */

import { policyAuditOptions } from "../policy/overrides.ts";
import type { Actor } from "../audit/entry.ts";
import { HecateError } from "../errors.ts";
import { openVaultWithState } from "../api/open.ts";
import { RequestAuditLog } from "../http/audit.ts";
import { bodyLimit, type Check } from "../http/checks.ts";
import type { RequestContext } from "../http/context.ts";
import { HttpRefusal } from "../http/respond.ts";
import { handler, type Route, type RunningServer, startServer } from "../http/router.ts";
import {
  csvLines,
  errorText,
  itemsOfRows,
  itemStream,
  ndjsonLine,
  type QueryRequest,
  type ResultItem,
} from "../http/rows_stream.ts";
import { resolveHome } from "../vault/home.ts";
import type { ApiKeyPolicy } from "../vault/apikey.ts";
import { type KeySession, KeySessions } from "./sessions.ts";
import { inCidr, parseRate, RateBuckets, userAgentMatches } from "./policy.ts";

/** `fn`, run at most once. */
function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) (done = true, fn());
  };
}

/** Largest request body (a statement and its parameters). */
export const MAX_BODY = 1 << 20;
/** Default and largest row limit of one query. */
export const DEFAULT_LIMIT = 10_000_000;

const NOBODY: Actor = { kind: "none" };
/** Items of a result read before the answer starts: a result this short is sent whole. */
const SMALL_ITEMS = 200;
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
  /**
   * How query records are written: `true`, each on disk (flushed, concurrent requests sharing
   * flushes) before its response ends; `"deferred"`, queued for group writes at most 25 ms
   * behind, so a crash can lose the records of requests already answered (docs/SECURITY.md).
   * @default {true}
   */
  auditStatements?: true | "deferred" | undefined;
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

/** The request's key session, set by the key check, given back when the response is done. */
const held = new WeakMap<RequestContext, KeySession>();

function sessionOf(ctx: RequestContext): KeySession {
  const v = held.get(ctx);
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
 * Refuses a request without a valid API key; takes the key's session (a cached one, or a fresh
 * audited unlock: failures count toward lockout), records the key id and level in the request
 * context and applies the key's zero-trust checks (the session is given back when one refuses).
 * Each route writes the request's record: a query's statement record (it carries the request
 * context), else a `gateway.request` record.
 */
function apiKeyCheck(sessions: KeySessions): Check {
  const buckets = new RateBuckets();
  return async (req, ctx) => {
    const m = BEARER.exec(req.headers.get("authorization") ?? "");
    if (!m) {
      throw new HttpRefusal(401, "no_key", "Send an API key as 'Authorization: Bearer hcx_...'");
    }
    const session = await sessions.acquire(m[1]!);
    ctx.attributes.key_id = session.keyId;
    ctx.attributes.level = session.policy?.level ?? "write";
    try {
      if (session.policy) enforcePolicy(session.policy, ctx, session.keyId, buckets);
    } catch (e) {
      sessions.release(session);
      throw e;
    }
    held.set(ctx, session);
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

function routes(keyCheck: Check, sessions: KeySessions, audit: RequestAuditLog): Route[] {
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
        const session = sessionOf(ctx);
        try {
          await audit.append({
            event: "gateway.request",
            actor: session.vault.actor,
            outcome: "ok",
          });
          // Names and engines only: hosts, users and secrets stay in the vault.
          const profiles = session.vault.profiles.list()
            .map((p) => ({ name: p.name, engine: p.engine }));
          return Response.json({ profiles });
        } finally {
          sessions.release(session);
        }
      },
    },
    {
      method: "POST",
      path: "/v1/query",
      checks: [keyCheck],
      handle: async (req, { ctx }) => {
        const session = sessionOf(ctx);
        const release = once(() => sessions.release(session));
        let items: AsyncGenerator<ResultItem>;
        let csv: boolean;
        let render: (item: ResultItem) => string;
        let head = "";
        let ended = false;
        try {
          let body: unknown;
          try {
            body = await req.json();
          } catch {
            throw new HecateError("usage", "The body must be JSON");
          }
          const q = parseQuery(body);
          csv = q.format === "csv" ||
            (q.format === undefined && (req.headers.get("accept") ?? "").includes("text/csv"));
          render = csv ? csvLines() : ndjsonLine;
          // The key's pool for the profile (a read-level key's connections are made read-only
          // when they are opened: src/api/read_level.ts).
          const pool = await session.pool(q.profile);
          items = itemsOfRows(pool.query(q.sql, q.params), q.limit);
          // The first item is read before the status is sent, so a refused connect or a bad
          // statement is a JSON error with its code, not a 200 with an error line.
          const first = await items.next();
          if (first.done) ended = true;
          else head = render(first.value);
        } catch (e) {
          release();
          // No statement record names this request: give it its own.
          await audit.append({
            event: "gateway.request",
            actor: session.vault.actor,
            outcome: "fail",
            reason: e instanceof HecateError ? e.code : "internal",
          }).catch(() => {});
          throw e;
        }
        const failure = (e: unknown) =>
          csv
            ? `\n# error: ${errorText(e).replace(/[\r\n]/g, " ")}\n`
            : JSON.stringify({ error: { message: errorText(e), request_id: ctx.id } }) + "\n";
        const type = csv ? "text/csv; charset=utf-8" : "application/x-ndjson";
        // A short result (the common case) is answered whole: no chunked stream to set up.
        try {
          for (let i = 0; i < SMALL_ITEMS && !ended; i++) {
            const next = await items.next();
            if (next.done) ended = true;
            else head += render(next.value);
          }
        } catch (e) {
          head += failure(e);
          ended = true;
        }
        if (ended) {
          release();
          return new Response(head, { headers: { "content-type": type } });
        }
        async function* rest(): AsyncGenerator<string> {
          yield head;
          for await (const item of items) yield render(item);
        }
        const body = itemStream(rest(), (text) => text, failure, release);
        return new Response(body, { headers: { "content-type": type } });
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
  const sessions = new KeySessions({
    home,
    open: (apiKey) => openVaultWithState({ home, apiKey, audit, lockout: options.lockout }),
    auditStatements: options.auditStatements,
  });
  const keyCheck = apiKeyCheck(sessions);
  const server = startServer(
    options.hostname,
    options.port,
    handler(routes(keyCheck, sessions, audit), {
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
        await sessions.close();
        await audit.append({ event: "gateway.stop", actor: NOBODY, outcome: "ok" })
          .catch(() => {});
        await audit.flush?.();
      })(),
  };
}
