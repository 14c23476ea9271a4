/**
 * The secret sources of an open vault's profiles: each profile's references with their health
 * (`hecate server test`), and the sources in use across the profiles (`hecate sources`).
 *
 * @module
 */

import type { VaultCore } from "./_core.ts";
import {
  checkProfileSources,
  profileRefs,
  type RefHealth,
} from "../../providers/sources/health.ts";
import { sourceFor } from "../../providers/sources/registry.ts";

export type { RefHealth };

/**
 * One scheme in use across the profiles.
 *
 * @example
 * ```ts ignore
 * for (const s of await vault.sourcesInUse()) console.log(s.scheme, s.profiles);
 * ```
 */
export interface SourceInUse {
  /** The scheme, e.g. `env`. */
  scheme: string;
  /** The registered source's title; undefined when no source serves the scheme here. */
  title: string | undefined;
  /** How many profiles use it. */
  profiles: number;
  /** How many references use it. */
  refs: number;
  /** With `check`: how many of those references answered. */
  healthy?: number;
}

/**
 * Checks every source of one profile. Releases the profile like a connect (its second factor,
 * then `profile.read`), since sources may be given the profile's source credentials.
 *
 * @param core The open vault.
 * @param name Profile name.
 * @returns One entry per reference, `from` first.
 */
export async function sourceHealth(core: VaultCore, name: string): Promise<RefHealth[]> {
  const { profile } = await core.released(name);
  return await checkProfileSources(profile);
}

/**
 * The schemes the profiles use (with an API key: those in its scope), optionally with health.
 *
 * @param core The open vault.
 * @param check Ask each source (each profile is then released as by a connect).
 * @returns One entry per scheme, sorted.
 */
export async function sourcesInUse(core: VaultCore, check = false): Promise<SourceInUse[]> {
  const by = new Map<string, SourceInUse>();
  for (const { profile } of await core.all()) {
    const refs = profileRefs(profile);
    const seen = new Set<string>();
    const health = check && refs.length ? await sourceHealth(core, profile.name) : undefined;
    for (const [i, { ref }] of refs.entries()) {
      const scheme = ref.slice(0, Math.max(0, ref.indexOf(":")));
      let s = by.get(scheme);
      if (!s) {
        s = { scheme, title: sourceFor(scheme)?.title, profiles: 0, refs: 0 };
        if (check) s.healthy = 0;
        by.set(scheme, s);
      }
      s.refs++;
      if (!seen.has(scheme)) s.profiles++;
      seen.add(scheme);
      if (health?.[i]?.ok) s.healthy = (s.healthy ?? 0) + 1;
    }
  }
  return [...by.values()].sort((a, b) => a.scheme.localeCompare(b.scheme));
}
