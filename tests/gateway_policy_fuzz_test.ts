/**
 * Property tests of the key checks' parsers and matchers: any text given to `apikey create`
 * (CIDR, rate, level, pattern) is accepted or refused with `usage`, never another failure; a
 * matcher never throws on any client address or User-Agent; a CIDR always contains its own
 * network address; a pattern without `*` matches only itself.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { inCidr, parseCidr, userAgentMatches, validatePolicy } from "../src/gateway/policy.ts";

function onlyUsage(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof HecateError && e.code === "usage", String(e));
  }
}

Deno.test("policy fuzz: bad text is usage, matchers never throw", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 60 }), fc.string({ maxLength: 60 }), (a, b) => {
      onlyUsage(() => validatePolicy({ allowFrom: [a] }));
      onlyUsage(() => validatePolicy({ rate: a }));
      onlyUsage(() => validatePolicy({ userAgent: a }));
      onlyUsage(() => validatePolicy({ level: a as "read" }));
      assert.equal(typeof userAgentMatches(a, b), "boolean");
      let valid = true;
      try {
        parseCidr(b);
      } catch {
        valid = false;
      }
      if (valid) assert.equal(typeof inCidr(a, b), "boolean");
    }),
    { numRuns: 400 },
  );
});

Deno.test("policy fuzz: a block holds its address; a literal pattern matches only itself", () => {
  fc.assert(
    fc.property(
      fc.ipV4(),
      fc.integer({ min: 0, max: 32 }),
      fc.string({ maxLength: 30 }).filter((s) => !s.includes("*")),
      fc.string({ maxLength: 30 }),
      (ip, bits, lit, other) => {
        assert.ok(inCidr(ip, `${ip}/${bits}`));
        assert.ok(inCidr(ip, "0.0.0.0/0"));
        assert.ok(userAgentMatches(lit, lit));
        if (other !== lit) assert.ok(!userAgentMatches(other, lit));
      },
    ),
    { numRuns: 400 },
  );
  fc.assert(
    fc.property(fc.ipV6(), (ip) => {
      assert.ok(inCidr(ip, `${ip}/128`), ip);
      assert.ok(inCidr(ip, "::/0"), ip);
    }),
    { numRuns: 300 },
  );
});
