/**
 * Property-based tests of the vault file readers, the parsers an attacker who can write the home
 * feeds: random bytes, random JSON shapes, and real files with random edits must end in one of
 * the documented errors, never in a crash of another kind, a hang, wrong plaintext, or a secret in
 * a message. Format 3 (header, seal, record lines): byte edits anywhere, and record lines moved,
 * copied, dropped or cut, with or without every unkeyed hash recomputed.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { parseVaultFile } from "../src/vault/format.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { toBase64Url } from "../src/vault/encoding.ts";
import { sha256 } from "../src/vault/primitives.ts";
import {
  assemble,
  fileLines,
  MemoryPositionedFile,
  readLogical,
  writeLogical,
} from "./support/vault_lines.ts";

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

/**
 * As an attacker would: the unkeyed checksum recomputed over the first line, the rest of the file
 * (the seal's other members, the record lines) kept.
 */
async function withChecksum(file: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const nl = file.indexOf(0x0a);
  const sealEnd = nl < 0 ? -1 : file.indexOf(0x0a, nl + 1);
  if (sealEnd < 0) return file;
  let seal: Record<string, unknown>;
  try {
    seal = JSON.parse(new TextDecoder().decode(file.subarray(nl + 1, sealEnd)));
  } catch {
    return file;
  }
  if (typeof seal !== "object" || seal === null) return file;
  seal.sha256 = toBase64Url(await sha256(file.slice(0, nl)));
  const sealLine = new TextEncoder().encode(JSON.stringify(seal));
  const out = new Uint8Array(nl + 1 + sealLine.length + file.length - sealEnd);
  out.set(file.subarray(0, nl + 1), 0);
  out.set(sealLine, nl + 1);
  out.set(file.subarray(sealEnd), nl + 1 + sealLine.length);
  return out;
}

/**
 * As a stronger attacker would: every unkeyed value recomputed from the (edited) record lines:
 * each line's size and hash in the table, `lines_sha256`, the checksum. Unparseable files as they
 * are.
 */
async function rehashed(file: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return await writeLogical(readLogical(file));
  } catch {
    return file;
  }
}

/** The first line (what the seal covers). */
function headerOf(f: Uint8Array): string {
  const nl = f.indexOf(0x0a);
  return toBase64Url(f.subarray(0, nl < 0 ? f.length : nl));
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
        // Format 3's shape: a header, a seal and record lines, all random JSON.
        fc.array(fc.json(), { minLength: 3, maxLength: 6 }).map((ls) =>
          new TextEncoder().encode(ls.map((l) => l + "\n").join(""))
        ),
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

Deno.test("format-3 parsing: random record tables and record lines give only vault_integrity, before and when a record is read", async () => {
  const b64 = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(toBase64Url);
  const entry = fc.record({
    id: fc.oneof(b64(16), fc.string({ maxLength: 30 }), fc.integer()),
    size: fc.oneof(fc.integer({ min: -2, max: 120 }), fc.double(), fc.string()),
    sha256: fc.oneof(b64(32), fc.string({ maxLength: 50 })),
  }, { requiredKeys: [] });
  const line = fc.oneof(
    fc.json(),
    fc.record({ id: b64(16), kind: fc.constant("profile"), key: b64(60), data: b64(40) })
      .map((r) => JSON.stringify(r)),
    fc.string({ maxLength: 80 }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(entry, { maxLength: 5 }),
      fc.array(line, { maxLength: 5 }),
      b64(32),
      fc.boolean(),
      async (table, lines, linesHash, fromLines) => {
        // Half the time a well-formed table over the lines (sizes right; each hash the line's own
        // or another), so the parse reaches the hash and line checks.
        if (fromLines) {
          table = [];
          for (const [i, l] of lines.entries()) {
            const bytes = new TextEncoder().encode(l);
            const own = toBase64Url(await sha256(bytes));
            table.push({
              id: toBase64Url(new Uint8Array(16).fill(i)),
              size: bytes.length,
              sha256: i % 2 === 0 ? own : linesHash,
            });
          }
        }
        const header = JSON.stringify({
          format: "hecate-vault",
          version: 3,
          vault_id: toBase64Url(new Uint8Array(16)),
          generation: 1,
          slots: [],
          records: table,
          lines_sha256: linesHash,
          meta: "",
        });
        const file = await assemble(
          new TextEncoder().encode(header),
          { mac: toBase64Url(new Uint8Array(32)), sig: toBase64Url(new Uint8Array(64)) },
          lines,
        );
        let records: { data: Uint8Array }[] = [];
        await outcome(() => Promise.resolve(records = parseVaultFile(file).body.records));
        // Each line checked against its entry when read, one by one.
        for (const r of records) await outcome(() => Promise.resolve(r.data));
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("vault reading: a real file with random byte edits, or its record lines moved, copied, dropped or cut, never unlocks into other contents, by password or API key", async () => {
  const { file, key } = await sampleFile();
  const genuine = await (await UnlockedVault.unlock(file, PW)).records();
  const genuineScoped = (await openScoped(file, key, { now: new Date() })).records();
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
      fc.constantFrom("none", "checksum", "all hashes"),
      async (edits, cut, fix) => {
        let bad = file.slice(0, cut ?? file.length);
        for (const [at, mask] of edits) if (at < bad.length) bad[at] = bad[at]! ^ mask;
        // As an attacker would: recompute the unkeyed values so the edit reaches the parser.
        if (fix === "checksum") bad = await withChecksum(bad);
        if (fix === "all hashes") bad = await rehashed(bad);
        if (bad.length === file.length && bad.every((b, i) => b === file[i])) return;
        let opened: Awaited<ReturnType<UnlockedVault["records"]>> | undefined;
        const byPassword = await outcome(async () => {
          opened = await (await UnlockedVault.unlock(bad, PW)).records();
        });
        // Only an edit that leaves the authenticated bytes alone (e.g. JSON whitespace) may open,
        // and then to exactly the genuine records.
        if (byPassword === "ok") assert.deepEqual(opened, genuine);
        await checkKeyReader(bad, byPassword);
      },
    ),
    { numRuns: 200 },
  );

  /**
   * An API-key reader that opens a file the password refuses must have the genuine header (what
   * the writer's signature covers) and yield exactly the genuine records in scope: it cannot check
   * the seal's MAC (it holds no root key), and reads no record line outside its scope.
   */
  async function checkKeyReader(bad: Uint8Array<ArrayBuffer>, byPassword: string) {
    // The whole file, and the same file read by position (header, seal, lines in scope only).
    for (const source of [bad, new MemoryPositionedFile(bad)]) {
      let records: { id: string; value: unknown }[] = [];
      const byKey = await outcome(async () => {
        records = (await openScoped(source, key, { now: new Date() })).records();
      });
      if (byKey !== "ok") continue;
      assert.deepEqual(records, genuineScoped);
      if (byPassword !== "ok") {
        assert.equal(headerOf(bad), headerOf(file));
        assert.match(byPassword, /^vault_integrity$/);
      }
    }
  }

  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.tuple(fc.constant("swap"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("copy"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("drop"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("cut"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("junk"), fc.nat(), fc.nat()),
        ),
        { minLength: 1, maxLength: 3 },
      ),
      fc.boolean(),
      async (ops, rehash) => {
        const { body, seal, records: ls, prefix } = fileLines(file);
        const lines = [...ls];
        for (const [op, a, b] of ops) {
          const i = lines.length ? a % lines.length : 0;
          const j = lines.length ? b % lines.length : 0;
          if (op === "swap" && lines.length) [lines[i], lines[j]] = [lines[j]!, lines[i]!];
          if (op === "copy" && lines.length) lines.splice(j, 0, lines[i]!);
          if (op === "drop" && lines.length) lines.splice(i, 1);
          if (op === "cut" && lines.length) lines[i] = lines[i]!.slice(0, b % lines[i]!.length);
          if (op === "junk") lines.splice(i, 0, `{"id":"${"A".repeat(22)}"}`);
        }
        // Format 4: the table and index lines as they were (the fuzz of those is in
        // tests/vault_format4_test.ts).
        let bad = await assemble(body, seal, lines, prefix);
        if (rehash) bad = await rehashed(bad);
        if (bad.length === file.length && bad.every((x, k) => x === file[k])) return;
        let opened: Awaited<ReturnType<UnlockedVault["records"]>> | undefined;
        const byPassword = await outcome(async () => {
          opened = await (await UnlockedVault.unlock(bad, PW)).records();
        });
        if (byPassword === "ok") assert.deepEqual(opened, genuine);
        await checkKeyReader(bad, byPassword);
      },
    ),
    { numRuns: 200 },
  );
});
