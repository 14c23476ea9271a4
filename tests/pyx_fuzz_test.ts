/**
 * Property-based tests (fast-check) of the Hecate Pyx importer (src/import/pyx.ts) fed random and
 * mutated files: whole files of random bytes, files whose encrypted JSON is mutated, and entries
 * of any shape. Every outcome is a plan or one of the documented errors (`auth_failed`,
 * `vault_integrity`, `usage`; {@link PyxDecryptError} from the decryptor), within a bounded time,
 * and no secret of the file and not the password appears in any message or note.
 *
 * Each decryption costs a 100,000-iteration PBKDF2 (about 30 ms), so the whole-directory
 * properties run fewer cases than the pure ones.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decryptPyxFile,
  mapPyxProfile,
  openPyxFile,
  planPyxImport,
  PyxDecryptError,
} from "../src/import/pyx.ts";
import { HecateError } from "../src/errors.ts";
import { pyx30File } from "./support/pyx_files.ts";
import { within } from "./support/within.ts";

const PASSWORD = "pyx-fuzz-old-Passw0rd";
/** Secret values placed in the files: none may show in a message. */
const CANARIES = {
  password: "canary-sql-pw-9f3a",
  access_token: "canary-token-0b7e",
  sql_password: "canary-sqlpw-c41d",
  ssh_password: "canary-sshpw-77aa",
};

/** The key Hecate Pyx derives for a salt (derived once: encrypting many files stays cheap). */
async function pyxKey(salt: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(PASSWORD),
    "PBKDF2",
    false,
    ["deriveKey"],
  );
  return await crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: 100_000 },
    base,
    { name: "AES-CBC", length: 256 },
    false,
    ["encrypt"],
  );
}

const SALT = new Uint8Array(32).fill(7);
const KEY = pyxKey(SALT);

/** A Pyx file holding `plain`, as Hecate Pyx wrote it (salt, IV, AES-256-CBC with PKCS#7). */
async function pyxFile(plain: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const iv = crypto.getRandomValues(new Uint8Array(16));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv }, await KEY, plain));
  const out = new Uint8Array(48 + ct.length);
  out.set(SALT);
  out.set(iv, 32);
  out.set(ct, 48);
  return out;
}

function assertNoSecret(text: string): void {
  assert.ok(!text.includes(PASSWORD), `password in: ${text.slice(0, 200)}`);
  for (const c of Object.values(CANARIES)) {
    assert.ok(!text.includes(c), `${c} in: ${text.slice(0, 200)}`);
  }
}

/** A credentials entry: well-formed fields, random ones, wrong types, and the canary secrets. */
const entry = fc.record(
  {
    server: fc.oneof(fc.constant("db.example"), fc.string({ maxLength: 20 }), fc.anything()),
    port: fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.string({ maxLength: 6 }), fc.anything()),
    database: fc.oneof(fc.string({ maxLength: 12 }), fc.anything()),
    username: fc.oneof(fc.constant("DOM\\user"), fc.string({ maxLength: 12 }), fc.anything()),
    password: fc.constant(CANARIES.password),
    auth_type: fc.oneof(
      fc.constantFrom("sql_auth", "windows_auth", "jwt_auth", "certificate_auth", "ssh_tunnel"),
      fc.string({ maxLength: 50 }),
      fc.anything(),
    ),
    access_token: fc.constant(CANARIES.access_token),
    certificate_path: fc.oneof(fc.string({ maxLength: 20 }), fc.anything()),
    ssh_host: fc.oneof(fc.constant("bastion.example"), fc.anything()),
    ssh_port: fc.oneof(fc.integer(), fc.anything()),
    ssh_username: fc.oneof(fc.constant("jump"), fc.anything()),
    ssh_password: fc.constant(CANARIES.ssh_password),
    sql_username: fc.oneof(fc.string({ maxLength: 12 }), fc.anything()),
    sql_password: fc.constant(CANARIES.sql_password),
  },
  { requiredKeys: [] },
);

Deno.test("mapPyxProfile: any entry maps (maybe incomplete) or is skipped with a note, never throws, never names a secret", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), entry, (name, e) => {
      const m = mapPyxProfile(name, e as Record<string, unknown>);
      for (const n of m.notes) assertNoSecret(n.message);
      if (m.input) {
        assert.match(m.input.name, /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
        assert.equal(m.input.engine, "mssql");
        // Every entry with a known auth_type is kept: without a server it is incomplete.
        if (m.input.host === undefined) assert.ok(m.input.incomplete?.missing.includes("host"));
        else assert.ok(typeof m.input.host === "string" && m.input.host !== "");
        for (const item of m.input.incomplete?.missing ?? []) {
          assert.match(item, /^(host|user|database|ssh|params\.[A-Za-z]+|secrets\.[A-Za-z.0-9]+)$/);
        }
      } else {
        assert.ok(m.notes.some((n) => n.kind === "skipped"));
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("decryptPyxFile: random bytes give bad_length, bad_padding or not_json, never anything else", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 160 }),
        // Salt + IV + whole blocks: these reach the KDF and the padding check.
        fc.integer({ min: 1, max: 6 }).chain((k) =>
          fc.uint8Array({ minLength: 48 + 16 * k, maxLength: 48 + 16 * k })
        ),
      ),
      async (bytes) => {
        try {
          await within(decryptPyxFile(new Uint8Array(bytes), PASSWORD), 5000);
        } catch (e) {
          assert.ok(e instanceof PyxDecryptError, `undocumented: ${e}`);
          assert.ok(["bad_length", "bad_padding", "not_json"].includes(e.reason));
          return;
        }
        // Random bytes that decrypt to JSON are possible only in theory.
      },
    ),
    { numRuns: 120 },
  );
});

/** Byte mutations of a plaintext before it is encrypted: the decryptor then sees valid padding. */
const mutations = fc.array(
  fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), cut: fc.boolean() }),
  { maxLength: 3 },
);

function mutate(text: string, ops: { at: number; value: number; cut: boolean }[]) {
  let b = new TextEncoder().encode(text);
  for (const op of ops) {
    if (b.length === 0) break;
    const at = op.at % b.length;
    if (op.cut) b = b.slice(0, at);
    else b[at] = op.value;
  }
  return b;
}

Deno.test("planPyxImport: directories of random and mutated files give a plan or a documented error, no secret in any message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hecate-pyx-fuzz-" });
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(entry, fc.anything()), {
          maxKeys: 4,
        }),
        mutations,
        fc.constantFrom("mutated", "random", "truncated", "clean"),
        fc.boolean(),
        fc.uint8Array({ maxLength: 120 }),
        async (creds, ops, how, extras, junk) => {
          const json = JSON.stringify(creds) ?? "{}";
          const plain = how === "clean" ? new TextEncoder().encode(json) : mutate(json, ops);
          let file = how === "random" ? new Uint8Array(junk) : await pyxFile(plain);
          if (how === "truncated") {
            file = file.slice(0, Math.max(0, file.length - 1 - (junk[0] ?? 0) % 40));
          }
          await Deno.writeFile(`${dir}/credentials.enc`, file);
          for (const f of ["totp_secrets.enc", "api_keys.enc"]) {
            await Deno.remove(`${dir}/${f}`).catch(() => {});
            if (extras) {
              const other = mutate(
                JSON.stringify({ x: { enabled: true, secret: CANARIES.password } }),
                how === "clean" ? [] : ops,
              );
              await Deno.writeFile(`${dir}/${f}`, await pyxFile(other));
            }
          }
          try {
            const plan = await within(planPyxImport(dir, PASSWORD), 10_000);
            for (const n of plan.notes) assertNoSecret(n.message);
            if (how === "clean") assert.equal(plan.source, dir);
          } catch (e) {
            assert.ok(e instanceof HecateError, `undocumented: ${e}`);
            assert.ok(["auth_failed", "vault_integrity", "usage"].includes(e.code), e.code);
            assertNoSecret(`${e.message}\n${e.hint ?? ""}`);
            assert.ok(!e.message.includes("\n"));
            assert.notEqual(how, "clean", `a clean file failed: ${e.message}`);
          }
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openPyxFile: a tampered 3.0 file never reads as verified, and is refused once a sibling verified", async () => {
  const doc = JSON.stringify({
    version: "3.0",
    servers: { a: { server: "db.example", password: CANARIES.password } },
  });
  const file = await pyx30File(doc, PASSWORD, { salt: SALT });
  const clean = await openPyxFile(file, PASSWORD);
  assert.equal(clean.mac, "verified");
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), {
        minLength: 1,
        maxLength: 3,
      }),
      fc.boolean(),
      async (flips, sibling) => {
        const f = file.slice();
        for (const { at, xor } of flips) f[at % f.length]! ^= xor;
        if (f.every((b, i) => b === file[i])) return; // flips that cancel out
        try {
          const o = await within(
            openPyxFile(f, PASSWORD, sibling ? clean.scheme : undefined),
            5000,
          );
          assert.notEqual(o.mac, "verified");
          assert.ok(!sibling, "a sibling verified, yet a tampered file was read");
        } catch (e) {
          assert.ok(e instanceof PyxDecryptError, `undocumented: ${e}`);
          assert.ok(["bad_padding", "not_json", "mac_mismatch"].includes(e.reason), e.reason);
          assertNoSecret(e.message);
        }
      },
    ),
    { numRuns: 40 },
  );
});
