/**
 * HTTP for the AWS modules: service endpoints (with the SDKs' `AWS_ENDPOINT_URL_<SERVICE>` and
 * `AWS_ENDPOINT_URL` overrides), and requests bounded by a timeout and the caller's signal, whose
 * failures become exit-18 errors with a status.
 *
 * @module
 */

import { readLimited, TooLarge } from "../http_body.ts";
import { awsError } from "./fail.ts";

/** Credentials for signing AWS requests. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
  /** When they stop working (ms since the epoch); undefined for long-term keys. */
  readonly expiresAt?: number | undefined;
  /** The chain step that gave them (e.g. `environment`, `profile "ci"`), for messages. */
  readonly origin: string;
}

/** Reads an environment variable. */
export type Env = (name: string) => string | undefined;

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/**
 * Whether a URL's host is the loopback interface.
 *
 * @param url The URL.
 * @returns True for localhost, 127.0.0.0/8 and [::1].
 */
export function isLoopback(url: URL): boolean {
  return LOOPBACK_HOST.test(url.hostname);
}

/**
 * The endpoint of a service: `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, then the
 * public regional one. An override must be `https:`, or `http:` to loopback (a test double or a
 * local proxy): secrets never travel in clear text over a network.
 *
 * @param env The environment.
 * @param envName The service's suffix, e.g. `SECRETS_MANAGER`.
 * @param host The public host, e.g. `secretsmanager.eu-west-1.amazonaws.com`.
 * @returns The endpoint URL.
 * @throws {HecateError} `secret_unresolved` for an unusable override.
 */
export function serviceEndpoint(env: Env, envName: string, host: string): URL {
  const name = env(`AWS_ENDPOINT_URL_${envName}`)
    ? `AWS_ENDPOINT_URL_${envName}`
    : "AWS_ENDPOINT_URL";
  const override = env(name);
  if (!override) return new URL(`https://${host}/`);
  let url: URL;
  try {
    url = new URL(override);
  } catch {
    throw awsError(`AWS endpoint ${name}`, "malformed", "set it to an https:// URL");
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopback(url))) {
    throw awsError(
      `AWS endpoint ${name}`,
      "refused",
      "use https:// (http:// is accepted only on loopback)",
    );
  }
  return url;
}

/**
 * Fetches with a timeout and the caller's signal; network failures become exit-18 errors.
 *
 * @param what The part, for messages (e.g. `AWS STS AssumeRole`).
 * @param input The URL or a signed request.
 * @param init Request options.
 * @param signal The caller's signal.
 * @param timeoutMs This request's own limit.
 * @param hint The hint for an unreachable or slow endpoint.
 * @returns The response.
 */
export async function awsFetch(
  what: string,
  input: Request | URL | string,
  init: RequestInit,
  signal: AbortSignal | undefined,
  timeoutMs: number,
  hint: string,
): Promise<Response> {
  const limit = AbortSignal.timeout(timeoutMs);
  const all = signal ? AbortSignal.any([signal, limit]) : limit;
  // A Request's body would go out as a stream (chunked, in several writes, which costs a
  // delayed-ACK round on a fresh connection): send a signed request's body as one string.
  if (input instanceof Request) {
    const body = input.body ? await input.text() : undefined;
    init = {
      method: input.method,
      headers: input.headers,
      ...(body !== undefined ? { body } : {}),
    };
    input = input.url;
  }
  try {
    return await fetch(input, { ...init, signal: all, redirect: "manual" });
  } catch (e) {
    if (all.aborted) throw awsError(what, "timed out", hint);
    throw awsError(what, "unreachable", hint, e instanceof Error ? e.name : undefined);
  }
}

/**
 * Reads a response body with a size limit (a hostile endpoint cannot fill memory).
 *
 * @param what The part, for messages.
 * @param res The response.
 * @param max The most bytes accepted.
 * @returns The body text.
 */
export async function readBody(what: string, res: Response, max = 1 << 20): Promise<string> {
  try {
    return new TextDecoder().decode(await readLimited(res, max));
  } catch (e) {
    if (e instanceof TooLarge) throw awsError(what, "malformed answer", "the answer is too large");
    throw awsError(what, "unreachable", "the connection broke while reading the answer");
  }
}

/**
 * Parses the JSON credential answer of IMDS, container endpoints and `credential_process`.
 *
 * @param what The part, for messages.
 * @param body The answer.
 * @param origin The chain step, recorded on the credentials.
 * @param tokenKey The session token's key (`Token` or `SessionToken`).
 * @returns The credentials.
 */
export function credentialsFromJson(
  what: string,
  body: string,
  origin: string,
  tokenKey: "Token" | "SessionToken",
): AwsCredentials {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(body);
  } catch {
    throw awsError(what, "malformed answer", "the answer is not JSON");
  }
  if (!j || typeof j !== "object") throw awsError(what, "malformed answer", "expected an object");
  const id = j.AccessKeyId, secret = j.SecretAccessKey, token = j[tokenKey], exp = j.Expiration;
  if (typeof id !== "string" || !id || typeof secret !== "string" || !secret) {
    throw awsError(what, "malformed answer", "AccessKeyId and SecretAccessKey are missing");
  }
  if (token !== undefined && typeof token !== "string") {
    throw awsError(what, "malformed answer", `${tokenKey} is not a string`);
  }
  let expiresAt: number | undefined;
  if (exp !== undefined && exp !== null) {
    expiresAt = typeof exp === "string" ? Date.parse(exp) : NaN;
    if (!Number.isFinite(expiresAt)) {
      throw awsError(what, "malformed answer", "Expiration is not a date");
    }
  }
  return { accessKeyId: id, secretAccessKey: secret, sessionToken: token, expiresAt, origin };
}
