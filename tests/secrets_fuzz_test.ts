/**
 * Property tests of the stored-secret inputs: any `--secret VAR=NAME` text is a mapping or a
 * `usage` error; any name, value, rule and history length given to a new version is accepted or
 * refused with a documented code whose message never holds the value (canary); a record built
 * from accepted input reads back as the same secret, with one version more per changed value.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { parseSecretMapping } from "../src/run/env.ts";
import { nextSecret, secretOf, type SecretRecord } from "../src/lifecycle/secret_record.ts";

const ACTOR = { kind: "password" } as const;
const CANARY = "fz-canary";

Deno.test("secret mapping fuzz: a mapping or usage, never another failure", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (text) => {
      try {
        const m = parseSecretMapping(text);
        assert.equal(`${m.variable}=${m.secret}`, text);
      } catch (e) {
        assert.ok(e instanceof HecateError && e.code === "usage", String(e));
      }
    }),
    { numRuns: 400 },
  );
});

Deno.test("secret versions fuzz: documented codes only, no value in a message, versions count up", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.constantFrom("tok", "a.b-c_1"), fc.string({ maxLength: 70 })),
      fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 6 }),
      fc.option(
        fc.record({
          minLength: fc.integer({ min: -2, max: 140 }),
          classes: fc.integer({ min: -1, max: 6 }),
        }),
        { nil: undefined },
      ),
      fc.option(fc.integer({ min: -3, max: 110 }), { nil: undefined }),
      (name, values, complexity, keep) => {
        let rec: SecretRecord | undefined;
        let versions = 0;
        for (const v of values) {
          const value = v === "" ? v : `${CANARY}${v}`;
          try {
            const next = nextSecret(rec, name, value, ACTOR, new Date().toISOString(), {
              complexity,
              keep,
            });
            const again = secretOf(next as unknown as Record<string, unknown>);
            assert.equal(again.secrets.value.value, value);
            if (rec?.secrets.value.value !== value) versions++;
            assert.equal(again.history!.current.version, versions);
            assert.ok(again.history!.previous.length <= (keep ?? 5));
            rec = again;
          } catch (e) {
            assert.ok(
              e instanceof HecateError &&
                (e.code === "usage" || (e.code === "invalid_profile" && /name/.test(e.message))),
              String(e),
            );
            assert.ok(!e.message.includes(CANARY) && !(e.hint ?? "").includes(CANARY));
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});
