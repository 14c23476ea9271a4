/**
 * Google Application Default Credentials, in the order of Google's auth libraries:
 *
 * 1. `GOOGLE_APPLICATION_CREDENTIALS`: a service-account key (`type: service_account`: an RS256
 *    JWT signed with its key, exchanged at its `token_uri` with the JWT bearer grant) or an
 *    authorized-user file (`type: authorized_user`: its refresh token at `token_uri`, default
 *    `https://oauth2.googleapis.com/token`);
 * 2. gcloud's ADC file, `$CLOUDSDK_CONFIG/application_default_credentials.json` (default
 *    `~/.config/gcloud/`), written by `gcloud auth application-default login`;
 * 3. the metadata server (`GCE_METADATA_HOST`, default `metadata.google.internal`), asked with
 *    `Metadata-Flavor: Google` and believed only when it answers with the same header.
 *
 * A file that is named and broken is an error (no fall-through); an absent metadata server ends
 * the chain. Tokens are cached per process until five minutes before they expire.
 *
 * @module
 */

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

const TITLE = "Google credentials";
const SCOPE = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token";
const cache = new TokenCache();

/** Forgets cached tokens (tests; a library user rotating credentials). */
export function clearGoogleTokenCache(): void {
  cache.clear();
}

const KEY_VARS = ["HOME", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "GCE_METADATA_HOST"];

/** What a chain run needs. */
export interface AdcOptions {
  readonly env: Env;
  readonly signal?: AbortSignal | undefined;
  /** Per metadata-server probe. @default {1000} */
  readonly metadataTimeoutMs?: number;
}

/**
 * A bearer token (scope cloud-platform) from ADC, cached per process until shortly before expiry.
 *
 * @param o The environment and signal.
 * @returns The token (keep it in memory only).
 * @throws {HecateError} `secret_unresolved` (exit 18) naming the step and its status.
 */
export async function googleToken(o: AdcOptions): Promise<AccessToken> {
  const key = JSON.stringify(KEY_VARS.map((n) => o.env(n) ?? null));
  return await cache.token(key, () => runChain(o));
}

async function runChain(o: AdcOptions): Promise<AccessToken> {
  const named = o.env("GOOGLE_APPLICATION_CREDENTIALS");
  if (named) {
    return await fromFile({ title: TITLE, ref: "GOOGLE_APPLICATION_CREDENTIALS" }, named, o);
  }
  const dir = o.env("CLOUDSDK_CONFIG") ||
    (o.env("HOME") ? `${o.env("HOME")}/.config/gcloud` : undefined);
  if (dir) {
    const path = `${dir}/application_default_credentials.json`;
    let exists = false;
    try {
      exists = (await Deno.stat(path)).isFile;
    } catch {
      // No gcloud ADC file: the metadata server is next.
    }
    if (exists) return await fromFile({ title: TITLE, ref: "gcloud ADC file" }, path, o);
  }
  const fromMds = await metadataToken(o);
  if (fromMds) return fromMds;
  throw cloudError(
    { title: TITLE, ref: "Application Default Credentials" },
    "not_found",
    "set GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default login`, or run on Google Cloud",
    "none found; tried GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server",
  );
}

async function fromFile(w: Where, path: string, o: AdcOptions): Promise<AccessToken> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw cloudError(w, "failed", "check the credentials file's path", "file unreadable");
  }
  let j: Record<string, unknown>;
  try {
    j = jsonObject(w, text);
  } catch {
    throw cloudError(w, "failed", "the credentials file is not a JSON object", "malformed file");
  }
  const tokenUri = safeEndpoint(
    w,
    "token_uri",
    typeof j.token_uri === "string" ? j.token_uri : DEFAULT_TOKEN_URI,
  );
  const str = (k: string) => (typeof j[k] === "string" && j[k] ? j[k] as string : undefined);
  let form: Record<string, string>;
  if (j.type === "service_account") {
    const email = str("client_email"), pem = str("private_key");
    if (!email || !pem) {
      throw cloudError(w, "failed", "the key file lacks client_email or private_key", "malformed");
    }
    // jose is loaded only for a service-account key (start-up time of other paths).
    const { importPKCS8, SignJWT } = await import("./jwt.ts");
    let key: Awaited<ReturnType<typeof importPKCS8>>;
    try {
      key = await importPKCS8(pem, "RS256");
    } catch {
      throw cloudError(w, "failed", "the key file's private_key is unusable", "bad key");
    }
    const now = Math.floor(Date.now() / 1000);
    const header: { alg: string; typ: string; kid?: string } = { alg: "RS256", typ: "JWT" };
    const kid = str("private_key_id");
    if (kid) header.kid = kid;
    const assertion = await new SignJWT({ scope: SCOPE })
      .setProtectedHeader(header)
      .setIssuer(email)
      .setAudience(tokenUri.href)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(key);
    form = { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion };
  } else if (j.type === "authorized_user") {
    const id = str("client_id"), secret = str("client_secret"), refresh = str("refresh_token");
    if (!id || !secret || !refresh) {
      throw cloudError(
        w,
        "failed",
        "the file lacks client_id, client_secret or refresh_token",
        "malformed",
      );
    }
    form = {
      grant_type: "refresh_token",
      client_id: id,
      client_secret: secret,
      refresh_token: refresh,
    };
  } else {
    throw cloudError(
      w,
      "failed",
      "use a service-account key or an authorized-user file",
      "unsupported credential type",
    );
  }
  const r = await cloudFetch(w, tokenUri, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  }, o.signal);
  return tokenAnswer(w, r.status, r.body);
}

const OAUTH_ERROR = /^[a-z_]{1,40}$/;

function tokenAnswer(w: Where, status: number, body: string): AccessToken {
  if (status !== 200) {
    let code = "";
    try {
      const e = JSON.parse(body)?.error;
      if (typeof e === "string" && OAUTH_ERROR.test(e)) code = e;
    } catch {
      // Not JSON.
    }
    const s = status === 400 || status === 401 || status === 403 ? "forbidden" : "failed";
    throw cloudError(w, s, "check the credentials", `${code ? `${code}, ` : ""}HTTP ${status}`);
  }
  const j = jsonObject(w, body);
  const token = j.access_token, expiresAt = expiryOf(j);
  if (typeof token !== "string" || !token || !Number.isFinite(expiresAt)) {
    throw cloudError(w, "malformed", "the token answer lacks access_token or expires_in");
  }
  return { token, expiresAt, origin: w.ref };
}

const HOST = /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/;

async function metadataToken(o: AdcOptions): Promise<AccessToken | undefined> {
  const w = { title: TITLE, ref: "metadata server" };
  const host = o.env("GCE_METADATA_HOST") || "metadata.google.internal";
  if (!HOST.test(host)) throw cloudError(w, "failed", "GCE_METADATA_HOST must be HOST[:PORT]");
  // The metadata server is plain http by design: it is on the host's own link.
  const url = `http://${host}/computeMetadata/v1/instance/service-accounts/default/token`;
  let r;
  try {
    r = await cloudFetch(
      w,
      url,
      { headers: { "Metadata-Flavor": "Google" } },
      o.signal,
      o.metadataTimeoutMs ?? 1000,
    );
  } catch (e) {
    if (o.signal?.aborted) throw e;
    return undefined;
  }
  // Anything that does not answer as the metadata server (a captive portal, a proxy) is not it.
  if (r.headers.get("metadata-flavor") !== "Google") return undefined;
  return tokenAnswer(w, r.status, r.body);
}
