/**
 * The errors the AWS modules throw: `secret_unresolved` (exit 18) naming the AWS part that failed
 * and its status, with a hint line; never a key, a token or a secret value.
 *
 * @module
 */

import { HecateError } from "../../../src/errors.ts";

/**
 * A resolution failure in an AWS part (a credential step, Secrets Manager, STS).
 *
 * @param what The part and what it worked on, e.g. `AWS Secrets Manager "aws-sm:db"`.
 * @param status The status: `unreachable`, `timed out`, `forbidden`, `not found`, ...
 * @param hint What the user can do.
 * @param detail A short non-secret addition (an HTTP status, an AWS error code).
 * @returns The error to throw.
 */
export function awsError(what: string, status: string, hint: string, detail?: string): HecateError {
  return new HecateError(
    "secret_unresolved",
    `${what}: ${status}${detail ? ` (${clip(detail)})` : ""}`,
    { hint },
  );
}

/**
 * A malformed reference or setting (exit 2).
 *
 * @param what What is wrong.
 * @param hint The expected form.
 * @returns The error to throw.
 */
export function awsUsage(what: string, hint: string): HecateError {
  return new HecateError("usage", what, { hint });
}

// Details come from servers: keep them one short line of printable text.
function clip(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f]+/g, " ").slice(0, 160);
}
