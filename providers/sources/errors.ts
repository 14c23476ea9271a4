/**
 * The errors sources throw: `secret_unresolved` (exit 18) with a status for resolution failures,
 * `usage` (exit 2) for malformed references. Messages name the source, the reference and the
 * status; never a value or a token.
 *
 * @module
 */

import { HecateError } from "../../src/errors.ts";

/** The failure classes a source reports (audited as the reason, named in the message). */
export type SourceStatus =
  | "unreachable"
  | "timed_out"
  | "forbidden"
  | "not_found"
  | "field_missing"
  | "lease_expired"
  | "malformed"
  | "failed";

const STATUS_TEXT: Record<SourceStatus, string> = {
  unreachable: "unreachable",
  timed_out: "timed out",
  forbidden: "forbidden",
  not_found: "not found",
  field_missing: "field missing",
  lease_expired: "lease expired",
  malformed: "malformed answer",
  failed: "failed",
};

/** The status each `secret_unresolved` error made by {@link sourceError} carries. */
const statuses = new WeakMap<HecateError, SourceStatus>();

/**
 * The error a source throws when it cannot resolve a reference: `secret_unresolved` (exit 18)
 * naming the source, the reference and the status, with a hint line. Never pass a value or a
 * token in `detail` or `hint`.
 *
 * @param source The source's title (e.g. `HashiCorp Vault`).
 * @param ref The reference as written (a location, not a secret).
 * @param status The failure class.
 * @param hint What the user can do.
 * @param detail A short non-secret addition (e.g. `HTTP 403`, `variable is not set`).
 * @returns The error to throw.
 */
export function sourceError(
  source: string,
  ref: string,
  status: SourceStatus,
  hint: string,
  detail?: string,
): HecateError {
  const e = new HecateError(
    "secret_unresolved",
    `Secret source ${source}: "${ref}": ${STATUS_TEXT[status]}${detail ? ` (${detail})` : ""}`,
    { hint },
  );
  statuses.set(e, status);
  return e;
}

/**
 * The status of an error made by {@link sourceError}; `failed` for any other error.
 *
 * @param e The error.
 * @returns The status.
 */
export function statusOf(e: unknown): SourceStatus {
  return e instanceof HecateError ? statuses.get(e) ?? "failed" : "failed";
}

/**
 * Whether an error was made by {@link sourceError}: its message and hint were written for users
 * (a `failed` one too, e.g. a helper's exit code), so the framework passes it on as it is.
 * @param e The error.
 * @returns True for an error from {@link sourceError}.
 */
export function isSourceError(e: unknown): e is HecateError {
  return e instanceof HecateError && statuses.has(e);
}

/**
 * The `usage` error a source's `parse` throws for a malformed reference.
 *
 * @param title The source's title.
 * @param ref The reference (shown: it is a location).
 * @param what What is wrong, e.g. `missing the #FIELD part`.
 * @param hint The expected form.
 * @returns The error to throw.
 */
export function malformedRef(title: string, ref: string, what: string, hint: string): HecateError {
  return new HecateError("usage", `Malformed ${title} reference "${ref}": ${what}`, { hint });
}
