/**
 * `aws-sm:` references: `aws-sm:SECRET_ID[?version-stage=S|?version-id=V][#FIELD]`, SECRET_ID a
 * secret's name or ARN. Parsing is separate from resolving so that `server add` and the cron path
 * load none of the AWS code until a reference is resolved.
 *
 * @module
 */

import type { ParsedRef } from "../source.ts";
import { awsUsage } from "./fail.ts";
import { splitRefField } from "../ref_field.ts";

/** The source's title in messages. */
export const AWS_SM_TITLE = "AWS Secrets Manager";
const TITLE = AWS_SM_TITLE;
const FORM = "aws-sm:NAME-OR-ARN[?version-stage=STAGE|?version-id=ID][#FIELD]";
const NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const ARN =
  /^arn:aws[a-z-]*:secretsmanager:([a-z]{2}(-[a-z]+)+-\d):\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$/;

/**
 * Parses `aws-sm:` references.
 *
 * @param scheme `aws-sm`.
 * @param rest The text after the colon.
 * @returns The parsed reference; parts `secretId`, optional `region` (from an ARN),
 * `versionStage`, `versionId`.
 */
export function parseAwsSmRef(scheme: string, rest: string): ParsedRef {
  const raw = `${scheme}:${rest}`;
  const split = splitRefField(scheme, rest);
  const { shown, field } = split;
  let body = split.body;
  const bad = (what: string) => awsUsage(`Malformed ${TITLE} reference "${shown}": ${what}`, FORM);
  if (split.badField) {
    throw bad("the #FIELD part is empty or has characters outside A-Z a-z 0-9 _ . -");
  }
  const parts: Record<string, string> = {};
  const q = body.indexOf("?");
  if (q >= 0) {
    const params = new URLSearchParams(body.slice(q + 1));
    body = body.slice(0, q);
    for (const [k, v] of params) {
      if (k === "version-stage" && /^[\w.-]{1,256}$/.test(v)) parts.versionStage = v;
      else if (k === "version-id" && /^[A-Za-z0-9-]{32,64}$/.test(v)) parts.versionId = v;
      else throw bad(`unknown or malformed option ${JSON.stringify(k.slice(0, 32))}`);
    }
    if (parts.versionStage && parts.versionId) {
      throw bad("give version-stage or version-id, not both");
    }
  }
  const arn = ARN.exec(body);
  if (!arn && (!NAME.test(body) || body.startsWith("arn:"))) {
    throw bad("the secret id must be a secret name (A-Z a-z 0-9 / _ + = . @ -) or its ARN");
  }
  parts.secretId = body;
  // The ARN names the secret's region, which wins over the configured one.
  if (arn) parts.region = arn[1]!;
  return { scheme, raw, ...(field !== undefined ? { field } : {}), parts };
}
