/**
 * Last use of each profile, read from the audit trail (the vault does not record it). The console
 * keeps one {@link LastUses} and reads only the lines appended since its previous look.
 *
 * @module
 */

import { readSince, type TailPosition } from "./trail_tail.ts";

/** The time of the newest `profile.read` record of each profile, kept up to date. */
export class LastUses {
  readonly #times = new Map<string, string>();
  #position: TailPosition | undefined;

  /** @param home The home directory. */
  constructor(readonly home: string) {}

  /**
   * Reads what was appended since the last call (everything the first time).
   *
   * @returns ISO times by profile name (informational: the trail is the source).
   */
  async get(): Promise<ReadonlyMap<string, string>> {
    const { entries, position } = await readSince(this.home, this.#position);
    this.#position = position;
    for (const e of entries) {
      if (e.event === "profile.read" && e.outcome === "ok" && typeof e.profile === "string") {
        this.#times.set(e.profile, e.time);
      }
    }
    return this.#times;
  }
}
