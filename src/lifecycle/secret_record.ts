/**
 * A stored secret that is not a database login (`hecate secret`): its record plaintext
 * (docs/FORMAT.md, "Secret JSON"), and how a new value becomes its next version. The value sits in
 * the same `secrets` map a profile has (as its `value` entry), so the profile history machinery
 * (src/lifecycle/history.ts) keeps its previous versions unchanged.
 *
 * @module
 */

import type { Actor } from "../audit/entry.ts";
import { HecateError } from "../errors.ts";
import { validateName } from "../profile.ts";
import { checkValue, type ComplexityRule, validateRule } from "./complexity.ts";
import {
  DEFAULT_KEEP,
  firstHistory,
  historyOf,
  MAX_KEEP,
  type ProfileHistory,
  recordChange,
  validKeep,
  withKeep,
} from "./history.ts";

/** Longest value accepted (bytes of UTF-8): a secret is a token or a key, not a file. */
export const MAX_SECRET_BYTES = 64 * 1024;

/** The plaintext of a secret record. */
export interface SecretRecord {
  /** Always `secret`: what tells this record from a profile. */
  kind: "secret";
  /** 1-64 letters, digits, '.', '_' or '-'. */
  name: string;
  /** `{ value: { value: "..." } }`: the current value. */
  secrets: { value: { value: string } };
  /** ISO time of creation. */
  created: string;
  /** ISO time of the last change. */
  updated: string;
  /** Previous values and who made each version. */
  history?: ProfileHistory;
  /** The rule every new value must meet. */
  complexity?: ComplexityRule;
}

/**
 * Vault-wide defaults a caller may pass (the vault's policy): each applies where the secret sets
 * nothing of its own.
 */
export interface LifecycleDefaults {
  /** Complexity rule for values. */
  complexity?: ComplexityRule | undefined;
  /** Previous versions to keep. */
  keep?: number | undefined;
}

/**
 * The rule and history length that apply to a secret: its own, else the defaults given, else
 * no rule and {@link DEFAULT_KEEP}.
 *
 * @param own The secret's own settings (from its record, or as being set).
 * @param defaults Vault-wide defaults, if the caller has any.
 * @returns What applies.
 */
export function effectiveRules(
  own: { complexity?: ComplexityRule | undefined; keep?: number | undefined },
  defaults: LifecycleDefaults = {},
): { complexity: ComplexityRule | undefined; keep: number } {
  return {
    complexity: own.complexity ?? defaults.complexity,
    keep: own.keep ?? defaults.keep ?? DEFAULT_KEEP,
  };
}

/**
 * Reads a secret record's plaintext, checking its shape.
 *
 * @param value The record plaintext.
 * @returns The secret.
 * @throws {HecateError} `vault_integrity` when it is not a well-formed secret.
 */
export function secretOf(value: Record<string, unknown>): SecretRecord {
  const v = value as unknown as SecretRecord;
  const ok = v.kind === "secret" && typeof v.name === "string" &&
    typeof v.secrets === "object" && v.secrets !== null &&
    typeof v.secrets.value?.value === "string" && typeof v.created === "string" &&
    typeof v.updated === "string";
  if (!ok) throw new HecateError("vault_integrity", "A stored secret's record is malformed");
  historyOf(v); // a malformed history is vault_integrity too
  return structuredClone(v);
}

/** Options of {@link nextSecret}. */
export interface NextSecretOptions {
  /** Set the secret's own complexity rule (kept for later values). */
  complexity?: ComplexityRule | undefined;
  /** Set how many previous versions the secret keeps. */
  keep?: number | undefined;
  /** Vault-wide defaults (see {@link effectiveRules}). */
  defaults?: LifecycleDefaults | undefined;
}

/**
 * The record after setting a value: a new secret (version 1), or the next version of an existing
 * one, the value it replaces kept as a previous version. The value is checked against the rule
 * that applies; a value equal to the current one makes no new version.
 *
 * @param before The stored secret, or undefined for a new one.
 * @param name Its name.
 * @param value The new value.
 * @param actor Who sets it.
 * @param time ISO time.
 * @param options Rule and history length to set; vault defaults.
 * @returns The record to store.
 * @throws {HecateError} `invalid_profile` for a bad name, `usage` for an empty, oversized or too
 * weak value, a malformed rule or a bad number of versions.
 */
export function nextSecret(
  before: SecretRecord | undefined,
  name: string,
  value: string,
  actor: Actor,
  time: string,
  options: NextSecretOptions = {},
): SecretRecord {
  validateName(name);
  if (value === "") throw new HecateError("usage", "An empty secret was given");
  if (new TextEncoder().encode(value).length > MAX_SECRET_BYTES) {
    throw new HecateError("usage", `A secret holds at most ${MAX_SECRET_BYTES} bytes`);
  }
  if (options.keep !== undefined && !validKeep(options.keep)) {
    throw new HecateError("usage", `Versions to keep must be a whole number from 0 to ${MAX_KEEP}`);
  }
  if (options.complexity !== undefined) validateRule(options.complexity);
  const own = {
    complexity: options.complexity ?? before?.complexity,
    keep: options.keep ?? before?.history?.keep,
  };
  const rules = effectiveRules(own, options.defaults);
  if (rules.complexity) checkValue(rules.complexity, value, `The value for secret "${name}"`);
  const secrets = { value: { value } };
  let history: ProfileHistory;
  if (before === undefined) {
    history = firstHistory(actor, "set", time);
    if (options.keep !== undefined) history.keep = options.keep;
  } else {
    history = recordChange(before, secrets, actor, "set", time, rules.keep);
    if (options.keep !== undefined) history = withKeep(history, options.keep);
  }
  return {
    kind: "secret",
    name,
    secrets,
    created: before?.created ?? time,
    updated: time,
    history,
    ...(own.complexity ? { complexity: own.complexity } : {}),
  };
}
