/**
 * SigV4 signing through the `aws4fetch` package (loaded on first use, so commands that never
 * talk to AWS do not load it).
 *
 * @module
 */

import type { AwsCredentials } from "./net.ts";

/** What to sign. */
export interface SignInput {
  readonly method: string;
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly service: string;
  readonly region: string;
  /** Put the signature in the query string (a presigned URL) instead of the headers. */
  readonly signQuery?: boolean;
  /** The signing time as `YYYYMMDDTHHMMSSZ` (tests); now when absent. */
  readonly datetime?: string;
}

let signer: Promise<typeof import("aws4fetch")> | undefined;

/**
 * Starts loading `aws4fetch` (once per process), so that it can overlap other waits.
 *
 * @returns The module.
 */
export function loadSigner(): Promise<typeof import("aws4fetch")> {
  signer ??= import("aws4fetch");
  // A failed import is tried again by the next caller, which reports it.
  signer.catch(() => signer = undefined);
  return signer;
}

/**
 * Signs a request with SigV4.
 *
 * @param creds The credentials.
 * @param input The request parts.
 * @returns The signed request.
 */
export async function signRequest(creds: AwsCredentials, input: SignInput): Promise<Request> {
  const { AwsV4Signer } = await loadSigner();
  const signer = new AwsV4Signer({
    method: input.method,
    url: input.url.toString(),
    headers: input.headers,
    ...(input.body !== undefined ? { body: input.body } : {}),
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
    service: input.service,
    region: input.region,
    ...(input.signQuery ? { signQuery: true } : {}),
    ...(input.datetime ? { datetime: input.datetime } : {}),
  });
  const signed = await signer.sign();
  return new Request(signed.url, {
    method: signed.method,
    headers: signed.headers,
    ...(input.body !== undefined ? { body: input.body } : {}),
  });
}
