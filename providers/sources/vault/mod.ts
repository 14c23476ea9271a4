/**
 * The HashiCorp Vault / OpenBao secret source: schemes `vault` (KV v1/v2) and `vault-db`
 * (dynamic database credentials under a lease). Settings come from the profile's `vault.*` params
 * or the `vault` CLI's variables (./settings.ts); source credentials (an AppRole secret id, a
 * token) from the profile's sealed record. A 403 with a login token is retried once after a fresh
 * login (the token may have been revoked); a 403 with a user token is reported.
 *
 * @module
 */

import { HecateError } from "../../../src/errors.ts";
import type {
  Lease,
  ParsedRef,
  Resolved,
  SecretSource,
  SourceContext,
  SourceHealth,
} from "../source.ts";
import { vaultRequest } from "./client.ts";
import { isTokenRefused } from "./errors.ts";
import { dropVaultToken, renewUserToken, vaultToken } from "./auth.ts";
import { readKv } from "./kv.ts";
import { readCreds } from "./database.ts";
import { renewLease, revokeLease } from "./lease.ts";
import { type VaultSettings, vaultSettings } from "./settings.ts";
import { parseVaultRef } from "./ref.ts";

/** The framework's context, with the profile's params (the `vault.*` settings). */
export type VaultContext = SourceContext & {
  readonly params?: Readonly<Record<string, string>> | undefined;
};

async function settingsOf(ctx: VaultContext): Promise<VaultSettings> {
  return await vaultSettings(ctx.params ?? {}, ctx.env);
}

/** Runs a call with a token; on 403 with a login token, logs in again once and retries. */
async function withToken<T>(
  s: VaultSettings,
  ctx: VaultContext,
  call: (token: string) => Promise<T>,
): Promise<T> {
  try {
    return await call(await vaultToken(s, ctx));
  } catch (e) {
    if (!isTokenRefused(e) || s.auth.method === "token") throw e;
    dropVaultToken(s);
    return await call(await vaultToken(s, ctx));
  }
}

/**
 * The Vault source: both schemes (for tests and tools; the registry holds ./source.ts's two, which
 * load this module on their first call).
 */
export const vaultSource: SecretSource = {
  schemes: ["vault", "vault-db"],
  title: "HashiCorp Vault",
  credentialScope: "vault",
  parse: (scheme, rest) => parseVaultRef(scheme, rest),
  async resolve(ref: ParsedRef, ctx: VaultContext): Promise<Resolved> {
    const s = await settingsOf(ctx);
    return await withToken(
      s,
      ctx,
      (token) =>
        ref.scheme === "vault-db"
          ? readCreds(s, ref, token, ctx.signal)
          : readKv(s, ref, token, ctx.signal),
    );
  },
  async renew(lease: Lease, ctx: VaultContext): Promise<Lease> {
    const s = await settingsOf(ctx);
    return await withToken(s, ctx, async (token) => {
      // A token Hecate did not obtain (VAULT_TOKEN, ~/.vault-token, sealed) is renewed with the
      // lease it holds, so a long-lived pool does not outlive it; best effort (it may not be
      // renewable, or be at its max TTL).
      if (s.auth.method === "token") await renewUserToken(s, token, ctx.signal);
      return await renewLease(s, lease, token, ctx.signal);
    });
  },
  async revoke(lease: Lease, ctx: VaultContext): Promise<void> {
    const s = await settingsOf(ctx);
    await withToken(s, ctx, (token) => revokeLease(s, lease, token, ctx.signal));
  },
  async health(_ref: ParsedRef, ctx: VaultContext): Promise<SourceHealth> {
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    try {
      const s = await settingsOf(ctx);
      const a = await vaultRequest(s.endpoint, "GET", "sys/health?standbyok=true", {
        signal: ctx.signal,
        ref: "vault",
      });
      const b = a.body ?? {};
      if (a.status !== 200 && a.status !== 429) {
        return { ok: false, detail: b.sealed ? "sealed" : `HTTP ${a.status}`, latencyMs: ms() };
      }
      const server = `${String(b.version ?? "?")} ${b.standby ? "standby" : "active"}`;
      // Whether Hecate's token works: lookup-self, allowed by Vault's default policy.
      const token = await vaultToken(s, ctx);
      const self = await vaultRequest(s.endpoint, "GET", "auth/token/lookup-self", {
        token,
        signal: ctx.signal,
        ref: "vault",
      });
      if (self.status !== 200) {
        return {
          ok: false,
          detail: `${server}, token refused (HTTP ${self.status})`,
          latencyMs: ms(),
        };
      }
      const ttl = (self.body?.data as Record<string, unknown> | undefined)?.ttl;
      const left = typeof ttl === "number" && ttl > 0 ? `, token ttl ${ttl}s` : "";
      return { ok: true, detail: `${server}${left}`, latencyMs: ms() };
    } catch (e) {
      const detail = e instanceof HecateError
        ? e.message.replace(/^Secret source [^"]*"[^"]*": /, "")
        : "error";
      return { ok: false, detail, latencyMs: ms() };
    }
  },
};

export { forgetVaultTokens } from "./auth.ts";
export { K8S_JWT_FILE, validateVaultParams } from "./settings.ts";
