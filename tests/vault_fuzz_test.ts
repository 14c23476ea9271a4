/**
 * Property-based tests of the vault file readers, the parsers an attacker who can write the home
 * feeds: random bytes, random JSON shapes, and real files with random edits must end in one of
 * the documented errors, never in a crash of another kind, a hang, wrong plaintext, or a secret in
 * a message.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { parseVaultFile } from "../src/vault/format.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { toBase64Url } from "../src/vault/encoding.ts";
import { sha256 } from "../src/vault/primitives.ts";

const PW = "fuzz-test: a long enough master password";
const CANARY = "fuzz-canary-secret-7c1f";
// A low cost keeps a few hundred unlocks fast; the file's bound still applies to edits.
const ITER = 1_000;

const ALLOWED = new Set(["vault_integrity", "auth_failed", "unsupported_version", "key_revoked"]);

async function sampleFile(): Promise<{ file: Uint8Array<ArrayBuffer>; key: string }> {
  const vault = await UnlockedVault.create(PW, { iterations: ITER });
  const id = vault.putRecord({ name: "db", engine: "sqlite", secrets: { password: CANARY } });
  vault.putRecord({ name: "other", engine: "sqlite" });
  const key = await vault.addApiKey({ name: "k", scope: [id], created: new Date(), expires: null });
  const { bytes, generation } = await vault.serialize();
  vault.markSaved(generation);
  return { file: bytes, key };
}

async function withChecksum(file: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const text = new TextDecoder().decode(file);
  const nl = text.indexOf("\n");
  if (nl < 0) return file;
  let seal: Record<string, unknown>;
  try {
    seal = JSON.parse(text.slice(nl + 1));
  } catch {
    return file;
  }
  if (typeof seal !== "object" || seal === null) return file;
  const body = file.slice(0, new TextEncoder().encode(text.slice(0, nl)).length);
  seal.sha256 = toBase64Url(await sha256(body));
  return new TextEncoder().encode(`${text.slice(0, nl)}\n${JSON.stringify(seal)}\n`);
}

/** Runs a reader; a success must be the genuine content, a failure a documented HecateError. */
async function outcome(run: () => Promise<unknown>): Promise<"ok" | string> {
  try {
    await run();
    return "ok";
  } catch (e) {
    assert.ok(e instanceof HecateError, `not a HecateError: ${e}`);
    assert.ok(ALLOWED.has(e.code), `unexpected code ${e.code}: ${e.message}`);
    assert.ok(!e.message.includes(CANARY) && !(e.hint ?? "").includes(CANARY));
    assert.ok(!e.message.includes("\n"), "one-line message");
    return e.code;
  }
}

Deno.test("vault parsing: random bytes and random JSON lines give only vault_integrity or unsupported_version", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 2048 }),
        fc.tuple(fc.json(), fc.json()).map(([a, b]) => new TextEncoder().encode(`${a}\n${b}\n`)),
      ),
      async (bytes) => {
        const file = new Uint8Array(bytes);
        const code = await outcome(() => Promise.resolve(parseVaultFile(file)));
        assert.notEqual(code, "ok");
        assert.notEqual(await outcome(() => UnlockedVault.unlock(file, PW)), "ok");
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("vault reading: a real file with random byte edits never unlocks into other contents, by password or API key", async () => {
  const { file, key } = await sampleFile();
  const genuine = await (await UnlockedVault.unlock(file, PW)).records();
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat({ max: file.length - 1 }), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      // Mostly whole files (edits reach the parser), sometimes cut short.
      fc.oneof(
        { weight: 9, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.nat({ max: file.length }) },
      ),
      fc.boolean(),
      async (edits, cut, fixChecksum) => {
        let bad = file.slice(0, cut ?? file.length);
        for (const [at, mask] of edits) if (at < bad.length) bad[at] = bad[at]! ^ mask;
        // As an attacker would: recompute the unkeyed checksum so the edit reaches the parser.
        if (fixChecksum) bad = await withChecksum(bad);
        if (bad.length === file.length && bad.every((b, i) => b === file[i])) return;
        let opened: Awaited<ReturnType<UnlockedVault["records"]>> | undefined;
        const byPassword = await outcome(async () => {
          opened = await (await UnlockedVault.unlock(bad, PW)).records();
        });
        // Only an edit that leaves the authenticated bytes alone (e.g. JSON whitespace) may open,
        // and then to exactly the genuine records.
        if (byPassword === "ok") assert.deepEqual(opened, genuine);
        const byKey = await outcome(() => openScoped(bad, key, { now: new Date() }));
        if (byKey === "ok" && byPassword !== "ok") {
          // The one thing an API-key reader cannot check is the seal's MAC (it holds no root
          // key): an edit there alone may pass it; any edit of the body (what the writer's
          // signature covers) may not.
          const bodyOf = (f: Uint8Array) => toBase64Url(f.subarray(0, f.indexOf(0x0a)));
          assert.equal(bodyOf(bad), bodyOf(file));
          assert.match(byPassword, /^vault_integrity$/);
        }
      },
    ),
    { numRuns: 200 },
  );
});
