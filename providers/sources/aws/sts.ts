/**
 * AWS STS over its query protocol (form-encoded POST, XML answer): AssumeRole, signed with the
 * source credentials, and AssumeRoleWithWebIdentity, which carries the identity token instead of
 * a signature.
 *
 * @module
 */

import { awsError } from "./fail.ts";
import { type AwsCredentials, awsFetch, type Env, readBody, serviceEndpoint } from "./net.ts";
import { signRequest } from "./sign.ts";

/** Where and how long to talk to STS. */
export interface StsOptions {
  readonly env: Env;
  readonly region: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs?: number;
}

/** The role to assume. */
export interface RoleRequest {
  readonly roleArn: string;
  readonly sessionName: string;
  readonly externalId?: string | undefined;
  readonly durationSeconds?: number | undefined;
}

function endpoint(o: StsOptions): { url: URL; region: string } {
  // Regional endpoints, as current SDKs use; the global one (us-east-1) without a region.
  const region = o.region ?? "us-east-1";
  const host = o.region ? `sts.${region}.amazonaws.com` : "sts.amazonaws.com";
  return { url: serviceEndpoint(o.env, "STS", host), region };
}

function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  if (!m) return undefined;
  return m[1]!.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'").replace(/&amp;/g, "&");
}

const STS_ERRORS = new Set([
  "AccessDenied",
  "ExpiredToken",
  "ExpiredTokenException",
  "IDPCommunicationError",
  "IDPRejectedClaim",
  "InvalidClientTokenId",
  "InvalidIdentityToken",
  "MalformedPolicyDocument",
  "RegionDisabledException",
  "SignatureDoesNotMatch",
]);

async function call(
  what: string,
  request: Request,
  o: StsOptions,
  origin: string,
): Promise<AwsCredentials> {
  const hint = "check the role ARN, the STS endpoint and the network";
  const res = await awsFetch(what, request, {}, o.signal, o.timeoutMs ?? 5000, hint);
  const body = await readBody(what, res);
  if (!res.ok) {
    // Only STS's own error codes are shown: the body comes from the network.
    const given = xmlText(body, "Code") ?? "";
    const code = STS_ERRORS.has(given) ? `${given}` : `HTTP ${res.status}`;
    const status = res.status === 403 || code === "AccessDenied" ? "forbidden" : "refused";
    throw awsError(what, status, "check that the role trusts the caller", code);
  }
  const creds = /<Credentials>([\s\S]*)<\/Credentials>/.exec(body)?.[1] ?? "";
  const id = xmlText(creds, "AccessKeyId"), secret = xmlText(creds, "SecretAccessKey");
  const token = xmlText(creds, "SessionToken"), exp = xmlText(creds, "Expiration");
  const expiresAt = exp ? Date.parse(exp) : NaN;
  if (!id || !secret || !token || !Number.isFinite(expiresAt)) {
    throw awsError(what, "malformed answer", "STS answered without complete credentials");
  }
  return { accessKeyId: id, secretAccessKey: secret, sessionToken: token, expiresAt, origin };
}

function form(params: Record<string, string | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) p.set(k, v);
  return p.toString();
}

/**
 * STS AssumeRole with the source credentials.
 *
 * @param source The credentials that may assume the role.
 * @param role The role.
 * @param o Endpoint, region, signal.
 * @param origin The chain step, recorded on the result.
 * @returns The role's temporary credentials.
 */
export async function assumeRole(
  source: AwsCredentials,
  role: RoleRequest,
  o: StsOptions,
  origin: string,
): Promise<AwsCredentials> {
  const { url, region } = endpoint(o);
  const body = form({
    Action: "AssumeRole",
    Version: "2011-06-15",
    RoleArn: role.roleArn,
    RoleSessionName: role.sessionName,
    ExternalId: role.externalId,
    DurationSeconds: role.durationSeconds?.toString(),
  });
  const request = await signRequest(source, {
    method: "POST",
    url,
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body,
    service: "sts",
    region,
  });
  return await call("AWS STS AssumeRole", request, o, origin);
}

/**
 * STS AssumeRoleWithWebIdentity (not signed: the token is the proof).
 *
 * @param role The role.
 * @param webIdentityToken The OIDC token (a secret).
 * @param o Endpoint, region, signal.
 * @param origin The chain step, recorded on the result.
 * @returns The role's temporary credentials.
 */
export async function assumeRoleWithWebIdentity(
  role: RoleRequest,
  webIdentityToken: string,
  o: StsOptions,
  origin: string,
): Promise<AwsCredentials> {
  const { url } = endpoint(o);
  const request = new Request(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: form({
      Action: "AssumeRoleWithWebIdentity",
      Version: "2011-06-15",
      RoleArn: role.roleArn,
      RoleSessionName: role.sessionName,
      WebIdentityToken: webIdentityToken,
      DurationSeconds: role.durationSeconds?.toString(),
    }),
  });
  return await call("AWS STS AssumeRoleWithWebIdentity", request, o, origin);
}
