/**
 * The profile index: what a master-password reader needs to find a profile by name and to list
 * profiles, kept in the sealed meta (member `index`) so that neither needs every record opened.
 * Profile names are inside the record ciphertexts, so without it every lookup decrypts every
 * record. docs/FORMAT.md, "Meta JSON", describes the member.
 *
 * @module
 */

import { incompleteOf } from "../incomplete.ts";
import type { RecordKind } from "./format.ts";
import type { JsonObject } from "./vault.ts";

/** The meta member holding the index: record id (b64u) -> {@link recordSummary}. */
export const INDEX_META = "index";

/**
 * The index entry of a record: its name and the non-secret fields `server list` shows, in a
 * fixed member order (so two summaries of one value serialise to the same text).
 *
 * @param value The record plaintext.
 * @returns The summary.
 */
export function recordSummary(value: JsonObject): JsonObject {
  // A stored secret (`hecate secret`) is listed by its name only.
  if (recordKindOf(value) === "secret") return { name: value.name, kind: "secret" };
  const out: JsonObject = {};
  for (const k of ["name", "engine", "host", "port", "database", "user", "auth", "tags"]) {
    if (value[k] !== undefined) out[k] = value[k];
  }
  // A malformed marker still lists the profile as incomplete (fail closed, as profileFromRecord).
  if (value.incomplete !== undefined) {
    out.incomplete = incompleteOf(value.incomplete)?.missing ?? [];
  }
  // The same test as totpConfigOf: a profile with a TOTP secret requires its code.
  const totp = value.totp as { secret?: unknown } | undefined;
  if (typeof totp === "object" && totp !== null && typeof totp.secret === "string") {
    out.totp = true;
  }
  return out;
}

/**
 * Whether an opened record still matches its index entry.
 *
 * @param value The record plaintext.
 * @param entry The index entry the meta carries for it.
 * @returns True when they agree.
 */
export function matchesSummary(value: JsonObject, entry: JsonObject): boolean {
  return JSON.stringify(recordSummary(value)) === JSON.stringify(entry);
}

/**
 * The kind of record a plaintext is: a stored secret carries `"kind": "secret"`; anything else
 * is a profile (profiles were the only kind before secrets).
 *
 * @param value The record plaintext.
 * @returns Its kind.
 */
export function recordKindOf(value: JsonObject): RecordKind {
  return value.kind === "secret" ? "secret" : "profile";
}

/**
 * The kind of record an index entry describes (see {@link recordSummary}).
 *
 * @param summary The index entry.
 * @returns Its kind.
 */
export function summaryKindOf(summary: Readonly<JsonObject>): RecordKind {
  return summary.kind === "secret" ? "secret" : "profile";
}
