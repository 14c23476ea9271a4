/**
 * Container credentials (ECS task roles, EKS Pod Identity): `GET` on
 * `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` under `http://169.254.170.2`, or on
 * `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with the `Authorization` header from
 * `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (read on each call: it rotates) or
 * `AWS_CONTAINER_AUTHORIZATION_TOKEN`. A full URI must be https, or http to loopback or to the
 * ECS/EKS link-local agents, as the SDKs require.
 *
 * @module
 */

import { awsError } from "./fail.ts";
import { type AwsCredentials, awsFetch, credentialsFromJson, type Env, readBody } from "./net.ts";

const WHAT = "AWS container credentials";
const HINT = "check AWS_CONTAINER_CREDENTIALS_* and the task or pod role";
const AGENTS = new Set(["169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"]);
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/** Whether the container endpoint is configured. */
export function containerConfigured(env: Env): boolean {
  return !!(env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") ||
    env("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
}

function endpoint(env: Env): URL {
  const relative = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if (relative) {
    return new URL(`http://169.254.170.2${relative.startsWith("/") ? "" : "/"}${relative}`);
  }
  let url: URL;
  try {
    url = new URL(env("AWS_CONTAINER_CREDENTIALS_FULL_URI")!);
  } catch {
    throw awsError(WHAT, "malformed", HINT, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  }
  const allowed = url.protocol === "https:" ||
    (url.protocol === "http:" && (LOOPBACK.test(url.hostname) || AGENTS.has(url.hostname)));
  if (!allowed) {
    throw awsError(
      WHAT,
      "refused",
      "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to loopback or the ECS/EKS agent",
    );
  }
  return url;
}

async function authorization(env: Env): Promise<string | undefined> {
  const file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  let token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  if (file) {
    try {
      token = (await Deno.readTextFile(file)).trim();
    } catch {
      throw awsError(WHAT, "unreadable", HINT, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    }
  }
  if (token !== undefined && /[\r\n]/.test(token)) {
    throw awsError(WHAT, "malformed", HINT, "the authorization token has a line break");
  }
  return token;
}

/**
 * Fetches the container role's credentials.
 *
 * @param env The environment.
 * @param signal The caller's signal.
 * @param timeoutMs The request's limit.
 * @returns The credentials.
 */
export async function containerCredentials(
  env: Env,
  signal: AbortSignal | undefined,
  timeoutMs = 2000,
): Promise<AwsCredentials> {
  const url = endpoint(env);
  const token = await authorization(env);
  const res = await awsFetch(
    WHAT,
    url,
    token ? { headers: { Authorization: token } } : {},
    signal,
    timeoutMs,
    HINT,
  );
  const body = await readBody(WHAT, res);
  if (res.status === 401 || res.status === 403) {
    throw awsError(WHAT, "forbidden", HINT, `HTTP ${res.status}`);
  }
  if (!res.ok) throw awsError(WHAT, "refused", HINT, `HTTP ${res.status}`);
  return credentialsFromJson(WHAT, body, "container role", "Token");
}
