/**
 * The vault's security policy: one set of named settings kept in the sealed meta (member
 * `policy`, docs/FORMAT.md), read with defaults applied, changed one key at a time. This module
 * only defines the keys, parses and validates values, and reads and writes the meta member; the
 * code that enforces each key reads {@link VaultPolicy}.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { parseDuration } from "../access/duration.ts";

/** A policy with every key resolved (defaults applied). Durations in ms; 0 means "no limit". */
export interface VaultPolicy {
  /** Failed attempts (per subject) that start a lockout. */
  lockoutAttempts: number;
  /** Window in which failures are counted, ms. */
  lockoutWindowMs: number;
  /** How long a lockout lasts, ms. */
  lockoutLockMs: number;
  /** Whether the vault's own TOTP must be enabled (unlock then always asks for a code). */
  totpUnlock: boolean;
  /** Profiles that may be released only after their own one-time code. */
  totpProfiles: string[];
  /** Vault-wide default minimum length of stored secrets (0: none); a profile's rule overrides it. */
  complexityMinLength: number;
  /** Vault-wide default number of character classes (0: none); a profile's rule overrides it. */
  complexityClasses: number;
  /** Previous secret versions kept by default (a profile's own `keep` overrides it). */
  historyKeep: number;
  /** Ceiling on the console session idle limit, ms (0: the console's own). */
  consoleIdleMs: number;
  /** Ceiling on the console session absolute limit, ms (0: the console's own). */
  consoleMaxSessionMs: number;
  /** Longest `agent start --for`, ms (0: no limit). */
  agentMaxForMs: number;
  /** Longest `agent start --idle`, ms (0: no limit). */
  agentMaxIdleMs: number;
  /** Vault-key rotation schedule, ms (0: none). */
  keysRotateEveryMs: number;
  /** What a failed audit write does: `closed` refuses the operation, `warn` only warns. */
  auditFailure: "closed" | "warn";
}

type Kind = "count" | "duration" | "duration-or-off" | "bool" | "names" | "mode";

interface KeySpec {
  kind: Kind;
  field: keyof VaultPolicy;
  /** Inclusive bounds for counts; for durations, in ms. */
  min?: number;
  max?: number;
  help: string;
}

const DAY = 86_400_000;

/** Every policy key, in the order `policy show` lists them. */
export const POLICY_KEYS: Readonly<Record<string, KeySpec>> = {
  "lockout.attempts": {
    kind: "count",
    field: "lockoutAttempts",
    min: 1,
    max: 1000,
    help: "failed attempts that lock a subject out (1-1000)",
  },
  "lockout.window": {
    kind: "duration",
    field: "lockoutWindowMs",
    max: 30 * DAY,
    help: "window in which failures are counted (e.g. 15m)",
  },
  "lockout.lock": {
    kind: "duration",
    field: "lockoutLockMs",
    max: 30 * DAY,
    help: "how long a lockout lasts (e.g. 15m)",
  },
  "totp.unlock": {
    kind: "bool",
    field: "totpUnlock",
    help: "on: the vault's TOTP must stay enabled, so every unlock asks for a code",
  },
  "totp.profiles": {
    kind: "names",
    field: "totpProfiles",
    help: "comma-separated profiles that are released only after their own TOTP code",
  },
  "complexity.min-length": {
    kind: "count",
    field: "complexityMinLength",
    min: 0,
    max: 128,
    help: "default minimum length of stored secrets (0: none; a profile's rule overrides)",
  },
  "complexity.classes": {
    kind: "count",
    field: "complexityClasses",
    min: 0,
    max: 4,
    help: "default character classes required in stored secrets (0-4; a profile's rule overrides)",
  },
  "history.keep": {
    kind: "count",
    field: "historyKeep",
    min: 0,
    max: 100,
    help: "previous secret versions kept by default (0-100; a profile's keep overrides)",
  },
  "console.idle": {
    kind: "duration-or-off",
    field: "consoleIdleMs",
    max: 30 * DAY,
    help: "longest idle time of a console session (off: the console's own limit, 'ui --idle')",
  },
  "console.max-session": {
    kind: "duration-or-off",
    field: "consoleMaxSessionMs",
    max: 30 * DAY,
    help: "longest console session from its unlock (off: 'ui --max-session', default 8h)",
  },
  "agent.max-for": {
    kind: "duration-or-off",
    field: "agentMaxForMs",
    max: 365 * DAY,
    help: "longest 'agent start --for' (off: no limit)",
  },
  "agent.max-idle": {
    kind: "duration-or-off",
    field: "agentMaxIdleMs",
    max: 365 * DAY,
    help: "longest 'agent start --idle' (off: no limit)",
  },
  "keys.rotate-every": {
    kind: "duration-or-off",
    field: "keysRotateEveryMs",
    max: 3650 * DAY,
    help: "rotate the vault keys this often in 'rotate-due' (off: never)",
  },
  "audit.on-failure": {
    kind: "mode",
    field: "auditFailure",
    help: "closed: an audit write failure refuses the operation; warn: it only warns",
  },
};

/** The policy of a vault that never set one: today's behaviour. */
export const DEFAULT_POLICY: Readonly<VaultPolicy> = Object.freeze({
  lockoutAttempts: 5,
  lockoutWindowMs: 900_000,
  lockoutLockMs: 900_000,
  totpUnlock: false,
  totpProfiles: [],
  complexityMinLength: 0,
  complexityClasses: 0,
  historyKeep: 5,
  consoleIdleMs: 0,
  consoleMaxSessionMs: 0,
  agentMaxForMs: 0,
  agentMaxIdleMs: 0,
  keysRotateEveryMs: 0,
  auditFailure: "closed",
});

/** The meta member's name. */
export const POLICY_META = "policy";
/** The version of the meta member's shape (docs/FORMAT.md, "Meta JSON"). */
export const POLICY_META_VERSION = 1;

/** The meta member as stored. */
export interface StoredPolicy {
  v: number;
  /** The keys that were set, as canonical text. */
  settings: Record<string, string>;
  /** When the vault keys were last rotated (ISO), for `keys.rotate-every`. */
  keysRotated?: string;
}

const NAME = /^[A-Za-z0-9_.@-]{1,64}$/;

/** Typed text shown in an error: quoted and escaped (one line, no control character), cut. */
function shown(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text)
    .replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

function bad(key: string, value: string, spec: KeySpec): HecateError {
  // Policy values are never secrets; the text is still escaped so the error stays one line.
  return new HecateError(
    "usage",
    `Invalid value ${shown(value)} for policy key ${key}: ${spec.help}`,
  );
}

/** Formats milliseconds as the largest whole unit: 90s, 15m, 12h, 30d. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "off";
  for (const [unit, size] of [["d", DAY], ["h", 3_600_000], ["m", 60_000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}

/**
 * Looks a key up.
 *
 * @param key The dotted key.
 * @returns Its spec.
 * @throws {HecateError} `usage` for an unknown key.
 */
function specOf(key: string): KeySpec {
  const spec = Object.hasOwn(POLICY_KEYS, key) ? POLICY_KEYS[key] : undefined;
  if (!spec) {
    throw new HecateError("usage", `Unknown policy key ${shown(key)}`, {
      hint: `keys: ${Object.keys(POLICY_KEYS).join(", ")}`,
    });
  }
  return spec;
}

/**
 * Parses a value for a key into its typed value.
 *
 * @param key The dotted key.
 * @param text The value as typed.
 * @returns The typed value.
 * @throws {HecateError} `usage` for an unknown key or an invalid value.
 */
export function parsePolicyValue(key: string, text: string): VaultPolicy[keyof VaultPolicy] {
  const spec = specOf(key);
  const t = text.trim();
  switch (spec.kind) {
    case "count": {
      const n = /^\d{1,4}$/.test(t) ? Number(t) : NaN;
      if (!(n >= spec.min! && n <= spec.max!)) throw bad(key, text, spec);
      return n;
    }
    case "duration":
    case "duration-or-off": {
      if (spec.kind === "duration-or-off" && (t === "off" || t === "0")) return 0;
      let ms: number;
      try {
        ms = parseDuration(t, key);
      } catch {
        throw bad(key, text, spec);
      }
      if (ms > spec.max!) throw bad(key, text, spec);
      return ms;
    }
    case "bool":
      if (t === "on" || t === "true") return true;
      if (t === "off" || t === "false") return false;
      throw bad(key, text, spec);
    case "names": {
      if (t === "" || t === "none") return [];
      const names = t.split(",").map((s) => s.trim());
      if (names.length > 100 || names.some((n) => !NAME.test(n))) throw bad(key, text, spec);
      return [...new Set(names)].sort();
    }
    case "mode":
      if (t === "closed" || t === "warn") return t;
      throw bad(key, text, spec);
  }
}

/**
 * The canonical text of a typed value (what `policy show` prints and the meta stores).
 *
 * @param key The dotted key.
 * @param value The typed value.
 * @returns Its text.
 */
export function formatPolicyValue(key: string, value: VaultPolicy[keyof VaultPolicy]): string {
  const spec = specOf(key);
  if (spec.kind === "duration" || spec.kind === "duration-or-off") {
    return formatDuration(value as number);
  }
  if (spec.kind === "bool") return value ? "on" : "off";
  if (spec.kind === "names") return (value as string[]).join(",") || "none";
  return String(value);
}

/**
 * The stored member of a meta, if any. Its shape is checked; it was sealed by a writer holding
 * the root key, so a malformed member is an integrity failure, not a user error.
 *
 * @param meta The vault meta.
 * @returns The stored policy, or undefined when the vault never set one.
 * @throws {HecateError} `vault_integrity` for a malformed member.
 */
export function storedPolicyOf(meta: Record<string, unknown>): StoredPolicy | undefined {
  const m = meta[POLICY_META];
  if (m === undefined) return undefined;
  const o = m as Partial<StoredPolicy>;
  const ok = typeof m === "object" && m !== null && o.v === POLICY_META_VERSION &&
    typeof o.settings === "object" && o.settings !== null && !Array.isArray(o.settings) &&
    Object.values(o.settings).every((v) => typeof v === "string") &&
    (o.keysRotated === undefined || typeof o.keysRotated === "string");
  if (!ok) {
    throw new HecateError("vault_integrity", "The vault's stored policy is malformed", {
      hint: "restore a previous generation or a backup",
    });
  }
  return o as StoredPolicy;
}

/**
 * The policy in a meta, with defaults for every key not set. Keys this build does not know (set
 * by a newer build) are skipped.
 *
 * @param meta The vault meta.
 * @returns The resolved policy.
 * @throws {HecateError} `vault_integrity` when a stored value is malformed.
 */
export function policyOf(meta: Record<string, unknown>): VaultPolicy {
  return resolvePolicy(storedPolicyOf(meta));
}

/**
 * Resolves stored settings over the defaults.
 *
 * @param stored The stored member, or undefined.
 * @returns The resolved policy.
 * @throws {HecateError} `vault_integrity` when a stored value is malformed.
 */
export function resolvePolicy(stored: StoredPolicy | undefined): VaultPolicy {
  const out = { ...DEFAULT_POLICY, totpProfiles: [] } as VaultPolicy;
  for (const [key, text] of Object.entries(stored?.settings ?? {})) {
    if (!Object.hasOwn(POLICY_KEYS, key)) continue;
    try {
      (out as unknown as Record<string, unknown>)[POLICY_KEYS[key]!.field] = parsePolicyValue(
        key,
        text,
      );
    } catch {
      throw new HecateError(
        "vault_integrity",
        `The vault's stored policy value of ${key} is invalid`,
      );
    }
  }
  return out;
}

/**
 * A meta with one key set (or, with `value` undefined, back to its default).
 *
 * @param meta The vault meta.
 * @param key The dotted key.
 * @param text The value as typed.
 * @returns The new meta, the old and new canonical texts.
 * @throws {HecateError} `usage` for an unknown key or an invalid value.
 */
export function withPolicySetting(
  meta: Record<string, unknown>,
  key: string,
  text: string,
): { meta: Record<string, unknown>; old: string; now: string } {
  const value = parsePolicyValue(key, text);
  const stored = storedPolicyOf(meta) ?? { v: POLICY_META_VERSION, settings: {} };
  const old = formatPolicyValue(key, resolvePolicy(stored)[POLICY_KEYS[key]!.field]);
  const now = formatPolicyValue(key, value);
  const next: StoredPolicy = { ...stored, settings: { ...stored.settings, [key]: now } };
  return { meta: { ...meta, [POLICY_META]: next }, old, now };
}

/**
 * A meta recording that the vault keys were rotated at `at` (for `keys.rotate-every`).
 *
 * @param meta The vault meta.
 * @param at When.
 * @returns The new meta.
 */
export function withKeysRotated(meta: Record<string, unknown>, at: Date): Record<string, unknown> {
  const stored = storedPolicyOf(meta) ?? { v: POLICY_META_VERSION, settings: {} };
  return { ...meta, [POLICY_META]: { ...stored, keysRotated: at.toISOString() } };
}

/**
 * When the vault keys are next due for rotation, or undefined without a schedule. A vault whose
 * keys were never rotated since the schedule was set counts from when it was set.
 *
 * @param meta The vault meta.
 * @returns ISO time, or undefined.
 */
export function keysNextDue(meta: Record<string, unknown>): string | undefined {
  const stored = storedPolicyOf(meta);
  const every = resolvePolicy(stored).keysRotateEveryMs;
  if (every === 0) return undefined;
  const last = Date.parse(stored?.keysRotated ?? "");
  return new Date((Number.isFinite(last) ? last : 0) + every).toISOString();
}

/**
 * Every key with its value and whether it was set or is the default.
 *
 * @param meta The vault meta.
 * @returns Rows in {@link POLICY_KEYS} order.
 */
export function policyRows(
  meta: Record<string, unknown>,
): { key: string; value: string; set: boolean }[] {
  const stored = storedPolicyOf(meta);
  const p = resolvePolicy(stored);
  return Object.entries(POLICY_KEYS).map(([key, spec]) => ({
    key,
    value: formatPolicyValue(key, p[spec.field]),
    set: stored !== undefined && Object.hasOwn(stored.settings, key),
  }));
}
