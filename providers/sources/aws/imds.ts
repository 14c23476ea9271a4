/**
 * EC2 instance metadata, IMDSv2 only: a session token from `PUT /latest/api/token`, then the
 * role name and the role's credentials with that token in `X-aws-ec2-metadata-token`. The
 * endpoint is `AWS_EC2_METADATA_SERVICE_ENDPOINT` or `http://169.254.169.254`; off the cloud
 * nothing answers there, so each request has a short timeout.
 *
 * @module
 */

import { awsError } from "./fail.ts";
import { type AwsCredentials, awsFetch, credentialsFromJson, type Env, readBody } from "./net.ts";

const WHAT = "AWS credentials from EC2 instance metadata (IMDSv2)";
const HINT = "attach an instance profile, or set AWS_EC2_METADATA_DISABLED=true off EC2";

/** Whether IMDS is switched off (`AWS_EC2_METADATA_DISABLED=true`). */
export function imdsDisabled(env: Env): boolean {
  return env("AWS_EC2_METADATA_DISABLED")?.toLowerCase() === "true";
}

/**
 * Fetches the instance role's credentials.
 *
 * @param env The environment.
 * @param signal The caller's signal.
 * @param timeoutMs Per request (1 s, as the SDKs do).
 * @returns The credentials, or undefined when no metadata service answers the token request.
 */
export async function imdsCredentials(
  env: Env,
  signal: AbortSignal | undefined,
  timeoutMs = 1000,
): Promise<AwsCredentials | undefined> {
  const base = (env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? "http://169.254.169.254")
    .replace(/\/+$/, "");
  let tokenRes: Response;
  const limit = AbortSignal.timeout(timeoutMs);
  try {
    tokenRes = await fetch(`${base}/latest/api/token`, {
      method: "PUT",
      headers: { "X-aws-ec2-metadata-token-ttl-seconds": "21600" },
      signal: signal ? AbortSignal.any([signal, limit]) : limit,
      redirect: "manual",
    });
  } catch {
    // Nothing listening (or too slow): not on EC2, the chain has nothing more to try. The
    // caller's own deadline is reported as such.
    if (signal?.aborted) throw awsError(WHAT, "timed out", HINT);
    return undefined;
  }
  const token = await readBody(WHAT, tokenRes, 4096);
  if (!tokenRes.ok) throw awsError(WHAT, "refused", HINT, `token: HTTP ${tokenRes.status}`);
  const headers = { "X-aws-ec2-metadata-token": token.trim() };
  const listRes = await awsFetch(
    WHAT,
    `${base}/latest/meta-data/iam/security-credentials/`,
    { headers },
    signal,
    timeoutMs,
    HINT,
  );
  const list = await readBody(WHAT, listRes, 4096);
  if (listRes.status === 404) throw awsError(WHAT, "not found", HINT, "no instance role");
  if (!listRes.ok) throw awsError(WHAT, "refused", HINT, `HTTP ${listRes.status}`);
  const role = list.split("\n")[0]!.trim();
  if (!/^[\w+=,.@-]{1,128}$/.test(role)) {
    throw awsError(WHAT, "malformed answer", HINT, "role name");
  }
  const res = await awsFetch(
    WHAT,
    `${base}/latest/meta-data/iam/security-credentials/${role}`,
    { headers },
    signal,
    timeoutMs,
    HINT,
  );
  const body = await readBody(WHAT, res);
  if (!res.ok) throw awsError(WHAT, "refused", HINT, `HTTP ${res.status}`);
  return credentialsFromJson(WHAT, body, `instance role "${role}"`, "Token");
}
