/**
 * The health of a profile's sources, for `hecate server test` and `hecate sources --check`: each
 * reference's source asked (its `health`, else a resolve whose answer is dropped), within the
 * profile's source timeout. Never a value in the result.
 *
 * @module
 */

import { type Profile, refsOf } from "../../src/profile.ts";
import { statusOf } from "./errors.ts";
import { parseRef, sourceFor } from "./registry.ts";
import {
  credentialsFor,
  DEFAULT_SOURCE_TIMEOUT_MS,
  isSourceCredential,
  TimedOut,
  withTimeout,
} from "./resolve.ts";

/** One reference of a profile with its source's health. */
export interface RefHealth {
  /** The secret field, or `from`. */
  field: string;
  /** The reference. */
  ref: string;
  /** The scheme. */
  scheme: string;
  /** The source's title, or the scheme when none is registered for it. */
  title: string;
  /** Whether the source answered. */
  ok: boolean;
  /** One line, no secret. */
  detail: string;
  /** Milliseconds the check took. */
  latencyMs: number;
}

/**
 * The references of a profile, in the order they are tried (`from` first).
 *
 * @param profile The profile.
 * @returns Field and reference pairs.
 */
export function profileRefs(profile: Profile): { field: string; ref: string }[] {
  const out = (profile.sources?.from ?? []).map((ref) => ({ field: "from", ref }));
  for (const [field, s] of Object.entries(profile.secrets)) {
    if (isSourceCredential(field)) continue;
    for (const ref of refsOf(s) ?? []) out.push({ field, ref });
  }
  return out;
}

/**
 * Checks every source of a profile.
 *
 * @param profile The profile (its source credentials are used).
 * @param env Environment lookup.
 * @returns One entry per reference.
 */
export async function checkProfileSources(
  profile: Profile,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): Promise<RefHealth[]> {
  const timeoutMs = profile.sources?.timeoutMs ?? DEFAULT_SOURCE_TIMEOUT_MS;
  const out: RefHealth[] = [];
  for (const { field, ref: raw } of profileRefs(profile)) {
    const scheme = raw.slice(0, Math.max(0, raw.indexOf(":")));
    const t0 = performance.now();
    const base = { field, ref: raw, scheme, title: sourceFor(scheme)?.title ?? scheme };
    try {
      const ref = parseRef(raw);
      const source = sourceFor(ref.scheme)!;
      const credentials = credentialsFor(profile, source.credentialScope ?? ref.scheme);
      if (!source.health && source.dynamic) {
        out.push({ ...base, ok: true, detail: "no health check", latencyMs: 0 });
        continue;
      }
      const h = await withTimeout(async (signal) => {
        const ctx = { signal, credentials, env, params: profile.params ?? {} };
        if (source.health) return await source.health(ref, ctx);
        await source.resolve(ref, ctx);
        return { ok: true, detail: "answered", latencyMs: performance.now() - t0 };
      }, timeoutMs);
      const detail = typeof h?.detail === "string" ? h.detail.slice(0, 120) : "";
      out.push({ ...base, ok: h?.ok === true, detail, latencyMs: performance.now() - t0 });
    } catch (e) {
      const status = e instanceof TimedOut ? "timed_out" : statusOf(e);
      out.push({
        ...base,
        ok: false,
        detail: status.replace("_", " "),
        latencyMs: performance.now() - t0,
      });
    }
  }
  return out;
}
