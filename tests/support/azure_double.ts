/**
 * A test double of the Azure API subset Hecate uses, on one loopback port (Deno.serve on
 * 127.0.0.1): Key Vault's get-secret (`GET /secrets/NAME[/VERSION]?api-version=7.4`), the Entra
 * token endpoint (`POST /TENANT/oauth2/v2.0/token`, client-credentials grant), the instance
 * metadata service (`GET /metadata/identity/oauth2/token`, header `Metadata: true`) and App
 * Service's identity endpoint (`GET /msi/token`, header `X-IDENTITY-HEADER`).
 *
 * It checks authentication as the services document it: a client secret must match; a client
 * assertion must verify (npm `jose`) against the registered certificate's public key, name that
 * certificate by its `x5t#S256`, be addressed to this token URL, be unexpired and carry a fresh
 * `jti`; a federated (workload identity) assertion must verify against the test issuer's key with
 * audience `api://AzureADTokenExchange` and the registered subject. Key Vault accepts only
 * bearer tokens this double issued for `https://vault.azure.net`, until they expire, and answers
 * 401 with a `WWW-Authenticate` challenge otherwise.
 *
 * @module
 */

import { decodeProtectedHeader, importX509, jwtVerify } from "jose";
import { createHash, X509Certificate } from "node:crypto";

/** A public key as `jose` takes it. */
export type JoseKey = Awaited<ReturnType<typeof importX509>>;

/** An app registration. */
export interface AzureClient {
  /** Its client secret. */
  secret?: string;
  /** Its certificate (PEM), for client assertions. */
  certPem?: string;
  /** A federated credential: the external issuer, its key and the subject. */
  federated?: { issuer: string; key: JoseKey; subject: string };
}

/** Options for {@link startAzureDouble}. */
export interface AzureDoubleOptions {
  tenant: string;
  clients: Record<string, AzureClient>;
  /** Secrets by name; the last version is the current one. */
  secrets: Record<string, { value: string; version: string }[]>;
  /** Whether IMDS answers with a token (else 400 "no identity"). @default {true} */
  imds?: boolean;
  /** App Service's identity header value; unset: /msi/token refuses all. */
  identityHeader?: string;
  /** Lifetime of issued tokens in seconds. @default {3600} */
  tokenLifetimeS?: number;
  /** Resources tokens may be asked for. @default {["https://vault.azure.net"]} */
  resources?: string[];
  /** Called with each token issued and its resource (e.g. to tell a database double). */
  onIssue?: (token: string, resource: string) => void;
}

/** A running double. */
export interface AzureDouble {
  /** `http://127.0.0.1:PORT` (use as AZURE_AUTHORITY_HOST, the vault URL, IMDS host...). */
  readonly url: string;
  /** Count of calls by route (`token`, `imds`, `msi`, `secret`). */
  readonly calls: Record<string, number>;
  /** Tokens issued. */
  readonly issued: string[];
  /** Makes every issued token expired (the service's clock moved on). */
  expireTokens(): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const RESOURCE = "https://vault.azure.net";
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function s256(pem: string): string {
  const der = new X509Certificate(pem).raw;
  return createHash("sha256").update(der).digest("base64url");
}

/**
 * Starts the double.
 *
 * @param o The tenant, app registrations, secrets and identities.
 * @returns The running double.
 */
export function startAzureDouble(o: AzureDoubleOptions): AzureDouble {
  const tokens = new Map<string, { expiresAt: number; resource: string }>();
  const issued: string[] = [];
  const seenJti = new Set<string>();
  const calls: Record<string, number> = {};
  const lifetime = o.tokenLifetimeS ?? 3600;
  const resources = o.resources ?? [RESOURCE];
  const count = (k: string) => void (calls[k] = (calls[k] ?? 0) + 1);
  const issue = (resource: string) => {
    const token = `azure-double-token-${crypto.randomUUID()}`;
    tokens.set(token, { expiresAt: Date.now() + lifetime * 1000, resource });
    issued.push(token);
    o.onIssue?.(token, resource);
    return token;
  };
  const invalid = (code: string) => json(401, { error: "invalid_client", error_description: code });

  async function tokenEndpoint(req: Request, url: URL): Promise<Response> {
    count("token");
    const m = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (req.method !== "POST" || !m) return json(404, { error: "not_found" });
    if (m[1] !== o.tenant) return json(400, { error: "invalid_request" });
    const form = Object.fromEntries(new URLSearchParams(await req.text()));
    if (form.grant_type !== "client_credentials") {
      return json(400, { error: "unsupported_grant_type" });
    }
    const client = o.clients[form.client_id ?? ""];
    if (!client) return json(400, { error: "unauthorized_client" });
    const resource = resources.find((r) => form.scope === `${r}/.default`);
    if (!resource) return json(400, { error: "invalid_scope" });
    if (form.client_secret !== undefined) {
      if (!client.secret || form.client_secret !== client.secret) return invalid("AADSTS7000215");
    } else if (form.client_assertion_type === JWT_BEARER && form.client_assertion) {
      const assertion = form.client_assertion;
      let ok = false;
      try {
        const header = decodeProtectedHeader(assertion);
        // A federated credential's issuer is external; a certificate's is the client itself.
        const claims = JSON.parse(
          atob(assertion.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")),
        );
        if (client.federated && claims.iss === client.federated.issuer) {
          const { payload } = await jwtVerify(assertion, client.federated.key, {
            issuer: client.federated.issuer,
            audience: "api://AzureADTokenExchange",
            subject: client.federated.subject,
          });
          ok = payload.exp !== undefined;
        } else if (client.certPem) {
          if (header["x5t#S256"] !== s256(client.certPem)) throw new Error("unknown thumbprint");
          const alg = header.alg === "PS256" ? "PS256" : "RS256";
          const key = await importX509(client.certPem, alg);
          const { payload } = await jwtVerify(assertion, key, {
            algorithms: ["RS256", "PS256"],
            issuer: form.client_id!,
            subject: form.client_id!,
            audience: url.href,
          });
          if (payload.exp === undefined || typeof payload.jti !== "string") {
            throw new Error("claims");
          }
          if (seenJti.has(payload.jti)) throw new Error("replayed");
          seenJti.add(payload.jti);
          ok = true;
        }
      } catch {
        ok = false;
      }
      if (!ok) return invalid("AADSTS700027");
    } else return invalid("AADSTS7000216");
    return json(200, {
      token_type: "Bearer",
      expires_in: lifetime,
      ext_expires_in: lifetime,
      access_token: issue(resource),
    });
  }

  function managedIdentity(req: Request, url: URL, kind: "imds" | "msi"): Response {
    count(kind);
    const resource = url.searchParams.get("resource") ?? "";
    if (kind === "imds") {
      if (req.headers.get("metadata") !== "true") {
        return json(400, {
          error: "invalid_request",
          error_description: "Required metadata header not specified",
        });
      }
      if (!url.searchParams.get("api-version")) return json(400, { error: "invalid_request" });
      if (o.imds === false) {
        return json(400, { error: "invalid_request", error_description: "Identity not found" });
      }
    } else {
      if (!o.identityHeader || req.headers.get("x-identity-header") !== o.identityHeader) {
        return json(401, { error: "unauthorized" });
      }
    }
    if (!resources.includes(resource)) return json(400, { error: "invalid_resource" });
    const token = issue(resource);
    const expiresOn = Math.floor(Date.now() / 1000) + lifetime;
    // IMDS gives the numbers as strings; App Service gives expires_on as a number.
    return json(200, {
      access_token: token,
      expires_in: kind === "imds" ? String(lifetime) : undefined,
      expires_on: kind === "imds" ? String(expiresOn) : expiresOn,
      resource,
      token_type: "Bearer",
    });
  }

  function getSecret(req: Request, url: URL): Response {
    count("secret");
    const challenge = {
      "www-authenticate":
        `Bearer authorization="https://login.microsoftonline.com/${o.tenant}", resource="${RESOURCE}"`,
    };
    const auth = req.headers.get("authorization") ?? "";
    const t = tokens.get(auth.replace(/^Bearer /, ""));
    if (!auth.startsWith("Bearer ") || !t || t.expiresAt <= Date.now() || t.resource !== RESOURCE) {
      return json(401, {
        error: {
          code: "Unauthorized",
          message: "AKV10000: Request is missing a Bearer or PoP token.",
        },
      }, challenge);
    }
    if (url.searchParams.get("api-version") !== "7.4") {
      return json(400, { error: { code: "BadParameter", message: "api-version" } });
    }
    const m = /^\/secrets\/([A-Za-z0-9-]+)(?:\/([0-9a-f]{32}))?$/.exec(url.pathname);
    const versions = m ? o.secrets[m[1]!] : undefined;
    const v = versions && (m![2] ? versions.find((x) => x.version === m![2]) : versions.at(-1));
    if (!v) return json(404, { error: { code: "SecretNotFound", message: "not found" } });
    return json(200, {
      value: v.value,
      id: `https://double.vault.azure.net/secrets/${m![1]}/${v.version}`,
      attributes: { enabled: true },
    });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/metadata/identity/oauth2/token") {
      return managedIdentity(req, url, "imds");
    }
    if (url.pathname === "/msi/token") return managedIdentity(req, url, "msi");
    if (url.pathname.startsWith("/secrets/")) return getSecret(req, url);
    return tokenEndpoint(req, url);
  });
  const close = async () => await server.shutdown();
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    calls,
    issued,
    expireTokens() {
      for (const t of tokens.values()) t.expiresAt = 0;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
