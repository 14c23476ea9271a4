/**
 * `token` authentication for SQL Server: an Entra ID (Azure AD) access token handed to tedious as
 * `azure-active-directory-access-token`. The token is either stored in the vault, or fetched at
 * connect time by the OAuth2 client-credentials grant with a client secret or with a
 * certificate-signed client assertion (the certificate method for SQL Server). Fetched tokens are
 * cached in memory until shortly before they expire.
 *
 * Params by `tokenMode`:
 * - `stored`: secret `token`.
 * - `client-secret`: `tenantId`, `clientId`, optional `tokenUrl`, `scope`; secret `clientSecret`.
 * - `client-certificate`: `tenantId`, `clientId`, `certFile`, `keyFile`, optional `tokenUrl`,
 *   `scope`; optional secret `keyPassphrase`.
 * - `default`: the Azure credential chain (providers/sources/azure/chain.ts, as
 *   DefaultAzureCredential) from the process environment; optional `scope`.
 * - `managed-identity`: only that chain's managed identity step; optional `scope`.
 *
 * @module
 */

import { sha256 as sha256Digest } from "../src/sha256.ts";
import { toHex } from "../src/vault/encoding.ts";
import type { AuthProvider, ProviderFields } from "./mod.ts";
import { HecateError } from "../src/errors.ts";
import type { Profile } from "../src/profile.ts";
import { requestToken, TokenCache } from "./token/oauth.ts";

/** The token modes. */
export const TOKEN_MODES = [
  "stored",
  "client-secret",
  "client-certificate",
  "default",
  "managed-identity",
] as const;

/** The scope for Azure SQL Database and SQL Server with Entra ID. */
export const DEFAULT_SCOPE = "https://database.windows.net/.default";

/** Microsoft Entra ID's v2.0 token endpoint for a tenant. */
export function defaultTokenUrl(tenantId: string): string {
  return `https://login.microsoftonline.com/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
}

const FIELDS: Record<(typeof TOKEN_MODES)[number], ProviderFields> = {
  "default": { requiredParams: ["tokenMode"], secretFields: [] },
  "managed-identity": { requiredParams: ["tokenMode"], secretFields: [] },
  "stored": { requiredParams: ["tokenMode"], secretFields: ["token"] },
  "client-secret": {
    requiredParams: ["tokenMode", "tenantId", "clientId"],
    secretFields: ["clientSecret"],
  },
  "client-certificate": {
    requiredParams: ["tokenMode", "tenantId", "clientId", "certFile", "keyFile"],
    secretFields: [],
    optionalSecretFields: ["keyPassphrase"],
  },
};

/** Tokens fetched in this process, shared by every connection. */
export const tokenCache: TokenCache = new TokenCache();

function invalid(p: Profile, what: string): HecateError {
  return new HecateError("invalid_profile", `Profile "${p.name}": ${what}`);
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

async function readFile(p: Profile, field: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    throw invalid(p, `cannot read the ${field} "${path}"`);
  }
}

// A cache key for the token: the hash of what identifies it, each part ended by a NUL
// (node:crypto would start Deno's Node layer on every command just for this).
function sha256(...parts: string[]): string {
  const text = parts.map((part) => `${part}\0`).join("");
  return toHex(sha256Digest(new TextEncoder().encode(text)));
}

/** Entra ID access token for SQL Server; see the module documentation for the params. */
export const tokenLogin: AuthProvider = {
  type: "token",
  engines: ["mssql"],
  secretFields: [],
  requiredFields: ["host"],
  fieldsFor(params) {
    const mode = params.tokenMode as keyof typeof FIELDS;
    return FIELDS[mode] ?? FIELDS.stored;
  },
  validate(p) {
    const mode = p.params?.tokenMode ?? "";
    if (!(TOKEN_MODES as readonly string[]).includes(mode)) {
      throw invalid(p, `unknown token mode "${mode}" (known: ${TOKEN_MODES.join(", ")})`);
    }
    const url = p.params?.tokenUrl;
    if (url !== undefined) {
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        throw invalid(p, `field 'tokenUrl' is not a URL`);
      }
      // The client secret or assertion travels to this URL: only TLS, or this machine.
      if (u.protocol !== "https:" && !(u.protocol === "http:" && LOOPBACK.test(u.hostname))) {
        throw invalid(p, `field 'tokenUrl' must be an https URL (http only for localhost)`);
      }
    }
  },
  async credentials(p, s) {
    const params = p.params ?? {};
    const mode = params.tokenMode;
    if (mode === "stored") return { extra: { accessToken: s.token ?? "" } };
    if (mode === "default" || mode === "managed-identity") {
      // Loaded only for these modes; the chain caches its token per process.
      const { azureToken } = await import("./sources/azure/chain.ts");
      const t = await azureToken({
        env: (n) => Deno.env.get(n),
        resource: (params.scope ?? DEFAULT_SCOPE).replace(/\/\.default$/, ""),
        managedIdentityOnly: mode === "managed-identity",
        signal: AbortSignal.timeout(p.connectTimeoutMs ?? 15_000),
      });
      return { extra: { accessToken: t.token } };
    }
    const tokenUrl = params.tokenUrl ?? defaultTokenUrl(params.tenantId ?? "");
    const scope = params.scope ?? DEFAULT_SCOPE;
    const clientId = params.clientId ?? "";
    const timeoutMs = p.connectTimeoutMs ?? 15_000;
    let token: string;
    if (mode === "client-secret") {
      const clientSecret = s.clientSecret ?? "";
      token = await tokenCache.get(
        sha256(mode, tokenUrl, clientId, scope, clientSecret),
        (now) => requestToken({ tokenUrl, clientId, scope, clientSecret, timeoutMs }, now),
      );
    } else {
      const certPem = await readFile(p, "certificate file", params.certFile ?? "");
      const keyPem = await readFile(p, "key file", params.keyFile ?? "");
      const { clientAssertion } = await import("./token/assertion.ts");
      token = await tokenCache.get(
        sha256(mode ?? "", tokenUrl, clientId, scope, certPem, keyPem),
        (now) =>
          requestToken({
            tokenUrl,
            clientId,
            scope,
            timeoutMs,
            assertion: () =>
              clientAssertion({
                clientId,
                audience: tokenUrl,
                certPem,
                keyPem,
                passphrase: s.keyPassphrase,
              }),
          }, now),
      );
    }
    return { extra: { accessToken: token } };
  },
};
