/**
 * A test double of the Google API subset Hecate uses, on one loopback port: Secret Manager v1
 * `GET /v1/projects/P/secrets/S/versions/V:access`, the OAuth token endpoint `POST /token` (the
 * JWT bearer grant of service accounts and the refresh-token grant of authorized users) and the
 * metadata server's `GET /computeMetadata/v1/instance/service-accounts/default/token` (header
 * `Metadata-Flavor: Google`, answered with the same header).
 *
 * Authentication is checked as Google documents it: a service account's assertion must verify
 * (npm `jose`, RS256) against the test's public key for that `iss`, be addressed to this token
 * URL, carry the scope and an expiry at most an hour after `iat`; Secret Manager accepts only
 * unexpired bearer tokens this double issued. Payload checksums are CRC32C computed here by a
 * table of its own (independent of the package Hecate uses); a version can be served with a
 * corrupted payload to test Hecate's check.
 *
 * @module
 */

import { type importSPKI, jwtVerify } from "jose";

/** A public key as `jose` takes it. */
export type JoseKey = Awaited<ReturnType<typeof importSPKI>>;

/** A secret version. */
export interface GcpVersion {
  data: string;
  /** Serve bytes that differ from the checksum (a corrupted payload). */
  corrupt?: boolean;
  /** Leave dataCrc32c out of the answer. */
  noChecksum?: boolean;
}

/** Options for {@link startGcpDouble}. */
export interface GcpDoubleOptions {
  /** Service accounts by email, with the public key of their key file. */
  serviceAccounts?: Record<string, JoseKey>;
  /** Authorized users (gcloud's ADC). */
  users?: { clientId: string; clientSecret: string; refreshToken: string }[];
  /** Whether the metadata server gives a token. @default {false} */
  metadata?: boolean;
  /** Secrets by `projects/P/secrets/S`; versions numbered from 1. */
  secrets: Record<string, GcpVersion[]>;
  /** Lifetime of issued tokens in seconds. @default {3600} */
  tokenLifetimeS?: number;
}

/** A running double. */
export interface GcpDouble {
  readonly url: string;
  /** `HOST:PORT` for GCE_METADATA_HOST. */
  readonly host: string;
  readonly calls: Record<string, number>;
  readonly issued: string[];
  expireTokens(): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC32C (Castagnoli), reflected, as Secret Manager computes it.
 *
 * @param bytes The data.
 * @returns The checksum as an unsigned number.
 */
export function doubleCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

const gerror = (code: number, status: string) =>
  json(code, { error: { code, message: status.toLowerCase(), status } });

/**
 * Starts the double.
 *
 * @param o Identities and secrets.
 * @returns The running double.
 */
export function startGcpDouble(o: GcpDoubleOptions): GcpDouble {
  const tokens = new Map<string, number>();
  const issued: string[] = [];
  const calls: Record<string, number> = {};
  const lifetime = o.tokenLifetimeS ?? 3600;
  const count = (k: string) => void (calls[k] = (calls[k] ?? 0) + 1);
  const issue = () => {
    const token = `ya29.double-${crypto.randomUUID()}`;
    tokens.set(token, Date.now() + lifetime * 1000);
    issued.push(token);
    return json(200, { access_token: token, expires_in: lifetime, token_type: "Bearer" });
  };

  async function tokenEndpoint(req: Request, url: URL): Promise<Response> {
    count("token");
    if (req.method !== "POST") return json(405, { error: "invalid_request" });
    const form = Object.fromEntries(new URLSearchParams(await req.text()));
    if (form.grant_type === "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      try {
        const iss = JSON.parse(
          atob(form.assertion!.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")),
        ).iss;
        const key = o.serviceAccounts?.[iss];
        if (!key) throw new Error("unknown account");
        const { payload } = await jwtVerify(form.assertion!, key, {
          algorithms: ["RS256"],
          issuer: iss,
          audience: url.href,
        });
        if (
          typeof payload.scope !== "string" ||
          !payload.scope.split(" ").includes("https://www.googleapis.com/auth/cloud-platform") ||
          payload.iat === undefined || payload.exp === undefined ||
          payload.exp - payload.iat > 3600
        ) throw new Error("claims");
      } catch {
        return json(400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
      }
      return issue();
    }
    if (form.grant_type === "refresh_token") {
      const ok = o.users?.some((u) =>
        u.clientId === form.client_id && u.clientSecret === form.client_secret &&
        u.refreshToken === form.refresh_token
      );
      if (!ok) return json(400, { error: "invalid_grant", error_description: "Bad Request" });
      return issue();
    }
    return json(400, { error: "unsupported_grant_type" });
  }

  function metadata(req: Request): Response {
    count("metadata");
    const flavor = { "metadata-flavor": "Google" };
    if (req.headers.get("metadata-flavor") !== "Google") {
      return new Response("Missing Metadata-Flavor:Google header.", {
        status: 403,
        headers: flavor,
      });
    }
    if (!o.metadata) return new Response("not found", { status: 404, headers: flavor });
    const r = issue();
    r.headers.set("metadata-flavor", "Google");
    return r;
  }

  function access(req: Request, url: URL): Response {
    count("access");
    const auth = req.headers.get("authorization") ?? "";
    const exp = tokens.get(auth.replace(/^Bearer /, ""));
    if (!auth.startsWith("Bearer ") || exp === undefined || exp <= Date.now()) {
      return gerror(401, "UNAUTHENTICATED");
    }
    const m = /^\/v1\/(projects\/[^/]+\/secrets\/[^/]+)\/versions\/([^/:]+):access$/.exec(
      url.pathname,
    );
    const versions = m ? o.secrets[m[1]!] : undefined;
    if (!m || !versions) return gerror(404, "NOT_FOUND");
    const n = m[2] === "latest" ? versions.length : Number(m[2]);
    const v = Number.isInteger(n) && n >= 1 ? versions[n - 1] : undefined;
    if (!v) return gerror(404, "NOT_FOUND");
    const bytes = new TextEncoder().encode(v.data);
    const crc = doubleCrc32c(bytes);
    const served = v.corrupt ? Uint8Array.from(bytes, (b, i) => (i === 0 ? b ^ 1 : b)) : bytes;
    return json(200, {
      name: `${m[1]!.replace(/^projects\/[^/]+/, "projects/123456789012")}/versions/${n}`,
      payload: {
        data: btoa(String.fromCharCode(...served)),
        ...(v.noChecksum ? {} : { dataCrc32c: String(crc) }),
      },
    });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/token") return tokenEndpoint(req, url);
    if (url.pathname === "/computeMetadata/v1/instance/service-accounts/default/token") {
      return metadata(req);
    }
    if (url.pathname.startsWith("/v1/")) return access(req, url);
    return gerror(404, "NOT_FOUND");
  });
  const close = async () => await server.shutdown();
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    host: `127.0.0.1:${server.addr.port}`,
    calls,
    issued,
    expireTokens() {
      for (const k of tokens.keys()) tokens.set(k, 0);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
