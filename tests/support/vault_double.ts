/**
 * A test DOUBLE of HashiCorp Vault / OpenBao: not Vault, a local HTTPS server (Deno.serve on
 * 127.0.0.1, its own CA from ./tls_certs.ts) that answers the documented HTTP API subset Hecate
 * uses, the way Vault documents it:
 *
 * - KV v1 (`GET /v1/MOUNT/PATH`) and KV v2 (`GET /v1/MOUNT/data/PATH[?version=N]`, data and
 *   metadata), and mount detection through `GET /v1/sys/internal/ui/mounts/PATH` (what the
 *   `vault` CLI asks to tell v1 from v2);
 * - tokens: `auth/token/lookup-self`, `auth/token/renew-self`, TTL and max TTL; an unknown or
 *   expired token gets 403 `permission denied`;
 * - AppRole login (`auth/approle/login`, role_id + secret_id) and Kubernetes login
 *   (`auth/kubernetes/login`, a service-account JWT verified with the key the test gives, the
 *   role bound to service-account names and namespaces);
 * - the database secrets engine: `GET /v1/MOUNT/creds/ROLE` creates a REAL login on PostgreSQL
 *   (with `VALID UNTIL`) or MariaDB through the admin hook the test gives, and drops it at revoke
 *   or when the lease expires (a timer, as Vault's expiration manager does);
 * - `sys/leases/renew` (bounded by the role's max TTL), `sys/leases/revoke`, `sys/health`;
 * - `X-Vault-Namespace`: a token works only in the namespace it was issued in;
 * - policies: per-path capabilities with `*` (prefix) and `+` (one segment) globs.
 *
 * Fault modes for failover tests: refuse connections, answer slowly, answer 403, answer a
 * malformed body. The double never logs a token.
 *
 * @module
 */

import { importSPKI, jwtVerify } from "jose";
import { issueCert, makeCa } from "./tls_certs.ts";
import { randomHex } from "./process.ts";

/** Capabilities on a path, as in a Vault policy. */
export type Capability = "read" | "create" | "update" | "delete" | "list" | "sudo" | "deny";

/** One policy: path globs to capabilities. */
export type Policy = Record<string, Capability[]>;

/** A database role of the double's database engine. */
export interface DbRole {
  /** `postgres` or `mysql` (MariaDB). */
  engine: "postgres" | "mysql";
  /**
   * Runs SQL as an administrator (e.g. `pg.psql` or `mariadb.sql`); the double creates and drops
   * logins through it.
   */
  admin: (sql: string) => Promise<string>;
  /** Statements that create the login; `{{name}}`, `{{password}}`, `{{expiration}}` filled in. */
  creation: string;
  /** Statements that drop it; `{{name}}` filled in. */
  revocation: string;
  /** Lease TTL in seconds. */
  ttl: number;
  /** Max lease TTL in seconds (renewals stop there). */
  maxTtl: number;
}

/** A fault the double shows instead of answering normally. */
export type VaultFault =
  | { kind: "refuse" }
  | { kind: "slow"; ms: number }
  | { kind: "forbidden" }
  | { kind: "malformed" };

/** One request the double received (never a token). */
export interface SeenRequest {
  method: string;
  path: string;
  namespace: string | undefined;
}

interface TokenEntry {
  policies: string[];
  namespace: string;
  ttl: number;
  expiresAt: number;
  maxExpiresAt: number;
  renewable: boolean;
}

interface LeaseEntry {
  mount: string;
  role: DbRole;
  username: string;
  namespace: string;
  expiresAt: number;
  maxExpiresAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  dropped: Promise<void> | undefined;
}

/** Options for {@link startVaultDouble}. */
export interface VaultDoubleOptions {
  /** A namespace the double serves in addition to the root one (as Vault Enterprise / OpenBao). */
  namespace?: string;
  /**
   * Serve plain HTTP, as a Vault Agent listener with `tls_disable` on loopback does (the
   * benchmark's agent case). @default {false}
   */
  plain?: boolean;
}

/** A running double. */
export interface VaultDouble {
  /** `https://127.0.0.1:PORT` (`http://` with `plain`). */
  addr: string;
  /** PEM file of the CA that signed the double's certificate. */
  caFile: string;
  /** Requests received, in order. */
  readonly requests: SeenRequest[];
  /** Defines (or replaces) a policy. */
  policy(name: string, policy: Policy): void;
  /**
   * Issues a token.
   *
   * @returns The token.
   */
  token(
    opts: {
      policies: string[];
      ttl?: number;
      maxTtl?: number;
      renewable?: boolean;
      namespace?: string;
    },
  ): string;
  /** Enables a KV mount (version 1 or 2). */
  mountKv(mount: string, version: 1 | 2, namespace?: string): void;
  /** Writes a KV secret (a new version on v2). */
  putKv(mount: string, path: string, data: Record<string, unknown>, namespace?: string): void;
  /** Adds an AppRole role; returns its role id and a fresh secret id. */
  approle(
    name: string,
    opts: { policies: string[]; tokenTtl?: number; tokenMaxTtl?: number },
  ): { roleId: string; secretId: string };
  /** Configures Kubernetes auth: the service-account JWT issuer's public key (SPKI PEM). */
  kubernetesKey(publicKeyPem: string): void;
  /** Adds a Kubernetes auth role bound to service-account names and namespaces. */
  kubernetesRole(
    name: string,
    opts: { saNames: string[]; saNamespaces: string[]; policies: string[]; tokenTtl?: number },
  ): void;
  /** Adds a database engine role under a mount (e.g. `database`). */
  dbRole(mount: string, name: string, role: DbRole): void;
  /** Lease ids currently live. */
  liveLeases(): string[];
  /** Usernames created so far by the database engine, in order. */
  readonly usernames: string[];
  /** Counts: logins (approle/kubernetes), creds issued, lease renewals, revocations, token renewals. */
  readonly counts: {
    logins: number;
    creds: number;
    leaseRenewals: number;
    revocations: number;
    tokenRenewals: number;
  };
  /** Turns a fault on (or off with undefined). */
  fault(fault: VaultFault | undefined): Promise<void>;
  /** Revokes every live lease (dropping the logins) and stops. Safe to call twice. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_POLICY: Policy = {
  "auth/token/lookup-self": ["read"],
  "auth/token/renew-self": ["update"],
  "sys/leases/renew": ["update"],
};

function globMatch(glob: string, path: string): boolean {
  const prefix = glob.endsWith("*");
  const g = (prefix ? glob.slice(0, -1) : glob).split("/");
  const p = path.split("/");
  if (!prefix && g.length !== p.length) return false;
  for (let i = 0; i < g.length; i++) {
    const gs = g[i]!, ps = p[i];
    if (ps === undefined) return false;
    if (gs === "+") continue;
    if (i === g.length - 1 && prefix) return ps.startsWith(gs);
    if (gs !== ps) return false;
  }
  return prefix || g.length === p.length;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function errors(status: number, ...messages: string[]): Response {
  return json(status, { errors: messages });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/**
 * Starts the double on a free loopback port with a fresh CA.
 *
 * @param options An extra namespace.
 * @returns The running double; close it (or `await using`) to drop every dynamic login.
 */
export async function startVaultDouble(options: VaultDoubleOptions = {}): Promise<VaultDouble> {
  const dir = await Deno.makeTempDir({ prefix: "hecate-vault-double-" });
  const ca = await makeCa(dir, "vault-double-ca");
  const cert = await issueCert(ca, dir, "vault-double", { cn: "127.0.0.1", server: true });
  const certPem = await Deno.readTextFile(cert.certFile);
  const keyPem = await Deno.readTextFile(cert.keyFile);

  const policies = new Map<string, Policy>([["default", DEFAULT_POLICY]]);
  const tokens = new Map<string, TokenEntry>();
  // KV: `${ns}|${mount}` -> version and secrets (each a list of versions).
  const kv = new Map<string, { version: 1 | 2; secrets: Map<string, Record<string, unknown>[]> }>();
  const approles = new Map<
    string,
    { roleId: string; secretIds: Set<string>; policies: string[]; ttl: number; maxTtl: number }
  >();
  const k8sRoles = new Map<
    string,
    { saNames: string[]; saNamespaces: string[]; policies: string[]; ttl: number }
  >();
  let k8sKeyPem: string | undefined;
  const dbRoles = new Map<string, DbRole>(); // `${mount}/${role}`
  const leases = new Map<string, LeaseEntry>();
  const requests: SeenRequest[] = [];
  const usernames: string[] = [];
  const counts = { logins: 0, creds: 0, leaseRenewals: 0, revocations: 0, tokenRenewals: 0 };
  let currentFault: VaultFault | undefined;
  const closing = new AbortController();
  const namespaces = new Set(["", ...(options.namespace ? [options.namespace] : [])]);

  const issue = (
    o: {
      policies: string[];
      ttl?: number;
      maxTtl?: number;
      renewable?: boolean;
      namespace?: string;
    },
  ): { token: string; entry: TokenEntry } => {
    const token = `hvs.${randomHex(16)}`;
    const now = Date.now(), ttl = o.ttl ?? 3600, maxTtl = o.maxTtl ?? 24 * 3600;
    const entry: TokenEntry = {
      policies: ["default", ...o.policies],
      namespace: o.namespace ?? "",
      ttl,
      expiresAt: now + ttl * 1000,
      maxExpiresAt: now + maxTtl * 1000,
      renewable: o.renewable ?? true,
    };
    tokens.set(token, entry);
    return { token, entry };
  };

  const authBody = (token: string, e: TokenEntry, meta: Record<string, string> = {}) => ({
    auth: {
      client_token: token,
      accessor: randomHex(8),
      policies: e.policies,
      token_policies: e.policies,
      metadata: meta,
      lease_duration: Math.round((e.expiresAt - Date.now()) / 1000),
      renewable: e.renewable,
    },
  });

  const allowed = (e: TokenEntry, path: string, cap: Capability): boolean => {
    let ok = false;
    for (const name of e.policies) {
      const pol = policies.get(name);
      if (!pol) continue;
      for (const [glob, caps] of Object.entries(pol)) {
        if (!globMatch(glob, path)) continue;
        if (caps.includes("deny")) return false;
        if (caps.includes(cap)) ok = true;
      }
    }
    return ok;
  };

  const dropLogin = (id: string, l: LeaseEntry): Promise<void> => {
    if (l.timer !== undefined) clearTimeout(l.timer);
    leases.delete(id);
    l.dropped ??= l.role.admin(l.role.revocation.replaceAll("{{name}}", l.username)).then(
      () => {},
      () => {},
    );
    return l.dropped;
  };

  const schedule = (id: string, l: LeaseEntry) => {
    if (l.timer !== undefined) clearTimeout(l.timer);
    l.timer = setTimeout(() => void dropLogin(id, l), Math.max(0, l.expiresAt - Date.now()));
  };

  const pgTime = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "+00");

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const nsHeader = req.headers.get("x-vault-namespace") ?? undefined;
    const ns = (nsHeader ?? "").replace(/^\/+|\/+$/g, "");
    if (!url.pathname.startsWith("/v1/")) return errors(404, "no handler for route");
    const path = decodeURIComponent(url.pathname.slice(4)).replace(/\/+$/, "");
    requests.push({ method: req.method, path, namespace: nsHeader });

    const fault = currentFault;
    if (fault?.kind === "slow") await sleep(fault.ms, closing.signal);
    if (fault?.kind === "forbidden") return errors(403, "permission denied");
    if (fault?.kind === "malformed") {
      return new Response('{"data": {"data": ', {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    }

    if (path === "sys/health") {
      return json(200, {
        initialized: true,
        sealed: false,
        standby: false,
        version: "1.15.0+double",
        cluster_name: "hecate-vault-double",
      });
    }
    if (!namespaces.has(ns)) return errors(404, `namespace not found`);
    let body: Record<string, unknown> = {};
    if (req.method === "POST" || req.method === "PUT") {
      const text = await req.text();
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          return errors(400, "failed to parse JSON input");
        }
      }
    }

    // Logins need no token.
    if (path === "auth/approle/login" && req.method !== "GET") {
      for (const [name, r] of approles) {
        if (r.roleId !== body.role_id) continue;
        if (typeof body.secret_id !== "string" || !r.secretIds.has(body.secret_id)) break;
        counts.logins++;
        const { token, entry } = issue({
          policies: r.policies,
          ttl: r.ttl,
          maxTtl: r.maxTtl,
          namespace: ns,
        });
        return json(200, authBody(token, entry, { role_name: name }));
      }
      return errors(400, "invalid role or secret ID");
    }
    if (path === "auth/kubernetes/login" && req.method !== "GET") {
      const role = k8sRoles.get(String(body.role));
      if (!role || !k8sKeyPem || typeof body.jwt !== "string") {
        return errors(400, "invalid role name or JWT");
      }
      try {
        const key = await importSPKI(k8sKeyPem, "ES256");
        const { payload } = await jwtVerify(body.jwt, key, { issuer: "kubernetes/serviceaccount" });
        const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(String(payload.sub));
        if (!m || !role.saNamespaces.includes(m[1]!) || !role.saNames.includes(m[2]!)) {
          return errors(403, "permission denied");
        }
      } catch {
        return errors(403, "permission denied");
      }
      counts.logins++;
      const { token, entry } = issue({ policies: role.policies, ttl: role.ttl, namespace: ns });
      return json(200, authBody(token, entry, { role: String(body.role) }));
    }

    const token = req.headers.get("x-vault-token") ?? "";
    const entry = tokens.get(token);
    if (!entry || entry.expiresAt <= Date.now() || entry.namespace !== ns) {
      return errors(403, "permission denied");
    }

    if (path === "auth/token/lookup-self") {
      return json(200, {
        data: {
          policies: entry.policies,
          ttl: Math.round((entry.expiresAt - Date.now()) / 1000),
          renewable: entry.renewable,
          expire_time: new Date(entry.expiresAt).toISOString(),
          namespace_path: ns ? `${ns}/` : "",
        },
      });
    }
    if (path === "auth/token/renew-self") {
      if (!entry.renewable) return errors(400, "lease is not renewable");
      counts.tokenRenewals++;
      const inc = typeof body.increment === "number" ? body.increment : entry.ttl;
      entry.expiresAt = Math.min(Date.now() + inc * 1000, entry.maxExpiresAt);
      return json(200, authBody(token, entry));
    }
    if (path.startsWith("sys/internal/ui/mounts/")) {
      const rest = path.slice("sys/internal/ui/mounts/".length);
      for (const [key, m] of kv) {
        const [kns, mount] = key.split("|") as [string, string];
        if (kns !== ns || (rest !== mount && !rest.startsWith(`${mount}/`))) continue;
        return json(200, {
          data: { path: `${mount}/`, type: "kv", options: { version: String(m.version) } },
        });
      }
      const db = [...dbRoles.keys()].find((k) => rest.startsWith(`${k.split("/")[0]}/`));
      if (db) return json(200, { data: { path: `${db.split("/")[0]}/`, type: "database" } });
      return errors(
        403,
        "preflight capability check returned 403, please ensure client's policies grant access to path",
      );
    }
    if (path === "sys/leases/renew" || path === "sys/leases/revoke") {
      const cap: Capability = "update";
      if (!allowed(entry, path, cap)) return errors(403, "permission denied");
      const id = String(body.lease_id ?? "");
      const l = leases.get(id);
      if (path === "sys/leases/revoke") {
        if (l) {
          counts.revocations++;
          await dropLogin(id, l);
        }
        return new Response(null, { status: 204 });
      }
      if (!l || l.namespace !== ns || l.expiresAt <= Date.now()) {
        return errors(400, "lease not found or lease is not renewable");
      }
      counts.leaseRenewals++;
      const inc = typeof body.increment === "number" && body.increment > 0
        ? body.increment
        : l.role.ttl;
      l.expiresAt = Math.min(Date.now() + inc * 1000, l.maxExpiresAt);
      if (l.role.engine === "postgres") {
        await l.role.admin(`ALTER ROLE "${l.username}" VALID UNTIL '${pgTime(l.expiresAt)}'`);
      }
      schedule(id, l);
      return json(200, {
        lease_id: id,
        renewable: l.expiresAt < l.maxExpiresAt,
        lease_duration: Math.max(0, Math.round((l.expiresAt - Date.now()) / 1000)),
      });
    }

    // The database engine: MOUNT/creds/ROLE.
    const creds = /^([^/]+)\/creds\/([^/]+)$/.exec(path);
    if (creds && req.method === "GET") {
      const role = dbRoles.get(`${creds[1]}/${creds[2]}`);
      if (!allowed(entry, path, "read")) return errors(403, "permission denied");
      if (!role) return errors(400, `unknown role: ${creds[2]}`);
      counts.creds++;
      const username = `v-${creds[2]!.slice(0, 8)}-${randomHex(5)}`;
      const password = `A1a-${randomHex(12)}`;
      const now = Date.now();
      const lease: LeaseEntry = {
        mount: creds[1]!,
        role,
        username,
        namespace: ns,
        expiresAt: now + role.ttl * 1000,
        maxExpiresAt: now + role.maxTtl * 1000,
        timer: undefined,
        dropped: undefined,
      };
      await role.admin(
        role.creation.replaceAll("{{name}}", username).replaceAll("{{password}}", password)
          .replaceAll("{{expiration}}", pgTime(lease.expiresAt)),
      );
      usernames.push(username);
      const id = `${creds[1]}/creds/${creds[2]}/${randomHex(12)}`;
      leases.set(id, lease);
      schedule(id, lease);
      return json(200, {
        request_id: randomHex(8),
        lease_id: id,
        renewable: true,
        lease_duration: role.ttl,
        data: { username, password },
      });
    }

    // KV.
    for (const [key, m] of kv) {
      const [kns, mount] = key.split("|") as [string, string];
      if (kns !== ns || !path.startsWith(`${mount}/`)) continue;
      if (req.method !== "GET") return errors(405, "unsupported operation");
      if (!allowed(entry, path, "read")) return errors(403, "permission denied");
      if (m.version === 1) {
        const versions = m.secrets.get(path.slice(mount.length + 1));
        if (!versions) return errors(404);
        return json(200, { lease_duration: 2764800, renewable: false, data: versions.at(-1) });
      }
      if (!path.startsWith(`${mount}/data/`)) return errors(404);
      const versions = m.secrets.get(path.slice(mount.length + 6));
      if (!versions) return errors(404);
      const want = url.searchParams.get("version");
      const n = want && want !== "0" ? Number(want) : versions.length;
      const data = versions[n - 1];
      if (!Number.isInteger(n) || !data) return errors(404);
      return json(200, {
        data: {
          data,
          metadata: {
            created_time: new Date().toISOString(),
            custom_metadata: null,
            deletion_time: "",
            destroyed: false,
            version: n,
          },
        },
      });
    }
    return errors(404);
  }

  let port = 0;
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  const listen = () => {
    server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      ...(options.plain ? {} : { cert: certPem, key: keyPem }),
      onListen: () => {},
      onError: () => errors(500, "internal error"),
    }, handle);
    port = server.addr.port;
  };
  listen();

  const close = async () => {
    if (closing.signal.aborted) return;
    closing.abort();
    for (const [id, l] of [...leases]) await dropLogin(id, l);
    await server?.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  return {
    addr: `${options.plain ? "http" : "https"}://127.0.0.1:${port}`,
    caFile: ca.certFile,
    requests,
    usernames,
    counts,
    policy: (name, p) => void policies.set(name, p),
    token: (o) => issue(o).token,
    mountKv: (mount, version, ns = "") =>
      void kv.set(`${ns}|${mount}`, { version, secrets: new Map() }),
    putKv: (mount, path, data, ns = "") => {
      const m = kv.get(`${ns}|${mount}`);
      if (!m) throw new Error(`no KV mount ${mount}`);
      const versions = m.secrets.get(path) ?? [];
      if (m.version === 1) versions.length = 0;
      versions.push(data);
      m.secrets.set(path, versions);
    },
    approle: (name, o) => {
      const roleId = crypto.randomUUID(), secretId = crypto.randomUUID();
      approles.set(name, {
        roleId,
        secretIds: new Set([secretId]),
        policies: o.policies,
        ttl: o.tokenTtl ?? 3600,
        maxTtl: o.tokenMaxTtl ?? 24 * 3600,
      });
      return { roleId, secretId };
    },
    kubernetesKey: (pem) => void (k8sKeyPem = pem),
    kubernetesRole: (name, o) =>
      void k8sRoles.set(name, {
        saNames: o.saNames,
        saNamespaces: o.saNamespaces,
        policies: o.policies,
        ttl: o.tokenTtl ?? 3600,
      }),
    dbRole: (mount, name, role) => void dbRoles.set(`${mount}/${name}`, role),
    liveLeases: () => [...leases.keys()],
    fault: async (f) => {
      const wasRefusing = currentFault?.kind === "refuse";
      currentFault = f;
      if (f?.kind === "refuse" && !wasRefusing) {
        await server?.shutdown();
        server = undefined;
      } else if (f?.kind !== "refuse" && wasRefusing) listen();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Creation and revocation statements for a PostgreSQL role, as Vault's plugin examples use. */
export const PG_STATEMENTS = {
  creation:
    `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
  revocation: `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';` +
    ` DROP ROLE IF EXISTS "{{name}}";`,
};

/** Creation and revocation statements for a MariaDB user. */
export const MARIADB_STATEMENTS = {
  creation: `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';`,
  revocation: `DROP USER IF EXISTS '{{name}}'@'%';`,
};
