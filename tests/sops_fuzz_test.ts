/**
 * Fuzz of the in-process SOPS decoder (providers/sources/sops/format.ts): single-character
 * mutations of a valid file (made by the independent encoder in tests/support/local_stores.ts)
 * and random JSON documents. Each run either gives back exactly the original values (a mutation
 * in a part the MAC does not cover, such as an unused recipient) or ends in a SopsError; never
 * another exception, a hang, a different value, or the canary in a message.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { decryptSopsJson, SopsError } from "../providers/sources/sops/format.ts";
import { sopsEncryptJson } from "./support/local_stores.ts";

const CANARY = "CANARY-5a9e-sops-fuzz";
const PLAIN = { db: { user: "app", password: CANARY, port: 5432 }, list: ["a", "b"] };
const EXPECTED = { db: { user: "app", password: CANARY, port: "5432" }, list: ["a", "b"] };

function check(e: unknown): void {
  assert.ok(e instanceof SopsError, `unexpected error: ${e}`);
  assert.ok(!e.message.includes(CANARY), "canary in a message");
}

Deno.test("SOPS decoder: one-character mutations are refused or change nothing", async () => {
  const id = await generateIdentity();
  const text = await sopsEncryptJson(PLAIN, [await identityToRecipient(id)]);
  assert.deepEqual(await decryptSopsJson(JSON.parse(text), [id]), EXPECTED);
  const chars = 'AB+/=0:,[]{}"a-Z';
  await fc.assert(
    fc.asyncProperty(
      fc.nat({ max: text.length - 1 }),
      fc.integer({ min: 0, max: chars.length - 1 }),
      async (at, c) => {
        const mutated = text.slice(0, at) + chars[c] + text.slice(at + 1);
        let doc: unknown;
        try {
          doc = JSON.parse(mutated);
        } catch {
          return; // not JSON: the source hands it to the sops program
        }
        try {
          const tree = await decryptSopsJson(doc, [id]);
          assert.deepEqual(tree, EXPECTED, `a mutation at ${at} changed a value`);
        } catch (e) {
          check(e);
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("SOPS decoder: random documents end in a SopsError", async () => {
  const id = await generateIdentity();
  await fc.assert(
    fc.asyncProperty(fc.jsonValue({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 2 }), async (a, b) => {
      for (
        const doc of [a, { ...(typeof a === "object" && a && !Array.isArray(a) ? a : {}), sops: b }]
      ) {
        try {
          await decryptSopsJson(doc, [id]);
          assert.fail("a random document decrypted");
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
          check(e);
        }
      }
    }),
    { numRuns: 300 },
  );
});
