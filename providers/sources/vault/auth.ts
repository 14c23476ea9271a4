/**
 * Getting a Vault token: a token sealed in the profile, else the one the user already has
 * (`VAULT_TOKEN`, then `~/.vault-token` as the `vault` CLI's token helper writes it), an AppRole login
 * (role id from the profile, secret id sealed in the profile or read from a 0600 file) or a
 * Kubernetes login (the pod's service-account JWT). Login tokens are kept in memory for the
 * process, renewed (`renew-self`) after two thirds of their TTL and obtained again when renewal
 * fails or they expired, so a long-lived pool never logs in per statement.
 *
 * @module
 */

import { vaultRequest } from "./client.ts";
import { vaultError } from "./errors.ts";
import type { VaultSettings } from "./settings.ts";

/** What a call needs from the framework's context. */
export interface AuthContext {
  readonly signal: AbortSignal;
  readonly credentials: Readonly<Record<string, string>>;
  readonly env: (name: string) => string | undefined;
}

interface Held {
  token: string;
  obtainedAt: number;
  ttlMs: number;
  renewable: boolean;
}

/** Login tokens by endpoint, namespace and identity (never persisted). */
const held = new Map<string, Held>();

function key(s: VaultSettings): string {
  const a = s.auth;
  const who = a.method === "approle"
    ? `approle:${a.mount}:${a.roleId}`
    : a.method === "kubernetes"
    ? `k8s:${a.mount}:${a.role}:${a.jwtFile}`
    : "token";
  return `${s.endpoint.addr}|${s.endpoint.namespace ?? ""}|${who}`;
}

/** Forgets every login token (tests; and after a 403 the next call logs in again). */
export function forgetVaultTokens(): void {
  held.clear();
}

/**
 * Drops the held login for these settings (after Vault answered 403 with it).
 *
 * @param s The settings.
 */
export function dropVaultToken(s: VaultSettings): void {
  held.delete(key(s));
}

async function readPrivate(path: string, what: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw vaultError("vault", "login failed", `${what} file ${path} cannot be read`);
  }
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    throw vaultError(
      "vault",
      "secret id file readable by others",
      `${path}, mode ${(info.mode & 0o777).toString(8)}`,
    );
  }
  return (await Deno.readTextFile(path)).trim();
}

async function userToken(ctx: AuthContext): Promise<string> {
  // A token sealed in the profile was set for it on purpose: it comes before the person's own.
  const stored = ctx.credentials.token;
  if (stored) return stored;
  const fromEnv = ctx.env("VAULT_TOKEN");
  if (fromEnv) return fromEnv.trim();
  const home = ctx.env("HOME");
  if (home) {
    try {
      const t = (await Deno.readTextFile(`${home}/.vault-token`)).trim();
      if (t) return t;
    } catch {
      // no token helper file
    }
  }
  throw vaultError("vault", "no token");
}

async function login(s: VaultSettings, ctx: AuthContext): Promise<Held> {
  const a = s.auth;
  let path: string, body: Record<string, string>;
  if (a.method === "approle") {
    const secretId = ctx.credentials.secret_id ??
      (a.secretIdFile ? await readPrivate(a.secretIdFile, "AppRole secret id") : undefined);
    if (!secretId) {
      throw vaultError(
        "vault",
        "login failed",
        "no AppRole secret id (sealed or --vault-secret-id-file)",
      );
    }
    path = `auth/${a.mount}/login`;
    body = { role_id: a.roleId, secret_id: secretId };
  } else if (a.method === "kubernetes") {
    let jwt: string;
    try {
      jwt = (await Deno.readTextFile(a.jwtFile)).trim();
    } catch {
      throw vaultError(
        "vault",
        "login failed",
        `service-account token ${a.jwtFile} cannot be read`,
      );
    }
    path = `auth/${a.mount}/login`;
    body = { role: a.role, jwt };
  } else throw new Error("unreachable");
  const ans = await vaultRequest(s.endpoint, "POST", path, {
    body,
    signal: ctx.signal,
    ref: "vault",
  });
  if (ans.status !== 200) {
    throw vaultError("vault", "login failed", `${a.method} login: HTTP ${ans.status}`);
  }
  const auth = ans.body?.auth as Record<string, unknown> | undefined;
  if (!auth || typeof auth.client_token !== "string") {
    throw vaultError("vault", "malformed answer", "login without auth.client_token");
  }
  return {
    token: auth.client_token,
    obtainedAt: Date.now(),
    ttlMs: Math.max(0, Number(auth.lease_duration) || 0) * 1000,
    renewable: auth.renewable === true,
  };
}

async function renewSelf(s: VaultSettings, h: Held, ctx: AuthContext): Promise<Held | undefined> {
  try {
    const ans = await vaultRequest(s.endpoint, "POST", "auth/token/renew-self", {
      token: h.token,
      body: {},
      signal: ctx.signal,
      ref: "vault",
    });
    const auth = ans.body?.auth as Record<string, unknown> | undefined;
    if (ans.status !== 200 || !auth) return undefined;
    const ttlMs = Math.max(0, Number(auth.lease_duration) || 0) * 1000;
    // Renewal capped by the token's max TTL: too little left is as good as expired.
    if (ttlMs < 2000) return undefined;
    return { ...h, obtainedAt: Date.now(), ttlMs, renewable: auth.renewable === true };
  } catch {
    return undefined;
  }
}

/**
 * Returns a token for these settings, logging in, renewing or logging in again as needed.
 *
 * @param s The settings.
 * @param ctx Signal, source credentials, environment.
 * @returns The token (keep it in memory; never print it).
 * @throws {HecateError} `secret_unresolved` (no token, login failed, unreachable, timed out).
 */
export async function vaultToken(s: VaultSettings, ctx: AuthContext): Promise<string> {
  if (s.auth.method === "token") return await userToken(ctx);
  const k = key(s);
  const now = Date.now();
  let h = held.get(k);
  if (h && h.ttlMs > 0) {
    const age = now - h.obtainedAt;
    if (age >= h.ttlMs) h = undefined;
    else if (age >= (h.ttlMs * 2) / 3) h = h.renewable ? await renewSelf(s, h, ctx) : undefined;
  }
  if (!h) h = await login(s, ctx);
  held.set(k, h);
  return h.token;
}

/**
 * Extends a token the user gave (`renew-self`), ignoring any failure: the call that needs the
 * token reports a refusal itself.
 *
 * @param s The settings.
 * @param token The token.
 * @param signal Aborted at the source timeout.
 */
export async function renewUserToken(
  s: VaultSettings,
  token: string,
  signal: AbortSignal,
): Promise<void> {
  try {
    await vaultRequest(s.endpoint, "POST", "auth/token/renew-self", {
      token,
      body: {},
      signal,
      ref: "vault",
    });
  } catch {
    // best effort
  }
}
