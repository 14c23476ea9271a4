/**
 * Complexity rules for a profile's stored database password (`complexity` member): a minimum
 * length and how many character classes (upper case, lower case, digits, others) it must use.
 * Checked when `server add`/`edit` store a password value; generated passwords always meet them.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import type { Profile } from "../profile.ts";

/** A profile's rule. */
export interface ComplexityRule {
  /** Fewest characters. */
  minLength?: number;
  /** How many of the 4 classes must appear (1 to 4). */
  classes?: number;
}

const CLASS_TESTS = [/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/];

/**
 * Parses `length=N,classes=K` (either part may be left out).
 *
 * @param text The option's text.
 * @returns The rule.
 * @throws {HecateError} `usage` for anything else.
 */
export function parseComplexity(text: string): ComplexityRule {
  const rule: ComplexityRule = {};
  for (const part of text.split(",")) {
    const m = /^(length|classes)=(\d{1,3})$/.exec(part.trim());
    if (!m) {
      throw new HecateError(
        "usage",
        "--complexity must look like length=16,classes=3 (length 1-128, classes 1-4)",
      );
    }
    if (m[1] === "length") rule.minLength = Number(m[2]);
    else rule.classes = Number(m[2]);
  }
  checkRule(rule, "usage");
  return rule;
}

function checkRule(rule: ComplexityRule, code: "usage" | "invalid_profile"): void {
  const okLen = rule.minLength === undefined ||
    (Number.isInteger(rule.minLength) && rule.minLength >= 1 && rule.minLength <= 128);
  const okCls = rule.classes === undefined ||
    (Number.isInteger(rule.classes) && rule.classes >= 1 && rule.classes <= 4);
  if (!okLen || !okCls || typeof rule !== "object") {
    throw new HecateError(code, "A complexity rule needs length 1-128 and classes 1-4");
  }
}

/**
 * Checks a rule given by a caller (not read from a record).
 *
 * @param rule The rule.
 * @throws {HecateError} `usage` unless length is 1-128 and classes 1-4 (where set).
 */
export function validateRule(rule: ComplexityRule): void {
  checkRule(rule, "usage");
}

/** A rule that asks for something, else undefined (the policy's 0 means "no requirement"). */
function nonEmpty(rule: ComplexityRule | undefined): ComplexityRule | undefined {
  if (!rule) return undefined;
  const out: ComplexityRule = {};
  if (rule.minLength) out.minLength = rule.minLength;
  if (rule.classes) out.classes = rule.classes;
  return out.minLength || out.classes ? out : undefined;
}

/** How many of the 4 character classes a text uses. */
export function classCount(text: string): number {
  return CLASS_TESTS.filter((t) => t.test(text)).length;
}

/**
 * Checks a profile's stored password against its rule. The message names what is missing,
 * never the value.
 *
 * @param p The profile.
 * @param vaultDefault The vault policy's rule, used when the profile has none of its own.
 * @throws {HecateError} `usage` when the password falls short, `invalid_profile` for a
 * malformed rule.
 */
export function checkComplexity(p: Profile, vaultDefault?: ComplexityRule): void {
  const rule = (p as { complexity?: ComplexityRule }).complexity ?? nonEmpty(vaultDefault);
  if (rule === undefined) return;
  const s = p.secrets.password;
  if (!s || !("value" in s)) {
    checkRule(rule, "invalid_profile");
    return; // references are checked by their source, not here
  }
  checkValue(rule, s.value, `The password for "${p.name}"`);
}

/**
 * Checks a value against a rule (a profile's password, a stored secret). The message names what
 * is missing, never the value.
 *
 * @param rule The rule.
 * @param value The value.
 * @param what What the value is, for the message (`The password for "billing"`).
 * @throws {HecateError} `usage` when the value falls short, `invalid_profile` for a malformed
 * rule.
 */
export function checkValue(rule: ComplexityRule, value: string, what: string): void {
  checkRule(rule, "invalid_profile");
  const short = rule.minLength !== undefined && [...value].length < rule.minLength;
  const few = rule.classes !== undefined && classCount(value) < rule.classes;
  if (short || few) {
    throw new HecateError(
      "usage",
      `${what} does not meet its complexity rule: it needs ${
        [
          rule.minLength !== undefined ? `at least ${rule.minLength} characters` : "",
          rule.classes !== undefined
            ? `${rule.classes} of: upper case, lower case, digits, other characters`
            : "",
        ].filter(Boolean).join(" and ")
      }`,
    );
  }
}
