/**
 * Checking a profile's references when it is added or edited, through each source's own parser,
 * so a malformed one is refused then (exit 2) rather than at the first connect.
 *
 * @module
 */

import { HecateError } from "../../src/errors.ts";
import { type Profile, refsOf } from "../../src/profile.ts";
import { parseRef } from "./registry.ts";

/**
 * Parses every reference of a profile (secret fields and `sources.from`).
 *
 * @param profile The profile about to be stored.
 * @param only For an edit: the secret fields changed and whether `from` changed (references
 * stored before are left alone, so an edit never fails on one it does not touch).
 * @throws {HecateError} `usage` (exit 2) naming the field and what is wrong with its reference.
 */
export function validateRefs(
  profile: Profile,
  only?: { secrets: readonly string[]; from: boolean },
): void {
  const check = (where: string, ref: string) => {
    try {
      parseRef(ref);
    } catch (e) {
      if (!(e instanceof HecateError)) throw e;
      throw new HecateError("usage", `${where}: ${e.message}`, e.hint ? { hint: e.hint } : {});
    }
  };
  for (const [field, s] of Object.entries(profile.secrets)) {
    if (only && !only.secrets.includes(field)) continue;
    // A shape that is not a list of strings is left to validateProfile (invalid_profile).
    const refs = s && typeof s === "object" ? refsOf(s) : undefined;
    if (!Array.isArray(refs)) continue;
    for (const ref of refs) {
      if (typeof ref === "string") check(`Secret '${field}' of profile "${profile.name}"`, ref);
    }
  }
  if (only && !only.from) return;
  const from = profile.sources?.from;
  if (!Array.isArray(from)) return;
  for (const ref of from) {
    if (typeof ref === "string") check(`--from of profile "${profile.name}"`, ref);
  }
}
