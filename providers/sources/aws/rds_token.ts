/**
 * The RDS IAM database authentication token: a SigV4 presigned URL for
 * `https://HOST:PORT/?Action=connect&DBUser=USER`, service `rds-db`, valid 15 minutes, given to
 * the database as the password without its `https://` prefix (the format of the AWS CLI's
 * `aws rds generate-db-auth-token`).
 *
 * @module
 */

import type { AwsCredentials } from "./net.ts";
import { signRequest } from "./sign.ts";

/** How long a token is valid, in seconds (what RDS accepts at most). */
export const RDS_TOKEN_SECONDS = 900;

/** What a token is minted for. */
export interface RdsTokenInput {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly region: string;
  /** `YYYYMMDDTHHMMSSZ`, for tests; now when absent. */
  readonly datetime?: string;
}

/**
 * Mints an RDS IAM authentication token.
 *
 * @param creds The IAM identity's credentials (its policy must allow `rds-db:connect`).
 * @param input Host, port, database user, region.
 * @returns The token (a secret: it logs in for 15 minutes).
 */
export async function rdsAuthToken(creds: AwsCredentials, input: RdsTokenInput): Promise<string> {
  const url = new URL(`https://${input.host}:${input.port}/`);
  url.searchParams.set("Action", "connect");
  url.searchParams.set("DBUser", input.user);
  url.searchParams.set("X-Amz-Expires", String(RDS_TOKEN_SECONDS));
  const signed = await signRequest(creds, {
    method: "GET",
    url,
    headers: {},
    service: "rds-db",
    region: input.region,
    signQuery: true,
    ...(input.datetime ? { datetime: input.datetime } : {}),
  });
  const out = new URL(signed.url);
  // `host:port` even for 443, which URL drops: the token names the endpoint as RDS sees it.
  return `${out.hostname}:${input.port}${out.pathname}${out.search}`;
}

/**
 * The region in an RDS or Aurora endpoint name (`NAME.ID.REGION.rds.amazonaws.com`).
 *
 * @param host The database host name.
 * @returns The region, or undefined for another name.
 */
export function regionOfRdsHost(host: string): string | undefined {
  return /\.([a-z]{2}(?:-[a-z]+)+-\d)\.rds\.amazonaws\.com(\.cn)?$/i.exec(host)?.[1]?.toLowerCase();
}
