/**
 * Property-based tests (fast-check) of the secret-source framework: any text as a reference is
 * parsed or refused with `usage`, and a source answering anything (any JSON value, a throw of any
 * value, a hang) ends in the value or in `secret_unresolved`, within a bounded time, with no canary
 * of the answer, the thrown value or the source credential in the message, the hint or the audit
 * records.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { parseRef, registerSource } from "../providers/sources/registry.ts";
import { type ResolutionRecord, resolveProfile } from "../providers/sources/resolve.ts";
import type { Profile } from "../src/profile.ts";
import { within } from "./support/within.ts";

const CANARY = "canary-src-5c1d";

Deno.test("parseRef: any text parses or is a one-line usage error", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 80 }),
        fc.constantFrom("env", "file", "nosuch", "").chain((s) =>
          fc.string({ maxLength: 40 }).map((r) => `${s}:${r}`)
        ),
      ),
      (text) => {
        try {
          const p = parseRef(text);
          assert.equal(p.raw, text);
        } catch (e) {
          assert.ok(e instanceof HecateError, String(e));
          assert.equal(e.code, "usage");
          assert.ok(!e.message.includes("\n"));
        }
      },
    ),
    { numRuns: 500 },
  );
});

/** What the fuzzed source does next. */
let behaviour: () => Promise<unknown> = () => Promise.resolve({});

registerSource({
  schemes: ["fuzz"],
  title: "fuzz source",
  parse: (scheme, rest) => ({ scheme, raw: `${scheme}:${rest}`, parts: {} }),
  resolve: () => behaviour() as never,
});

const answer = fc.oneof(
  fc.jsonValue().map((v) => ({ kind: "resolve" as const, v })),
  fc.dictionary(
    fc.constantFrom("password", "value", "username", "x", CANARY),
    fc.oneof(fc.constant(CANARY), fc.integer(), fc.constant(null)),
  )
    .map((fields) => ({ kind: "resolve" as const, v: { fields } })),
  fc.oneof(fc.constant(CANARY), fc.constant(new Error(CANARY)), fc.jsonValue())
    .map((v) => ({ kind: "reject" as const, v })),
  fc.constant({ kind: "hang" as const, v: undefined }),
  fc.constant({ kind: "throw" as const, v: new Error(CANARY) }),
);

Deno.test("resolution: any answer gives a value or secret_unresolved, never a canary in words or records", async () => {
  const profile = {
    name: "f",
    engine: "postgres",
    host: "h",
    user: "u",
    auth: "sql",
    tls: { mode: "verify" },
    sources: { timeoutMs: 20 },
    secrets: {
      password: { refs: ["fuzz:a", "fuzz:b"] },
      "source.fuzz.token": { value: CANARY },
    },
    created: "",
    updated: "",
  } as unknown as Profile;
  await fc.assert(
    fc.asyncProperty(fc.array(answer, { minLength: 2, maxLength: 2 }), async (answers) => {
      let i = 0;
      behaviour = () => {
        const a = answers[i++ % answers.length]!;
        if (a.kind === "hang") return new Promise(() => {});
        // Thrown, not rejected: the framework must still time out nothing and report it.
        if (a.kind === "throw") throw a.v;
        return a.kind === "resolve" ? Promise.resolve(a.v) : Promise.reject(a.v);
      };
      const records: ResolutionRecord[] = [];
      try {
        const r = await within(
          resolveProfile(profile, { onAttempt: (x) => void records.push(x) }),
          2_000,
        );
        assert.equal(typeof r.secrets.password, "string");
        assert.equal(records.at(-1)!.outcome, "ok");
      } catch (e) {
        assert.ok(e instanceof HecateError, String(e));
        assert.equal(e.code, "secret_unresolved");
        assert.ok(!e.message.includes(CANARY) && !(e.hint ?? "").includes(CANARY), e.message);
        assert.equal(records.length, 2);
      }
      assert.ok(!JSON.stringify(records).includes(CANARY));
    }),
    { numRuns: 200 },
  );
});
