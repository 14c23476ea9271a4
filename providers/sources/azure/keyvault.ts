/**
 * Azure Key Vault's get-secret call (`GET {vault}/secrets/{name}[/{version}]?api-version=7.4`)
 * with a bearer token for the vault's resource from the Azure chain (chain.ts). A JSON-object
 * secret gives its fields, any other secret the one field `value`.
 *
 * The vault origin comes from the reference; `HECATE_AZURE_KEYVAULT_URL` replaces it (a test
 * double or a private-endpoint proxy; https, or http on loopback). The token's resource stays
 * the cloud's Key Vault resource: Hecate does not follow a 401 challenge to another authority.
 *
 * @module
 */

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
import { azureToken } from "./chain.ts";
import { AZURE_KV_TITLE } from "./ref.ts";

// Key Vault's error codes are identifiers; anything else from the network is not echoed.
const CODE = /^[A-Za-z]{1,40}$/;

async function getSecret(ref: ParsedRef, ctx: SourceContext) {
  const w: Where = { title: AZURE_KV_TITLE, ref: ref.raw };
  const override = ctx.env("HECATE_AZURE_KEYVAULT_URL");
  const origin = override
    ? safeEndpoint(w, "HECATE_AZURE_KEYVAULT_URL", override).href.replace(/\/$/, "")
    : ref.parts.vault!;
  const token = await azureToken({
    env: ctx.env,
    resource: ref.parts.resource!,
    signal: ctx.signal,
  });
  const path = `/secrets/${ref.parts.name}${ref.parts.version ? `/${ref.parts.version}` : ""}`;
  const started = performance.now();
  const r = await cloudFetch(w, `${origin}${path}?api-version=7.4`, {
    headers: { authorization: `Bearer ${token.token}`, accept: "application/json" },
  }, ctx.signal);
  return { w, r, latencyMs: performance.now() - started };
}

/**
 * Starts the token for the reference's vault resource (./source.ts calls it while the
 * `profile.read` record is written); azureToken caches it for the resolution that follows. The
 * token request names no secret; the read waits for the resolution. A failure is left for it.
 *
 * @param ref The reference (its resource).
 * @param env The environment, as the resolution will read it.
 */
export function prepareGetSecret(ref: ParsedRef, env: Env): void {
  azureToken({ env, resource: ref.parts.resource! }).catch(() => {});
}

function failure(w: Where, status: number, body: string): never {
  let code = "";
  try {
    const c = JSON.parse(body)?.error?.code;
    if (typeof c === "string" && CODE.test(c)) code = c;
  } catch {
    // Not JSON (a proxy's page).
  }
  const detail = `${code ? `${code}, ` : ""}HTTP ${status}`;
  if (status === 404) throw cloudError(w, "not_found", "check the vault, name and version", detail);
  if (status === 401 || status === 403) {
    throw cloudError(
      w,
      "forbidden",
      "grant the identity the Key Vault Secrets User role (or a get-secret access policy)",
      detail,
    );
  }
  throw cloudError(w, "failed", "retry later or check the vault", detail);
}

/** The resolving half of the `azure-kv:` source (loaded on first use by ./source.ts). */
export const azureKeyVault: Pick<SecretSource, "resolve" | "health"> = {
  async resolve(ref: ParsedRef, ctx: SourceContext): Promise<Resolved> {
    const { w, r } = await getSecret(ref, ctx);
    if (r.status !== 200) failure(w, r.status, r.body);
    const j = jsonObject(w, r.body);
    if (typeof j.value !== "string") throw cloudError(w, "malformed", "no value in the answer");
    const id = typeof j.id === "string" ? j.id : "";
    const version = /\/secrets\/[^/]+\/([0-9a-f]{32})$/.exec(id)?.[1];
    return {
      fields: pickFields(w, fieldsOf(j.value), ref.field),
      ...(version ? { version } : {}),
    };
  },
  health(ref: ParsedRef, ctx: SourceContext) {
    return healthOfRead(() => getSecret(ref, ctx));
  },
};
