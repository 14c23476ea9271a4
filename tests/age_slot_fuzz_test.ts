/**
 * Fuzzing the age-slot inputs a hostile party controls: the identity file's text (a file someone
 * handed over, or the wrong file), and the age slot's members in a vault file (someone who can
 * write it). Each case ends in a documented refusal (usage for an identity file, an authentication
 * failure for a slot, vault_integrity for a malformed header), never another crash or a hang, and
 * no message repeats the canary planted in the input.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { openAgeSlot, parseAgeIdentities, sealAgeSlot } from "../src/vault/age_slot.ts";
import { toBase64Url } from "../src/vault/encoding.ts";
import { type AgeSlot, parseVaultFile } from "../src/vault/format.ts";
import { AuthenticationFailure, randomBytes } from "../src/vault/primitives.ts";
import { UnlockedVault } from "../src/vault/vault.ts";

const CANARY = "CANARY7f3e";
const RECIPIENT = "age1xp23qed8kysxpk67rvfhqgcnu5dxq5ejh9jkguve9ref2qyee38s8klj59";

/** Lines an identity file might hold: comments, blanks, near-identities, noise with the canary. */
const identityLine = fc.oneof(
  fc.constant(""),
  fc.string().map((s) => `# ${s}`),
  fc.string({ minLength: 1, maxLength: 80 }).map((s) => `AGE-SECRET-KEY-1${s}${CANARY}`),
  fc.stringMatching(/^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{0,70}$/),
  fc.string({ maxLength: 60 }).map((s) => `${CANARY}${s}`),
);

Deno.test("fuzz: an identity file's text yields identities or a one-line usage error, never the canary", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(identityLine, { maxLength: 6 }), async (lines) => {
      const text = lines.join("\n");
      try {
        const ids = await parseAgeIdentities(text);
        for (const { recipient } of ids) assert.match(recipient, /^age1/);
      } catch (e) {
        assert.ok(e instanceof HecateError, `not a HecateError: ${e}`);
        assert.equal(e.code, "usage");
        assert.ok(!e.message.includes(CANARY) && !e.message.includes("\n"), e.message);
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("fuzz: an age slot with altered age file or wrapped key opens nothing and fails only as an authentication failure", async () => {
  // A fresh identity each run, from the library's own generator.
  const age = await import("age-encryption");
  const identity = await age.generateX25519Identity();
  const recipient = await age.identityToRecipient(identity);
  const vaultId = randomBytes(16), slotId = randomBytes(8), root = randomBytes(32);
  const good = await sealAgeSlot(root, recipient, vaultId, slotId);
  assert.deepEqual(await openAgeSlot(good, identity, vaultId), root);
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        target: fc.constantFrom("age", "wrapped"),
        at: fc.nat(),
        xor: fc.integer({ min: 1, max: 255 }),
        cut: fc.boolean(),
        noise: fc.uint8Array({ maxLength: 300 }),
        replace: fc.boolean(),
      }),
      async ({ target, at, xor, cut, noise, replace }) => {
        const slot: AgeSlot = { ...good, age: good.age.slice(), wrapped: good.wrapped.slice() };
        let field = slot[target];
        if (replace) field = new Uint8Array(noise);
        else if (cut) field = field.slice(0, at % field.length); // strictly shorter
        else field[at % field.length] = field[at % field.length]! ^ xor;
        slot[target] = field;
        await assert.rejects(() => openAgeSlot(slot, identity, vaultId), AuthenticationFailure);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("fuzz: malformed age slot members in a header are refused as vault_integrity before any key is used", async () => {
  const vault = await UnlockedVault.create("fuzz: violet kettle marathon", { iterations: 1_000 });
  await vault.addAgeSlot(RECIPIENT, "fuzz", new Date());
  const file = (await vault.serialize()).bytes;
  const nl = file.indexOf(0x0a);
  const header = JSON.parse(new TextDecoder().decode(file.subarray(0, nl)));
  const at = header.slots.findIndex((s: { kind: string }) => s.kind === "age");
  const rest = file.subarray(nl);
  const value = fc.oneof(
    fc.string().map((s) => s + CANARY),
    fc.integer(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 6000 }).map((b) => toBase64Url(b)),
    fc.stringMatching(/^age1[02-9ac-hj-np-z]{0,70}$/),
  );
  fc.assert(
    fc.property(
      fc.constantFrom("id", "recipient", "age", "wrapped", "kind", "extra"),
      value,
      fc.boolean(),
      (member, v, drop) => {
        const h = structuredClone(header);
        if (drop && member !== "extra") delete h.slots[at][member];
        else h.slots[at][member] = v;
        const head = new TextEncoder().encode(JSON.stringify(h));
        const bytes = new Uint8Array(head.length + rest.length);
        bytes.set(head);
        bytes.set(rest, head.length);
        try {
          parseVaultFile(bytes); // a value that happens to be valid parses: then it must be the shape
          assert.ok(!drop && member !== "extra" && member !== "kind");
        } catch (e) {
          assert.ok(e instanceof HecateError, `not a HecateError: ${e}`);
          assert.equal(e.code, "vault_integrity");
          assert.ok(!e.message.includes(CANARY), e.message);
        }
      },
    ),
    { numRuns: 300 },
  );
});
