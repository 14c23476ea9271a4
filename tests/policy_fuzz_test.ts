/**
 * Fuzzing the policy's value parser and the stored member's reader: any key and value text either
 * parses to a value whose canonical text parses back to the same value, or is refused with one
 * `usage` error on one line; a stored member of any shape is read or refused as `vault_integrity`,
 * never anything else.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import {
  formatPolicyValue,
  parsePolicyValue,
  POLICY_KEYS,
  policyOf,
  withPolicySetting,
} from "../src/policy/policy.ts";

const keys = Object.keys(POLICY_KEYS);
const anyKey = fc.oneof(
  fc.constantFrom(...keys),
  fc.string({ maxLength: 30, unit: "binary" }),
);
const valueText = fc.oneof(
  fc.string({ maxLength: 60, unit: "binary" }),
  fc.constantFrom("on", "off", "0", "none", "closed", "warn", "15m", "90d", "a,b", "1000"),
  fc.constantFrom("\u2028", "x\ny", "\u0000", "a,\u2029b"),
  fc.tuple(fc.integer({ min: -5, max: 200_000 }), fc.constantFrom("", "s", "m", "h", "d"))
    .map(([n, u]) => `${n}${u}`),
);

Deno.test("fuzz: parsePolicyValue round-trips what it accepts and refuses the rest with one usage line", () => {
  fc.assert(
    fc.property(anyKey, valueText, (key, text) => {
      let value;
      try {
        value = parsePolicyValue(key, text);
      } catch (e) {
        assert.ok(e instanceof HecateError, `not a HecateError: ${e}`);
        assert.equal(e.code, "usage");
        // deno-lint-ignore no-control-regex
        assert.ok(!/[\u0000-\u001f\u2028\u2029]/.test(e.message), JSON.stringify(e.message));
        assert.ok(e.message.length < 300, e.message);
        return;
      }
      const canonical = formatPolicyValue(key, value);
      assert.deepEqual(parsePolicyValue(key, canonical), value, `${key}=${text}`);
      // Setting it in a meta and reading the meta back gives the same typed value.
      const { meta, now } = withPolicySetting({}, key, text);
      assert.equal(now, canonical);
      const field = POLICY_KEYS[key]!.field;
      assert.deepEqual(policyOf(meta)[field], value);
    }),
    { numRuns: 500 },
  );
});

Deno.test("fuzz: a stored policy member of any shape is read or refused as vault_integrity", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 3 }), (member) => {
      try {
        policyOf({ policy: member });
      } catch (e) {
        assert.ok(e instanceof HecateError, `not a HecateError: ${e}`);
        assert.equal(e.code, "vault_integrity");
      }
    }),
    { numRuns: 300 },
  );
});
