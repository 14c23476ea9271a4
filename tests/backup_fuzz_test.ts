/**
 * Property-based fuzzing of the backup bundle parser (fast-check, bounded runs): random bytes,
 * mutated and truncated real bundles, and random decrypted payloads (the manifest and file table
 * parser behind the authentication). Only the documented errors come out (`auth_failed`,
 * `vault_integrity`, `unsupported_version`), nothing hangs, and no message or hint holds a secret.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { BundleOpener, HEADER_BYTES, parsePayload } from "../src/backup/bundle.ts";
import { MAX_PBKDF2_ITERATIONS } from "../src/vault/format.ts";
import { initVault, openVault } from "../src/hecate.ts";
import { withHome } from "./support/access.ts";

const CANARY_PW = `bundle-fuzz-CANARY-${crypto.randomUUID()}`;
const CANARY_SECRET = `secret-CANARY-${crypto.randomUUID()}`;
const DOCUMENTED = ["auth_failed", "vault_integrity", "unsupported_version"];
/** The header's salt and iteration count (bytes 36..56): changing them costs a new PBKDF2 run. */
const KDF_FIELDS = [36, 56] as const;

function checkError(e: unknown): void {
  assert.ok(e instanceof HecateError, `not a HecateError: ${e}`);
  assert.ok(DOCUMENTED.includes(e.code), `undocumented code ${e.code}: ${e.message}`);
  for (const text of [e.message, e.hint ?? ""]) {
    assert.ok(!text.includes(CANARY_PW) && !text.includes(CANARY_SECRET), text);
  }
}

async function refused(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (e) {
    checkError(e);
    return;
  }
  assert.fail("a malformed bundle was accepted");
}

Deno.test("backup bundle parser under fuzzing: documented errors only, no hang, no secret", async () => {
  await withHome(async (home) => {
    await initVault({ home, password: CANARY_PW, kdfIterations: 600_000 });
    const vault = await openVault({ home, password: CANARY_PW, lockout: "off" });
    await vault.profiles.add({
      name: "alpha",
      engine: "sqlite",
      database: `${home}/alpha.db`,
      secrets: { password: { value: CANARY_SECRET } },
    });
    const { path } = await vault.backups.create();
    const real = await Deno.readFile(path);
    const opener = new BundleOpener(CANARY_PW);
    const opened = await opener.open(real); // warms the key cache: one PBKDF2 for all runs
    const t0 = performance.now();

    // Random bytes, with and without the right magic and version.
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 400 }),
        fc.boolean(),
        async (bytes, withPrefix) => {
          const b = new Uint8Array(withPrefix ? Math.max(bytes.length, 12) : bytes.length);
          b.set(bytes);
          if (withPrefix) b.set(real.subarray(0, 12));
          await refused(() => opener.open(b));
        },
      ),
      { numRuns: 300 },
    );

    // A real bundle with a few bytes changed (never the KDF fields: see below), or cut short.
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            at: fc.nat({ max: real.length - 1 }),
            xor: fc.integer({ min: 1, max: 255 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        async (flips) => {
          const b = real.slice();
          let changed = false;
          for (const { at, xor } of flips) {
            if (at >= KDF_FIELDS[0] && at < KDF_FIELDS[1]) continue;
            b[at]! ^= xor;
            changed = true;
          }
          if (!changed) return;
          await refused(() => opener.open(b));
        },
      ),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: real.length - 1 }), async (cut) => {
        await refused(() => opener.open(real.slice(0, cut)));
      }),
      { numRuns: 200 },
    );

    // An iteration count above the bound is refused before any key derivation.
    for (const n of [0, MAX_PBKDF2_ITERATIONS + 1, 0xffffffff]) {
      const b = real.slice();
      new DataView(b.buffer).setUint32(52, n);
      const t = performance.now();
      await refused(() => opener.open(b));
      assert.ok(performance.now() - t < 1000, `iterations ${n} cost a key derivation`);
    }

    // The payload parser (reached only after authentication): arbitrary manifests and tables.
    const vaultId = real.slice(12, 28);
    const enc = new TextEncoder();
    const payloadOf = (manifest: string, tail: Uint8Array) => {
      const m = enc.encode(manifest);
      const p = new Uint8Array(4 + m.length + tail.length);
      new DataView(p.buffer).setUint32(0, m.length);
      p.set(m, 4);
      p.set(tail, 4 + m.length);
      return p;
    };
    const good = JSON.stringify(opened.manifest);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.string({ maxLength: 200 }),
          // The real manifest with one field replaced by anything.
          fc.tuple(
            fc.constantFrom(
              "format",
              "version",
              "created",
              "reason",
              "vaultId",
              "generation",
              "files",
            ),
            fc.jsonValue(),
          ).map(([k, v]) => JSON.stringify({ ...opened.manifest, [k]: v })),
          // The real manifest with a file entry's field replaced by anything.
          fc.tuple(fc.constantFrom("name", "size", "sha256"), fc.jsonValue()).map(([k, v]) =>
            JSON.stringify({
              ...opened.manifest,
              files: [{ ...opened.manifest.files[0]!, [k]: v }, ...opened.manifest.files.slice(1)],
            })
          ),
        ),
        fc.uint8Array({ maxLength: 300 }),
        async (manifest, tail) => {
          if (manifest === good) return;
          await refused(() => parsePayload(payloadOf(manifest, tail), vaultId));
        },
      ),
      { numRuns: 400 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        await refused(() => parsePayload(bytes, vaultId));
      }),
      { numRuns: 200 },
    );
    // Names that would leave the home are refused even in an authentic payload.
    for (const name of ["../vault.hecate", "/etc/passwd", "audit.segments/../x", ".hidden"]) {
      const m = JSON.stringify({
        ...opened.manifest,
        files: [{
          name,
          size: 0,
          sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        }],
      });
      await refused(() => parsePayload(payloadOf(m, new Uint8Array()), vaultId));
    }
    // A bundle without the vault file (fast-check found an empty table once) is damaged.
    const noVault = JSON.stringify({ ...opened.manifest, files: [] });
    await refused(() => parsePayload(payloadOf(noVault, new Uint8Array()), vaultId));
    assert.ok(performance.now() - t0 < 60_000, "fuzzing took too long (a hang?)");
  });
});

Deno.test("HEADER_BYTES covers the KDF fields the fuzzer leaves alone", () => {
  assert.ok(KDF_FIELDS[1] <= HEADER_BYTES);
});
