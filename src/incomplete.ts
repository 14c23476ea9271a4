/**
 * Incomplete profiles: a profile brought over by an import whose login cannot be completed
 * automatically (for example a Hecate Pyx `windows_auth` entry without a user name, where that
 * tool logged in as the current Windows user). It is stored with everything the source had and a
 * marker naming what is missing; every use is refused with `invalid_profile` and the exact
 * `hecate server edit` command that completes it, and that edit clears the marker.
 *
 * What can be missing, one item each:
 *
 * - `host`, `user`, `database`: the profile field;
 * - `params.NAME`: a method-specific field (`params.domain`, `params.tenantId`, ...);
 * - `secrets.NAME`: a secret (`secrets.password`, `secrets.token`);
 * - `ssh`: the SSH tunnel (the source named one, without a usable host or user).
 *
 * @module
 */

import { HecateError } from "./errors.ts";

/**
 * The marker stored in an incomplete profile's record (`incomplete` in docs/FORMAT.md).
 *
 * @example
 * ```ts
 * import type { IncompleteMarker } from "./incomplete.ts";
 * const marker: IncompleteMarker = {
 *   source: "hecate-pyx",
 *   reason: "Hecate Pyx logged in as the current Windows user",
 *   missing: ["user", "params.domain", "secrets.password"],
 * };
 * console.log(marker.missing.length);
 * ```
 */
export interface IncompleteMarker {
  /** Where the profile came from, e.g. `hecate-pyx`. */
  source: string;
  /** Why it could not be completed, one line, never a secret. */
  reason: string;
  /** What is missing (see the module documentation for the item forms). */
  missing: string[];
}

/** Reads a marker from a stored value; anything malformed counts as "no marker". */
export function incompleteOf(v: unknown): IncompleteMarker | undefined {
  const o = v as Partial<IncompleteMarker> | undefined;
  if (!o || typeof o !== "object" || !Array.isArray(o.missing)) return undefined;
  return {
    source: typeof o.source === "string" ? o.source : "",
    reason: typeof o.reason === "string" ? o.reason : "",
    missing: o.missing.filter((m): m is string => typeof m === "string"),
  };
}

/** `tenantId` -> `tenant-id`: the CLI flag of a method-specific field. */
function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * Describes the missing items for people: `user, domain, secret password`.
 *
 * @param missing The marker's items.
 * @returns One line.
 */
export function describeMissing(missing: readonly string[]): string {
  return missing.map((m) =>
    m.startsWith("params.")
      ? m.slice(7)
      : m.startsWith("secrets.")
      ? `secret ${m.slice(8)}`
      : m === "ssh"
      ? "SSH tunnel host and user"
      : m
  ).join(", ");
}

/**
 * The `hecate server edit` command that supplies the missing items (secrets on standard input,
 * never as flags).
 *
 * @param name Profile name.
 * @param missing The marker's items.
 * @returns The command line, with upper-case placeholders for the values.
 */
export function completionCommand(name: string, missing: readonly string[]): string {
  const flags: string[] = [];
  let secrets = false;
  for (const m of missing) {
    if (m === "host" || m === "user" || m === "database") {
      flags.push(`--${m} ${m.toUpperCase()}`);
    } else if (m.startsWith("params.")) {
      const p = m.slice(7);
      flags.push(`--${kebab(p)} ${kebab(p).replaceAll("-", "_").toUpperCase()}`);
    } else if (m.startsWith("secrets.")) {
      secrets = true;
    } else if (m === "ssh") {
      flags.push("--ssh USER@HOST[:PORT]");
    }
  }
  if (secrets) flags.push("--secret-stdin");
  return `hecate server edit ${name} ${flags.join(" ")}`.trimEnd();
}

/**
 * The refusal for using an incomplete profile: exit 17 (`invalid_profile`) with the command that
 * completes it.
 *
 * @param name Profile name.
 * @param marker The profile's marker.
 * @returns The error.
 */
export function incompleteError(name: string, marker: IncompleteMarker): HecateError {
  const why = marker.reason ? ` (${marker.reason})` : "";
  return new HecateError(
    "invalid_profile",
    `Profile "${name}" is incomplete: missing ${describeMissing(marker.missing)}${why}`,
    { hint: `complete it with '${completionCommand(name, marker.missing)}'` },
  );
}
