/**
 * Where a Vault source's settings come from: the profile's `vault.*` params (set with the Vault
 * options of `hecate server add/edit`), else the variables the `vault` CLI reads (`VAULT_ADDR`,
 * `VAULT_CACERT`, `VAULT_NAMESPACE`). None of these is a secret; the AppRole secret id and a
 * stored token are source credentials, sealed in the profile's record.
 *
 * @module
 */

import { HecateError } from "../../../src/errors.ts";
import type { VaultEndpoint } from "./client.ts";
import { vaultError } from "./errors.ts";

/** How Hecate logs in to Vault. */
export type VaultAuth =
  | { readonly method: "token" }
  | {
    readonly method: "approle";
    readonly roleId: string;
    readonly secretIdFile?: string | undefined;
    readonly mount: string;
  }
  | {
    readonly method: "kubernetes";
    readonly role: string;
    readonly jwtFile: string;
    readonly mount: string;
  };

/** Everything a Vault call needs besides the reference. */
export interface VaultSettings {
  readonly endpoint: VaultEndpoint;
  readonly caFile?: string | undefined;
  readonly auth: VaultAuth;
}

/** The default service-account token file inside a Kubernetes pod. */
export const K8S_JWT_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** Vault CLI's default address. */
const DEFAULT_ADDR = "https://127.0.0.1:8200";

function bad(what: string): HecateError {
  return new HecateError("invalid_profile", `Vault source settings: ${what}`);
}

/**
 * Checks the Vault params of a profile (at `server add`/`edit`).
 *
 * @param params The profile's params.
 * @throws {HecateError} `invalid_profile` naming the first problem.
 */
export function validateVaultParams(params: Readonly<Record<string, string>>): void {
  const addr = params["vault.addr"];
  if (addr !== undefined) {
    let u: URL;
    try {
      u = new URL(addr);
    } catch {
      throw bad(`vault.addr "${addr.slice(0, 80)}" is not a URL`);
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") throw bad("vault.addr must be https://");
    if (u.username || u.password || u.search || u.hash) {
      throw bad("vault.addr must be scheme://host[:port] only (no credentials, query or fragment)");
    }
  }
  const tls = params["vault.tls"];
  if (tls !== undefined && !["verify", "insecure", "disable"].includes(tls)) {
    throw bad(`vault.tls must be verify, insecure or disable`);
  }
  const auth = params["vault.auth"] ?? "token";
  if (!["token", "approle", "kubernetes"].includes(auth)) {
    throw bad(`vault.auth must be token, approle or kubernetes`);
  }
  if (auth === "approle" && !params["vault.roleId"]) throw bad("approle needs vault.roleId");
  if (auth === "kubernetes" && !params["vault.role"]) throw bad("kubernetes needs vault.role");
}

/**
 * Builds the settings for one call.
 *
 * @param params The profile's params (`vault.*`).
 * @param env Reads an environment variable.
 * @returns The settings.
 * @throws {HecateError} `invalid_profile` for bad params, `secret_unresolved` for an unreadable
 * CA file or an `http://` address without `vault.tls=disable`.
 */
export async function vaultSettings(
  params: Readonly<Record<string, string>>,
  env: (name: string) => string | undefined,
): Promise<VaultSettings> {
  validateVaultParams(params);
  const addr = (params["vault.addr"] ?? env("VAULT_ADDR") ?? DEFAULT_ADDR).replace(/\/+$/, "");
  const caFile = params["vault.caFile"] ?? (env("VAULT_CACERT") || undefined);
  const namespace = params["vault.namespace"] ?? (env("VAULT_NAMESPACE") || undefined);
  const tlsMode = (params["vault.tls"] ?? "verify") as VaultEndpoint["tlsMode"];
  if (addr.startsWith("http://") && tlsMode !== "disable") {
    throw vaultError("vault", "plain HTTP refused", addr);
  }
  let caPem: string | undefined;
  if (caFile && tlsMode === "verify") {
    try {
      caPem = await Deno.readTextFile(caFile);
    } catch {
      throw vaultError("vault", "CA file unreadable", caFile);
    }
  }
  const method = params["vault.auth"] ?? "token";
  const auth: VaultAuth = method === "approle"
    ? {
      method,
      roleId: params["vault.roleId"]!,
      secretIdFile: params["vault.secretIdFile"],
      mount: params["vault.authMount"] ?? "approle",
    }
    : method === "kubernetes"
    ? {
      method,
      role: params["vault.role"]!,
      jwtFile: params["vault.jwtFile"] ?? K8S_JWT_FILE,
      mount: params["vault.authMount"] ?? "kubernetes",
    }
    : { method: "token" };
  return { endpoint: { addr, namespace, tlsMode, caPem }, caFile, auth };
}
