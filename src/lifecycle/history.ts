/**
 * Version history of a profile's secrets: the previous secret maps, sealed inside the profile's
 * own record (docs/FORMAT.md, "Profile JSON"), so they share the record's key, survive `rotate`
 * and `passwd` (which re-seal records as they are) and are readable only where the record is
 * (an API key: its scope). Listing shows version, time, actor and reason, never a value.
 *
 * @module
 */

import type { Actor } from "../audit/entry.ts";
import { HecateError } from "../errors.ts";
import type { SecretValue } from "../profile.ts";

/** Previous versions kept when a profile sets no `keep`. */
export const DEFAULT_KEEP = 5;
/** The most previous versions a profile may keep (bounds the record's size). */
export const MAX_KEEP = 100;

/**
 * What keeps a version history: a profile, or a stored secret (src/lifecycle/secret_record.ts),
 * whose one value is its `secrets` member's `value` entry.
 */
export interface Versioned {
  /** The profile's (or secret's) name. */
  name: string;
  /** The current secrets map. */
  secrets: Record<string, SecretValue>;
  /** ISO time of creation. */
  created?: string | undefined;
  /** ISO time of the last change. */
  updated?: string | undefined;
}

/** Who made a version, why, and when (no value). */
export interface VersionMeta {
  /** 1 for the profile's first secrets, one more for each change. */
  version: number;
  /** ISO time of the change. */
  time: string;
  /** `password`, or `apikey:<name>` (never a key). */
  actor: string;
  /** `add`, `import`, `edit`, `rollback to N`, ... */
  reason: string;
}

/** A previous version: its metadata and the secrets map it had. */
export interface SecretVersion extends VersionMeta {
  /** The profile's `secrets` member as it was. */
  secrets: Record<string, SecretValue>;
}

/** The `history` member of a profile record. */
export interface ProfileHistory {
  /** The current secrets' metadata. */
  current: VersionMeta;
  /** Previous versions, newest first, at most `keep`. */
  previous: SecretVersion[];
  /** How many previous versions to keep. @default {DEFAULT_KEEP} */
  keep?: number;
}

/**
 * The text stored for an actor.
 *
 * @param a The audit actor.
 * @returns `password`, `apikey:`, `age:` or `pkcs11:` with a name or id, or `none`.
 */
export function actorText(a: Actor): string {
  return a.kind === "apikey" || a.kind === "age" || a.kind === "pkcs11"
    ? `${a.kind}:${a.name ?? a.id ?? "?"}`
    : a.kind;
}

function integrity(name: string): HecateError {
  return new HecateError(
    "vault_integrity",
    `Profile "${name}": its version history is malformed`,
  );
}

function isMeta(v: unknown): v is VersionMeta {
  const m = v as VersionMeta;
  return typeof m === "object" && m !== null && Number.isInteger(m.version) && m.version > 0 &&
    typeof m.time === "string" && typeof m.actor === "string" && typeof m.reason === "string";
}

/**
 * The history of a profile; a record written before history existed has one version, 1, made
 * at its `updated` time by an unknown actor.
 *
 * @param p The profile (secrets included).
 * @returns The history (a fresh copy).
 * @throws {HecateError} `vault_integrity` when the stored member is malformed.
 */
export function historyOf(p: Versioned): ProfileHistory {
  const h = (p as { history?: unknown }).history as ProfileHistory | undefined;
  if (h === undefined) {
    return {
      current: {
        version: 1,
        time: p.updated ?? p.created ?? "",
        actor: "unknown",
        reason: "initial",
      },
      previous: [],
    };
  }
  if (typeof h !== "object" || h === null || !isMeta(h.current) || !Array.isArray(h.previous)) {
    throw integrity(p.name);
  }
  for (const v of h.previous) {
    if (!isMeta(v) || typeof v.secrets !== "object" || v.secrets === null) throw integrity(p.name);
  }
  if (h.keep !== undefined && !validKeep(h.keep)) throw integrity(p.name);
  return structuredClone(h);
}

/** Whether `n` is an allowed number of previous versions to keep (0 turns history off). */
export function validKeep(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= MAX_KEEP;
}

/**
 * The history for a new profile: version 1.
 *
 * @param actor Who added it.
 * @param reason `add` or `import`.
 * @param time ISO time.
 * @returns The member to store.
 */
export function firstHistory(actor: Actor, reason: string, time: string): ProfileHistory {
  return { current: { version: 1, time, actor: actorText(actor), reason }, previous: [] };
}

/** A canonical text of a secrets map (key order does not count). */
function canonical(s: Record<string, SecretValue>): string {
  return JSON.stringify(Object.keys(s).sort().map((k) => [k, s[k]]));
}

/**
 * Records a change of secrets: when `next` differs from `before.secrets`, the old map becomes
 * the newest previous version (the oldest beyond `keep` are dropped) and a new current version
 * is made. An unchanged map leaves the history as it was.
 *
 * @param before The profile as stored before the change.
 * @param next The new secrets map.
 * @param actor Who changes it.
 * @param reason Why (`edit`, `rollback to 3`, ...).
 * @param time ISO time.
 * @param defaultKeep Versions kept when the profile sets no `keep` (the vault policy's
 * `history.keep`).
 * @returns The history to store.
 */
export function recordChange(
  before: Versioned,
  next: Record<string, SecretValue>,
  actor: Actor,
  reason: string,
  time: string,
  defaultKeep: number = DEFAULT_KEEP,
): ProfileHistory {
  const h = historyOf(before);
  if (canonical(before.secrets) === canonical(next)) return h;
  const keep = h.keep ?? defaultKeep;
  const newest = Math.max(h.current.version, ...h.previous.map((v) => v.version));
  const previous = [{ ...h.current, secrets: structuredClone(before.secrets) }, ...h.previous]
    .slice(0, keep);
  return {
    current: { version: newest + 1, time, actor: actorText(actor), reason },
    previous,
    ...(h.keep !== undefined ? { keep: h.keep } : {}),
  };
}

/**
 * Sets how many previous versions a profile keeps, dropping the oldest beyond it.
 *
 * @param h The history.
 * @param keep 0 to 100.
 * @returns The history to store.
 * @throws {HecateError} `usage` for a number out of range.
 */
export function withKeep(h: ProfileHistory, keep: number): ProfileHistory {
  if (!validKeep(keep)) {
    throw new HecateError("usage", `Versions to keep must be a whole number from 0 to ${MAX_KEEP}`);
  }
  return { ...h, keep, previous: h.previous.slice(0, keep) };
}

/**
 * The secrets of a previous version.
 *
 * @param p The profile.
 * @param version The version number.
 * @returns Its secrets map.
 * @throws {HecateError} `usage` when it is the current version or not kept.
 */
export function secretsOfVersion(p: Versioned, version: number): Record<string, SecretValue> {
  const h = historyOf(p);
  if (version === h.current.version) {
    throw new HecateError("usage", `Version ${version} of "${p.name}" is already current`);
  }
  const hit = h.previous.find((v) => v.version === version);
  if (!hit) {
    throw new HecateError("usage", `Profile "${p.name}" has no kept version ${version}`, {
      hint: `see 'hecate server history ${p.name}'`,
    });
  }
  return structuredClone(hit.secrets);
}

/**
 * Every version's metadata, newest first, the current one marked; never a value.
 *
 * @param p The profile.
 * @returns The list.
 */
export function versionList(p: Versioned): (VersionMeta & { current: boolean })[] {
  const h = historyOf(p);
  return [
    { ...h.current, current: true },
    ...h.previous.map(({ secrets: _, ...m }) => ({ ...m, current: false })),
  ];
}
