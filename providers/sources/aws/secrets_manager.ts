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
import { awsCredentials, awsRegion } from "./chain.ts";
import { asSourceError, awsError } from "./fail.ts";
import { AWS_SM_TITLE } from "./sm_ref.ts";
import { awsFetch, readBody, serviceEndpoint } from "./net.ts";
import { signRequest } from "./sign.ts";
// RDS secrets carry `port` as a number: fieldsOf keeps numbers and booleans as text.
import { fieldsOf } from "../cloud_http.ts";

const TITLE = AWS_SM_TITLE;

interface CallResult {
  status: number;
  body: string;
  latencyMs: number;
}

async function getSecretValue(ref: ParsedRef, ctx: SourceContext): Promise<CallResult> {
  const what = `${TITLE} "${ref.raw}"`;
  const region = ref.parts.region ?? await awsRegion(ctx.env);
  if (!region) {
    throw awsError(what, "no region", "set AWS_REGION, or region in the profile's config");
  }
  const creds = await awsCredentials({ env: ctx.env, signal: ctx.signal });
  const url = serviceEndpoint(ctx.env, "SECRETS_MANAGER", `secretsmanager.${region}.amazonaws.com`);
  const payload: Record<string, string> = { SecretId: ref.parts.secretId! };
  if (ref.parts.versionStage) payload.VersionStage = ref.parts.versionStage;
  if (ref.parts.versionId) payload.VersionId = ref.parts.versionId;
  const request = await signRequest(creds, {
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
