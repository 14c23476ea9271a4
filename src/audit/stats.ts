/**
 * Usage statistics from the audit trail (`hecate stats`): per profile and per actor, counts of
 * unlocks, reads, queries and failures, rows, query-duration percentiles and the last use. The
 * trail holds no secrets, so this needs no key; whether the lines are genuine is a separate
 * question (`audit verify`).
 *
 * @module
 */

import type { AuditEntry } from "./entry.ts";

/** The figures of one profile or one actor. */
export interface UsageStats {
  /** Successful unlocks (actors only: an unlock concerns no profile). */
  unlocks: number;
  /** Successful `profile.read` records (secrets released to connect). */
  reads: number;
  /** Successful statements. */
  queries: number;
  /** Failed records of any event, by reason (`unknown` when none is recorded). */
  failures: Record<string, number>;
  /** Rows returned or affected, summed over the successful statements. */
  rows: number;
  /** Median statement duration, ms (nearest rank), or null without statements. */
  p50Ms: number | null;
  /** 95th-percentile statement duration, ms (nearest rank), or null without statements. */
  p95Ms: number | null;
  /** Time of the latest record, ISO 8601, or null. */
  lastUse: string | null;
}

/** Statistics by profile name and by actor label. */
export interface TrailStats {
  /** Records counted. */
  entries: number;
  /** Per profile name. */
  profiles: Record<string, UsageStats>;
  /** Per actor: `password`, `apikey:NAME` (or `apikey:ID` without a name), `none`. */
  actors: Record<string, UsageStats>;
}

/**
 * The label of an actor in the statistics.
 *
 * @param a The actor of an entry.
 * @returns `password`, `apikey:NAME`, `apikey:ID`, `apikey`, `age:LABEL`, `age:ID`,
 *   `pkcs11:TOKEN`, `pkcs11:ID` or `none`.
 */
export function actorLabel(a: AuditEntry["actor"] | undefined): string {
  if (!a || typeof a.kind !== "string") return "none";
  if (a.kind !== "apikey" && a.kind !== "age" && a.kind !== "pkcs11") return a.kind;
  const who = a.name ?? a.id;
  return who ? `${a.kind}:${who}` : a.kind;
}

/**
 * The nearest-rank percentile of sorted values.
 *
 * @param sorted Values in ascending order.
 * @param p The percentile, 0 < p <= 100.
 * @returns The value, or null for no values.
 */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

interface Acc {
  stats: UsageStats;
  durations: number[];
}

function empty(): Acc {
  return {
    stats: {
      unlocks: 0,
      reads: 0,
      queries: 0,
      failures: {},
      rows: 0,
      p50Ms: null,
      p95Ms: null,
      lastUse: null,
    },
    durations: [],
  };
}

function add(acc: Acc, e: AuditEntry): void {
  const s = acc.stats;
  if (e.outcome === "fail") {
    const reason = typeof e.reason === "string" && e.reason ? e.reason : "unknown";
    s.failures[reason] = (s.failures[reason] ?? 0) + 1;
  } else if (e.event === "unlock") s.unlocks++;
  else if (e.event === "profile.read") s.reads++;
  else if (e.event === "query") {
    s.queries++;
    if (typeof e.rows === "number" && Number.isFinite(e.rows)) s.rows += e.rows;
    if (typeof e.duration_ms === "number" && Number.isFinite(e.duration_ms)) {
      acc.durations.push(e.duration_ms);
    }
  }
  if (typeof e.time === "string" && (s.lastUse === null || e.time > s.lastUse)) s.lastUse = e.time;
}

function finish(accs: Map<string, Acc>): Record<string, UsageStats> {
  const out: Record<string, UsageStats> = {};
  for (const name of [...accs.keys()].sort()) {
    const acc = accs.get(name)!;
    const sorted = acc.durations.sort((a, b) => a - b);
    out[name] = { ...acc.stats, p50Ms: percentile(sorted, 50), p95Ms: percentile(sorted, 95) };
  }
  return out;
}

/**
 * Computes the statistics of trail entries.
 *
 * @param entries The parsed entries (unreadable lines left out by the caller).
 * @param since Only entries at or after this time.
 * @returns Per profile and per actor.
 */
export function trailStats(entries: Iterable<AuditEntry>, since?: Date): TrailStats {
  const profiles = new Map<string, Acc>();
  const actors = new Map<string, Acc>();
  let count = 0;
  const bucket = (m: Map<string, Acc>, k: string) => {
    let a = m.get(k);
    if (!a) m.set(k, a = empty());
    return a;
  };
  for (const e of entries) {
    if (since && !(Date.parse(e.time) >= since.getTime())) continue;
    count++;
    add(bucket(actors, actorLabel(e.actor)), e);
    if (typeof e.profile === "string") add(bucket(profiles, e.profile), e);
  }
  return { entries: count, profiles: finish(profiles), actors: finish(actors) };
}
