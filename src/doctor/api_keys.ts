/**
 * Doctor check: API keys that have expired or expire soon (the jobs that use them will start
 * failing with exit 14).
 *
 * @module
 */

import type { ApiKeySummary } from "../api/api_keys.ts";
import { type Finding, shellQuote } from "./finding.ts";

/** A key expiring within this many days is reported. */
export const EXPIRY_WARNING_DAYS = 14;

const DAY_MS = 86_400_000;

/**
 * Judges the keys' expiry times.
 *
 * @param keys The keys (`vault.apiKeys.list()`).
 * @param now Current time.
 * @returns One finding per expired or soon-expiring key.
 */
export function checkApiKeys(
  keys: readonly (
    & Pick<ApiKeySummary, "name" | "expires" | "profiles">
    & Partial<Pick<ApiKeySummary, "secrets">>
  )[],
  now: Date,
): Finding[] {
  const out: Finding[] = [];
  for (const k of keys) {
    if (k.expires === null) continue;
    const left = Date.parse(k.expires) - now.getTime();
    const name = shellQuote(k.name);
    const servers = [
      ...k.profiles.filter((p) => p !== "(removed)").map((p) => `--server ${shellQuote(p)}`),
      ...(k.secrets ?? []).map((s) => `--secret ${shellQuote(s)}`),
    ].join(" ");
    const replace = `hecate apikey create ${shellQuote(`${k.name}-new`)} ${servers} --expires 90d`;
    if (left <= 0) {
      out.push({
        check: "apikey",
        severity: "warn",
        message: `API key "${k.name}" expired at ${k.expires}`,
        fix: `${replace}, then hecate apikey revoke ${name}`,
      });
    } else if (left < EXPIRY_WARNING_DAYS * DAY_MS) {
      const days = Math.floor(left / DAY_MS);
      out.push({
        check: "apikey",
        severity: "warn",
        message: `API key "${k.name}" expires at ${k.expires} (in ${
          days === 0 ? "less than a day" : `${days} day(s)`
        })`,
        fix: `${replace}, put the new key in place, then hecate apikey revoke ${name}`,
      });
    }
  }
  return out;
}
