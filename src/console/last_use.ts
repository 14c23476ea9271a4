/**
 * Last use of each profile, read from the audit trail (the vault does not record it).
 *
 * @module
 */

import { trailLines } from "../audit/read.ts";

/**
 * The time of the newest `profile.read` record of each profile.
 *
 * @param home The home directory.
 * @returns ISO times by profile name.
 */
export async function lastUses(home: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const l of trailLines(home)) {
    const e = l.entry;
    if (e && e.event === "profile.read" && e.outcome === "ok" && typeof e.profile === "string") {
      out.set(e.profile, e.time);
    }
  }
  return out;
}
