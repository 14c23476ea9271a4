/**
 * The errors the AWS modules throw: `secret_unresolved` (exit 18) naming the AWS part that failed
 * and its status, with a hint line; never a key, a token or a secret value. Inside a source
 * resolution they become the framework's source errors (./../errors.ts) with the same words.
 *
 * @module
 */

import { HecateError } from "../../../src/errors.ts";
import { sourceError, type SourceStatus } from "../errors.ts";

/** What the AWS modules report: the part, its words and the framework's status class. */
interface AwsFailure {
  readonly what: string;
  readonly words: string;
  readonly detail: string | undefined;
  readonly status: SourceStatus;
}

const failures = new WeakMap<HecateError, AwsFailure>();

// The framework's status for each of the words the AWS modules use.
const STATUS: Record<string, SourceStatus> = {
  "unreachable": "unreachable",
  "timed out": "timed_out",
  "forbidden": "forbidden",
  "refused": "forbidden",
  "not found": "not_found",
  "none found": "not_found",
  "no region": "not_found",
  "no source credentials": "not_found",
  "unreadable": "not_found",
  "field missing": "field_missing",
  "malformed": "malformed",
  "malformed answer": "malformed",
  "incomplete": "malformed",
  "failed to start": "unreachable",
  // An SSO profile: no credentials Hecate can use there.
  "not supported": "not_found",
};

/**
 * A resolution failure in an AWS part (a credential step, Secrets Manager, STS).
 *
 * @param what The part and what it worked on, e.g. `AWS STS AssumeRole`.
 * @param words The status in words: `unreachable`, `timed out`, `forbidden`, `not found`, ...
 * @param hint What the user can do.
 * @param detail A short non-secret addition (an HTTP status, an AWS error name).
 * @returns The error to throw.
 */
export function awsError(what: string, words: string, hint: string, detail?: string): HecateError {
  const d = detail === undefined ? undefined : clip(detail);
  const e = new HecateError("secret_unresolved", `${what}: ${words}${d ? ` (${d})` : ""}`, {
    hint,
  });
  failures.set(e, { what, words, detail: d, status: STATUS[words] ?? "failed" });
  return e;
}

/**
 * The framework's error for a failure while resolving `raw`: the source, the reference and the
 * status, with the AWS part's own words as the detail. Other errors pass unchanged.
 *
 * @param e What was thrown.
 * @param title The source's title.
 * @param raw The reference.
 * @returns The error to throw.
 */
export function asSourceError(e: unknown, title: string, raw: string): unknown {
  const f = e instanceof HecateError ? failures.get(e) : undefined;
  if (!f) return e;
  // The source's own failures name the reference already; a part's (the chain, STS) are named.
  const own = f.what.startsWith(title);
  // Words the status alone does not say (e.g. `no region` for not_found) stay in the detail.
  const plain = f.words === f.status.replace("_", " ") || f.words === "malformed answer";
  const ownDetail = [plain ? undefined : f.words, f.detail].filter((x) => x).join(", ");
  const detail = own
    ? ownDetail || undefined
    : `${f.what}: ${f.words}${f.detail ? `; ${f.detail}` : ""}`;
  return sourceError(title, raw, f.status, (e as HecateError).hint ?? "", detail);
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
