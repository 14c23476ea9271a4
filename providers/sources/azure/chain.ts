/**
 * The Azure credential chain, in the order of the Azure SDKs' DefaultAzureCredential:
 *
 * 1. environment: `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` with `AZURE_CLIENT_SECRET`, or with
 *    `AZURE_CLIENT_CERTIFICATE_PATH` (a PEM file holding the certificate and its key, optionally
 *    `AZURE_CLIENT_CERTIFICATE_PASSWORD`; the client assertion is an RS256 JWT naming the
 *    certificate by its `x5t#S256` thumbprint);
 * 2. workload identity: `AZURE_FEDERATED_TOKEN_FILE` + `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` (the
 *    file's JWT is the client assertion);
 * 3. managed identity: App Service's `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, else the instance
 *    metadata service (IMDS, 169.254.169.254, or `AZURE_POD_IDENTITY_AUTHORITY_HOST`), with
 *    `AZURE_CLIENT_ID` naming a user-assigned identity;
 * 4. the Azure CLI: `az account get-access-token --resource R -o json`.
 *
 * Entra is reached at `AZURE_AUTHORITY_HOST` (default `https://login.microsoftonline.com`). A step
 * that is configured and fails is an error (no fall-through to a weaker identity); an absent IMDS
 * or `az` moves on. Tokens are cached per process, per resource and environment, until five
 * minutes before they expire.
 *
 * @module
 */

import { HecateError } from "../../../src/errors.ts";
import {
  type AccessToken,
  cloudError,
  cloudFetch,
  type Env,
  expiryOf,
  jsonObject,
  safeEndpoint,
  TokenCache,
  type Where,
} from "../cloud_http.ts";
import { runCaptured } from "../../../src/run/spawn.ts";

const TITLE = "Azure credentials";
const cache = new TokenCache();

/** Forgets cached tokens (tests; a library user rotating credentials). */
export function clearAzureTokenCache(): void {
  cache.clear();
}

const KEY_VARS = [
  "HOME",
  "PATH",
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_CLIENT_SECRET",
  "AZURE_CLIENT_CERTIFICATE_PATH",
  "AZURE_CLIENT_CERTIFICATE_PASSWORD",
  "AZURE_FEDERATED_TOKEN_FILE",
  "AZURE_AUTHORITY_HOST",
  "IDENTITY_ENDPOINT",
  "IDENTITY_HEADER",
  "AZURE_POD_IDENTITY_AUTHORITY_HOST",
  "AZURE_CONFIG_DIR",
];

/** What a chain run needs. */
export interface AzureChainOptions {
  readonly env: Env;
  /** The resource, e.g. `https://vault.azure.net`. */
  readonly resource: string;
  readonly signal?: AbortSignal | undefined;
  /** Per IMDS probe. @default {1000} */
  readonly imdsTimeoutMs?: number;
  /** Only the managed identity step (Azure SQL's `--token-mode managed-identity`). */
  readonly managedIdentityOnly?: boolean;
}

/**
 * A bearer token for a resource from the chain, cached per process until shortly before expiry.
 *
 * @param o The environment, resource and signal.
 * @returns The token (keep it in memory only).
 * @throws {HecateError} `secret_unresolved` (exit 18) naming the step and its status.
 */
export async function azureToken(o: AzureChainOptions): Promise<AccessToken> {
  const key = JSON.stringify([
    o.resource,
    o.managedIdentityOnly ?? false,
    ...KEY_VARS.map((n) => o.env(n) ?? null),
  ]);
  return await cache.token(key, () => runChain(o));
}

function step(name: string): Where {
  return { title: TITLE, ref: name };
}

async function runChain(o: AzureChainOptions): Promise<AccessToken> {
  const env = o.env;
  if (o.managedIdentityOnly) return await managedIdentity(o);
  const tenant = env("AZURE_TENANT_ID"), client = env("AZURE_CLIENT_ID");
  const secret = env("AZURE_CLIENT_SECRET"), certPath = env("AZURE_CLIENT_CERTIFICATE_PATH");
  if (tenant && client && (secret || certPath)) {
    const w = step("environment");
    const form: Record<string, string> = {};
    if (secret) form.client_secret = secret;
    else {
      form.client_assertion_type = JWT_BEARER;
      form.client_assertion = await certificateAssertion(w, env, tenant, client, certPath!);
    }
    return await entraToken(w, env, tenant, client, o, form);
  }
  const federated = env("AZURE_FEDERATED_TOKEN_FILE");
  if (federated && tenant && client) {
    const w = step("workload identity");
    let assertion: string;
    try {
      // Read on every run: the platform rotates the file.
      assertion = (await Deno.readTextFile(federated)).trim();
    } catch {
      throw cloudError(w, "failed", "check AZURE_FEDERATED_TOKEN_FILE", "token file unreadable");
    }
    return await entraToken(w, env, tenant, client, o, {
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    });
  }
  const appService = env("IDENTITY_ENDPOINT"), header = env("IDENTITY_HEADER");
  if (appService && header) return await appServiceToken(env, appService, header, o);
  const tried = ["environment", "workload identity", "managed identity (IMDS)"];
  const fromImds = await imdsToken(env, o);
  if (fromImds) return fromImds;
  const fromCli = await azureCliToken(o);
  if (fromCli) return fromCli;
  tried.push("Azure CLI");
  throw cloudError(
    step("DefaultAzureCredential"),
    "not_found",
    "set AZURE_TENANT_ID/AZURE_CLIENT_ID with a secret or certificate, run `az login`, or run where a managed identity is attached",
    `none found; tried ${tried.join(", ")}`,
  );
}

async function managedIdentity(o: AzureChainOptions): Promise<AccessToken> {
  const appService = o.env("IDENTITY_ENDPOINT"), header = o.env("IDENTITY_HEADER");
  if (appService && header) return await appServiceToken(o.env, appService, header, o);
  const fromImds = await imdsToken(o.env, o);
  if (fromImds) return fromImds;
  throw cloudError(
    step("managed identity"),
    "not_found",
    "run where a managed identity is attached (VM, App Service, AKS with IMDS)",
    "no App Service endpoint and no IMDS answer",
  );
}

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

function authority(w: Where, env: Env): URL {
  return safeEndpoint(
    w,
    "AZURE_AUTHORITY_HOST",
    env("AZURE_AUTHORITY_HOST") || "https://login.microsoftonline.com",
  );
}

const TENANT = /^[A-Za-z0-9.-]{1,128}$/;

function tokenUrl(w: Where, env: Env, tenant: string): string {
  if (!TENANT.test(tenant)) throw cloudError(w, "failed", "check AZURE_TENANT_ID", "bad tenant");
  return `${authority(w, env).href.replace(/\/$/, "")}/${tenant}/oauth2/v2.0/token`;
}

async function entraToken(
  w: Where,
  env: Env,
  tenant: string,
  client: string,
  o: AzureChainOptions,
  form: Record<string, string>,
): Promise<AccessToken> {
  const url = tokenUrl(w, env, tenant);
  const body = new URLSearchParams({
    client_id: client,
    scope: `${o.resource}/.default`,
    grant_type: "client_credentials",
    ...form,
  });
  const r = await cloudFetch(w, url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: body.toString(),
  }, o.signal);
  return tokenAnswer(w, r.status, r.body, "check the app registration and its credential");
}

// Entra's error codes are short identifiers; anything else from the network is not echoed.
const OAUTH_ERROR = /^[a-z_]{1,40}$/;

function tokenAnswer(w: Where, status: number, body: string, hint: string): AccessToken {
  if (status !== 200) {
    let code = "";
    try {
      const e = JSON.parse(body)?.error;
      if (typeof e === "string" && OAUTH_ERROR.test(e)) code = e;
    } catch {
      // Not JSON: the status says enough.
    }
    const s = status === 400 || status === 401 || status === 403 ? "forbidden" : "failed";
    throw cloudError(w, s, hint, `${code ? `${code}, ` : ""}HTTP ${status}`);
  }
  const j = jsonObject(w, body);
  const token = j.access_token, expiresAt = expiryOf(j);
  if (typeof token !== "string" || !token || !Number.isFinite(expiresAt)) {
    throw cloudError(w, "malformed", "the token answer lacks access_token or its expiry");
  }
  return { token, expiresAt, origin: w.ref };
}

async function certificateAssertion(
  w: Where,
  env: Env,
  tenant: string,
  client: string,
  path: string,
): Promise<string> {
  let pem: string;
  try {
    pem = await Deno.readTextFile(path);
  } catch {
    throw cloudError(w, "failed", "check AZURE_CLIENT_CERTIFICATE_PATH", "certificate unreadable");
  }
  // The file holds the certificate and its key, as the Azure SDKs expect; the assertion is the
  // one the token modes of Azure SQL logins already build (RS256 with x5t and x5t#S256).
  try {
    const cert = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(pem)?.[0];
    const key = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[^-]+-----END \1PRIVATE KEY-----/.exec(pem)
      ?.[0];
    if (!cert || !key) throw new Error("no certificate or key block");
    // Loaded only for this step: node:crypto costs a cron run's start-up time otherwise.
    const { clientAssertion } = await import("../../token/assertion.ts");
    return await clientAssertion({
      clientId: client,
      audience: tokenUrl(w, env, tenant),
      certPem: cert,
      keyPem: key,
      passphrase: env("AZURE_CLIENT_CERTIFICATE_PASSWORD") || undefined,
    });
  } catch (e) {
    if (e instanceof HecateError && e.code === "secret_unresolved") throw e;
    throw cloudError(
      w,
      "failed",
      "the PEM file must hold the certificate and its private key",
      "certificate or key unusable",
    );
  }
}

async function appServiceToken(
  env: Env,
  endpoint: string,
  header: string,
  o: AzureChainOptions,
): Promise<AccessToken> {
  const w = step("managed identity (App Service)");
  const url = safeEndpoint(w, "IDENTITY_ENDPOINT", endpoint);
  url.searchParams.set("api-version", "2019-08-01");
  url.searchParams.set("resource", o.resource);
  const client = env("AZURE_CLIENT_ID");
  if (client) url.searchParams.set("client_id", client);
  const r = await cloudFetch(w, url, { headers: { "X-IDENTITY-HEADER": header } }, o.signal);
  return tokenAnswer(w, r.status, r.body, "check the app's managed identity");
}

async function imdsToken(env: Env, o: AzureChainOptions): Promise<AccessToken | undefined> {
  const w = step("managed identity (IMDS)");
  // IMDS is plain http by design on the link-local address, which never leaves the host; an
  // override must be https, or http on loopback.
  const override = env("AZURE_POD_IDENTITY_AUTHORITY_HOST");
  const base = override
    ? safeEndpoint(w, "AZURE_POD_IDENTITY_AUTHORITY_HOST", override)
    : new URL("http://169.254.169.254");
  const url = new URL(`${base.href.replace(/\/$/, "")}/metadata/identity/oauth2/token`);
  url.searchParams.set("api-version", "2018-02-01");
  url.searchParams.set("resource", o.resource);
  const client = env("AZURE_CLIENT_ID");
  if (client) url.searchParams.set("client_id", client);
  let r;
  try {
    r = await cloudFetch(
      w,
      url,
      { headers: { Metadata: "true" } },
      o.signal,
      o.imdsTimeoutMs ?? 1000,
    );
  } catch (e) {
    // No IMDS here (not an Azure machine): the next step is tried, as the SDK does.
    if (o.signal?.aborted) throw e;
    return undefined;
  }
  // IMDS answers 400 when no identity is assigned: also "not here".
  if (r.status === 400 && /identity/i.test(r.body)) return undefined;
  return tokenAnswer(w, r.status, r.body, "check the machine's managed identity");
}

async function azureCliToken(o: AzureChainOptions): Promise<AccessToken | undefined> {
  const w = step("Azure CLI");
  const az = await onPath(o.env, "az");
  // Not installed: the chain ends here, as the SDK's does.
  if (!az) return undefined;
  let out: Deno.CommandOutput;
  try {
    out = await runCaptured(
      az,
      ["account", "get-access-token", "--resource", o.resource, "-o", "json"],
      o.signal ? { signal: o.signal } : {},
    );
  } catch (e) {
    throw cloudError(w, "failed", "check the az installation", e instanceof Error ? e.name : "");
  }
  if (!out.success) {
    // az's stderr may quote anything: it is not echoed.
    throw cloudError(w, "forbidden", "run `az login`", `az exited with ${out.code}`);
  }
  const j = jsonObject(w, new TextDecoder().decode(out.stdout));
  const token = j.accessToken;
  const epoch = Number(j.expires_on);
  const expiresAt = Number.isFinite(epoch) && epoch > 0
    ? epoch * 1000
    : Date.parse(String(j.expiresOn ?? ""));
  if (typeof token !== "string" || !token || !Number.isFinite(expiresAt)) {
    throw cloudError(w, "malformed", "az did not print accessToken and its expiry");
  }
  return { token, expiresAt, origin: w.ref };
}

/** The first executable `name` in the PATH of the environment the sources see. */
async function onPath(env: Env, name: string): Promise<string | undefined> {
  for (const dir of (env("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const st = await Deno.stat(`${dir}/${name}`);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return `${dir}/${name}`;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}
