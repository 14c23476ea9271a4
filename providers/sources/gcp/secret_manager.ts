/**
 * Google Secret Manager's access call (`GET /v1/projects/P/secrets/S/versions/V:access`) with an
 * ADC bearer token (adc.ts). The payload is base64; its CRC32C (`payload.dataCrc32c`, present when
 * the version was added with a checksum, as gcloud does) is verified (./crc32c.ts) and a mismatch
 * refused.
 *
 * The endpoint is `https://secretmanager.googleapis.com`, or gcloud's override variable
 * `CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER` (https, or http on loopback).
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import {
  cloudError,
  cloudFetch,
  type Env,
  fieldsOf,
  healthOfRead,
  jsonObject,
  pickFields,
  safeEndpoint,
  type Where,
} from "../cloud_http.ts";
import type { ParsedRef, Resolved, SecretSource, SourceContext } from "../source.ts";
import { googleToken } from "./adc.ts";
import { GCP_SM_TITLE } from "./ref.ts";

const STATUS = /^[A-Z_]{1,40}$/;

async function access(ref: ParsedRef, ctx: SourceContext) {
  const w: Where = { title: GCP_SM_TITLE, ref: ref.raw };
  const name = "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER";
  const base = safeEndpoint(w, name, ctx.env(name) || "https://secretmanager.googleapis.com");
  // gcloud's override may end in /v1/ or not.
  const root = base.href.replace(/\/$/, "").replace(/\/v1$/, "");
  const token = await googleToken({ env: ctx.env, signal: ctx.signal });
  const p = ref.parts;
  const r = await cloudFetch(
    w,
    `${root}/v1/projects/${p.project}/secrets/${p.secret}/versions/${p.version}:access`,
    { headers: { authorization: `Bearer ${token.token}`, accept: "application/json" } },
    ctx.signal,
  );
  return { w, r };
}

function failure(w: Where, status: number, body: string): never {
  let code = "";
  try {
    const s = JSON.parse(body)?.error?.status;
    if (typeof s === "string" && STATUS.test(s)) code = s;
  } catch {
    // Not JSON.
  }
  const detail = `${code ? `${code}, ` : ""}HTTP ${status}`;
  if (status === 404) {
    throw cloudError(w, "not_found", "check the project, secret and version", detail);
  }
  if (status === 401 || status === 403) {
    throw cloudError(
      w,
      "forbidden",
      "grant the identity roles/secretmanager.secretAccessor on the secret",
      detail,
    );
  }
  throw cloudError(w, "failed", "retry later or check the secret version's state", detail);
}

function decodeBase64(w: Where, text: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    throw cloudError(w, "malformed", "payload.data is not base64");
  }
}

/**
 * Starts the ADC token a resolution needs (./source.ts calls it while the `profile.read` record
 * is written); googleToken caches it for the resolution that follows. The token request names no
 * secret; the access call waits for the resolution. A failure is left for it to report.
 *
 * @param env The environment, as the resolution will read it.
 */
export function prepareAccess(env: Env): void {
  googleToken({ env }).catch(() => {});
}

/** The resolving half of the `gcp-sm:` source (loaded on first use by ./source.ts). */
export const gcpSecretManager: Pick<SecretSource, "resolve" | "health"> = {
  async resolve(ref: ParsedRef, ctx: SourceContext): Promise<Resolved> {
    const { w, r } = await access(ref, ctx);
    if (r.status !== 200) failure(w, r.status, r.body);
    const j = jsonObject(w, r.body);
    const payload = j.payload as Record<string, unknown> | undefined;
    if (!payload || typeof payload !== "object" || typeof payload.data !== "string") {
      throw cloudError(w, "malformed", "no payload.data in the answer");
    }
    const bytes = decodeBase64(w, payload.data);
    if (payload.dataCrc32c !== undefined) {
      // int64 in JSON is a decimal string.
      const want = String(payload.dataCrc32c);
      if (!/^\d{1,10}$/.test(want) || Number(want) !== crc32c(bytes)) {
        throw cloudError(
          w,
          "malformed",
          "the payload does not match its checksum: do not use it; retry or check the version",
          "CRC32C mismatch",
        );
      }
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw cloudError(w, "malformed", "binary secrets are not supported", "payload is not UTF-8");
    }
    const version = typeof j.name === "string" ? /\/versions\/(\d+)$/.exec(j.name)?.[1] : undefined;
    return { fields: pickFields(w, fieldsOf(text), ref.field), ...(version ? { version } : {}) };
  },
  health(ref: ParsedRef, ctx: SourceContext) {
    return healthOfRead(() => access(ref, ctx));
  },
};
