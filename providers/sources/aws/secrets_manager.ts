/**
 * AWS Secrets Manager as a secret source: `aws-sm:SECRET_ID[?version-stage=S|?version-id=V][#FIELD]`
 * where SECRET_ID is a secret's name or ARN. GetSecretValue over the JSON 1.1 protocol, SigV4
 * signed with credentials from the chain (chain.ts). A JSON object secret gives its fields (the
 * RDS secret shape gives a whole connection for `--from`); any other secret string is one value,
 * field `value`. Binary secrets are refused.
 *
 * @module
 */

import type { ParsedRef, Resolved, SecretSource, SourceContext, SourceHealth } from "../source.ts";
import { AWS_CHAIN_ENV_VARS, awsCredentials, awsRegion } from "./chain.ts";
import { asSourceError, awsError } from "./fail.ts";
import { AWS_SM_TITLE } from "./sm_ref.ts";
import { awsFetch, type Env, readBody, serviceEndpoint } from "./net.ts";
import { loadSigner, signRequest } from "./sign.ts";
// RDS secrets carry `port` as a number: fieldsOf keeps numbers and booleans as text.
import { fieldsOf } from "../cloud_http.ts";

const TITLE = AWS_SM_TITLE;

interface CallResult {
  status: number;
  body: string;
  latencyMs: number;
}

/** The signed GetSecretValue request for a reference (nothing is sent). */
async function signedRequest(
  ref: ParsedRef,
  env: Env,
  signal: AbortSignal | undefined,
): Promise<Request> {
  const what = `${TITLE} "${ref.raw}"`;
  // The chain (files, IMDS, STS) and the signer's module load while the region is looked up.
  const chain = awsCredentials({ env, signal });
  chain.catch(() => {}); // reported below, unless the region is missing first
  loadSigner().catch(() => {});
  const region = ref.parts.region ?? await awsRegion(env);
  if (!region) {
    throw awsError(what, "no region", "set AWS_REGION, or region in the profile's config");
  }
  const creds = await chain;
  const url = serviceEndpoint(env, "SECRETS_MANAGER", `secretsmanager.${region}.amazonaws.com`);
  const payload: Record<string, string> = { SecretId: ref.parts.secretId! };
  if (ref.parts.versionStage) payload.VersionStage = ref.parts.versionStage;
  if (ref.parts.versionId) payload.VersionId = ref.parts.versionId;
  return await signRequest(creds, {
    method: "POST",
    url,
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "secretsmanager.GetSecretValue",
    },
    body: JSON.stringify(payload),
    service: "secretsmanager",
    region,
  });
}

/** A request signed ahead by {@link prepareSecretValue}, for one resolution that follows. */
interface Prepared {
  /** The reference and the environment it was signed under. */
  readonly key: string;
  readonly at: number;
  readonly request: Promise<Request>;
}

/** Older than this, a prepared request is signed again (AWS accepts 5 minutes of skew). */
const PREPARED_MAX_AGE_MS = 60_000;
const prepared = new Map<string, Prepared>();
// What a signed request depends on besides the reference: the chain's inputs and the endpoint.
const SIGNING_VARS = [...AWS_CHAIN_ENV_VARS, "AWS_ENDPOINT_URL_SECRETS_MANAGER"];

function preparedKey(ref: ParsedRef, env: Env): string {
  return JSON.stringify([ref.raw, ...SIGNING_VARS.map((n) => env(n) ?? null)]);
}

/** The prepared request for `ref`, taken (used once), if it matches and is fresh. */
async function takePrepared(ref: ParsedRef, env: Env): Promise<Request | undefined> {
  const p = prepared.get(ref.raw);
  if (!p) return undefined;
  prepared.delete(ref.raw);
  if (p.key !== preparedKey(ref, env) || Date.now() - p.at > PREPARED_MAX_AGE_MS) return undefined;
  // A failure is not reported from here: the resolution signs again and reports its own.
  return await p.request.catch(() => undefined);
}

async function getSecretValue(ref: ParsedRef, ctx: SourceContext): Promise<CallResult> {
  const what = `${TITLE} "${ref.raw}"`;
  const request = await takePrepared(ref, ctx.env) ??
    await signedRequest(ref, ctx.env, ctx.signal);
  const started = performance.now();
  const res = await awsFetch(
    what,
    request,
    {},
    ctx.signal,
    10_000,
    "check the endpoint and the network",
  );
  const body = await readBody(what, res, 1 << 20);
  return { status: res.status, body, latencyMs: performance.now() - started };
}

const KNOWN_ERRORS = new Set([
  "ResourceNotFoundException",
  "AccessDeniedException",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "ExpiredTokenException",
  "IncompleteSignature",
  "DecryptionFailure",
  "InvalidParameterException",
  "InvalidRequestException",
  "InternalServiceError",
  "ThrottlingException",
]);

function failure(ref: ParsedRef, r: CallResult): never {
  const what = `${TITLE} "${ref.raw}"`;
  let type = "";
  try {
    type = String(JSON.parse(r.body).__type ?? "").replace(/^.*#/, "");
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  // Only AWS's own error names are shown: the body comes from the network.
  if (!KNOWN_ERRORS.has(type)) type = "";
  const detail = `${type || "error"}, HTTP ${r.status}`;
  if (type === "ResourceNotFoundException") {
    throw awsError(what, "not found", "check the secret's name, region and version", detail);
  }
  if (
    r.status === 403 || type === "AccessDeniedException" ||
    type === "UnrecognizedClientException" ||
    type === "InvalidSignatureException" || type === "ExpiredTokenException"
  ) {
    throw awsError(
      what,
      "forbidden",
      "check the credentials and that the IAM policy allows secretsmanager:GetSecretValue",
      detail,
    );
  }
  if (type === "DecryptionFailure") {
    throw awsError(what, "forbidden", "the identity may not use the secret's KMS key", detail);
  }
  throw awsError(what, "failed", "retry later or check the secret's state", detail);
}

async function resolveSecret(ref: ParsedRef, ctx: SourceContext): Promise<Resolved> {
  const what = `${TITLE} "${ref.raw}"`;
  const r = await getSecretValue(ref, ctx);
  if (r.status !== 200) failure(ref, r);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(r.body);
  } catch {
    throw awsError(what, "malformed answer", "the endpoint did not answer JSON");
  }
  if (typeof j.SecretString !== "string") {
    throw awsError(
      what,
      "malformed answer",
      j.SecretBinary !== undefined ? "binary secrets are not supported" : "no SecretString",
    );
  }
  const all = fieldsOf(j.SecretString);
  const version = typeof j.VersionId === "string" ? j.VersionId : undefined;
  if (ref.field !== undefined) {
    const v = all[ref.field];
    if (v === undefined) {
      throw awsError(what, "field missing", "the secret has no such JSON key", ref.field);
    }
    return { fields: { [ref.field]: v }, ...(version ? { version } : {}) };
  }
  return { fields: all, ...(version ? { version } : {}) };
}

/**
 * Starts what a resolution of `ref` needs before its request (./source.ts calls it while the
 * `profile.read` record is written): the credential chain of the environment (awsCredentials
 * caches it), the signer's module, and the GetSecretValue request signed, kept in memory for the
 * one resolution that follows within a minute. Nothing is sent to Secrets Manager here: the
 * resolution sends the request after the record is on disk. A failure is left for it to report.
 *
 * @param ref The reference.
 * @param env The environment, as the resolution will read it.
 */
export function prepareSecretValue(ref: ParsedRef, env: Env): void {
  const now = Date.now();
  // Requests prepared for uses that never came (their record failed) are not kept.
  for (const [k, p] of prepared) if (now - p.at > PREPARED_MAX_AGE_MS) prepared.delete(k);
  const request = signedRequest(ref, env, undefined);
  request.catch(() => {});
  prepared.set(ref.raw, { key: preparedKey(ref, env), at: now, request });
}

/** The resolving half of the source (loaded on first use by ./source.ts). */
export const awsSecretsManager: Pick<SecretSource, "resolve" | "health"> = {
  async resolve(ref: ParsedRef, ctx: SourceContext): Promise<Resolved> {
    try {
      return await resolveSecret(ref, ctx);
    } catch (e) {
      throw asSourceError(e, TITLE, ref.raw);
    }
  },
  async health(ref: ParsedRef, ctx: SourceContext): Promise<SourceHealth> {
    const started = performance.now();
    try {
      const r = await getSecretValue(ref, ctx);
      return {
        ok: r.status === 200,
        detail: r.status === 200 ? "GetSecretValue ok" : `HTTP ${r.status}`,
        latencyMs: performance.now() - started,
      };
    } catch (e) {
      return {
        ok: false,
        detail: e instanceof Error ? e.message.split("\n")[0]!.slice(0, 120) : "failed",
        latencyMs: performance.now() - started,
      };
    }
  },
};
