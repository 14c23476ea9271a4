/**
 * Fixed vault files in tests/vectors/ (see its README.md). Each directory states the outcome it
 * must produce; every later build must keep producing it, so old vaults keep opening and bad ones
 * keep being refused for the same reason. The vectors are never regenerated here.
 */

import { MemoryPositionedFile, readV4 } from "./support/vault_lines.ts";
import assert from "node:assert/strict";
import { HecateError } from "../src/errors.ts";
import { openVault } from "../src/hecate.ts";
import type { AuditSink } from "../src/audit/log.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { parseVaultFile } from "../src/vault/format.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { parseAgeIdentities } from "../src/vault/age_slot.ts";

const VECTORS = new URL("./vectors/", import.meta.url).pathname;
const noAudit: AuditSink = { append: () => Promise.resolve() };

interface OkExpectation {
  outcome: "ok";
  description: string;
  format_version: number;
  vault_id: string;
  generation: number;
  kdf_iterations: number;
  profiles: Record<string, unknown>[];
  /** Format 2: the profiles the API key in apikey.txt opens. */
  apikey_profiles?: string[];
  /** Stored secrets (records of kind `secret`): name, current value and version. */
  secrets?: { name: string; value: string; version: number }[];
  /** The stored secrets the API key in apikey.txt opens. */
  apikey_secrets?: string[];
  /** Age slots: the profiles the age identity in identity.txt opens. */
  identity_profiles?: string[];
  /** Age slots: the code the age identity in identity.txt meets instead. */
  identity_code?: HecateError["code"];
}

interface ErrorExpectation {
  outcome: "error";
  code: HecateError["code"];
  description: string;
  /** Format 3: the code the API key in apikey.txt meets (its slot opens; a record does not). */
  apikey_code?: HecateError["code"];
}

interface Vector {
  name: string;
  file: Uint8Array<ArrayBuffer>;
  password: string;
  expected: OkExpectation | ErrorExpectation;
}

async function loadVector(name: string): Promise<Vector> {
  const dir = `${VECTORS}${name}`;
  const password = (await Deno.readTextFile(`${dir}/password.txt`)).replace(/\n$/, "");
  const expected = JSON.parse(await Deno.readTextFile(`${dir}/expected.json`));
  assert.ok(["ok", "error"].includes(expected.outcome), `${name}: outcome`);
  return { name, file: await Deno.readFile(`${dir}/vault.hecate`), password, expected };
}

async function vectorNames(): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(VECTORS)) if (e.isDirectory) out.push(e.name);
  return out.sort();
}

/** Opens the vector through the library, from a fresh 0700 home holding a 0600 copy. */
async function openThroughLibrary<T>(
  v: Vector,
  fn: (open: () => ReturnType<typeof openVault>) => Promise<T>,
) {
  const home = await Deno.makeTempDir({ prefix: `hecate-vector-${v.name}-` });
  try {
    await Deno.chmod(home, 0o700);
    await Deno.writeFile(`${home}/vault.hecate`, v.file, { mode: 0o600 });
    await Deno.chmod(`${home}/vault.hecate`, 0o600); // git does not keep 0600
    return await fn(() => openVault({ home, password: v.password, audit: noAudit }));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test("the vector set holds at least the five version-1, four version-2, eight version-3, seven version-4 and four version-5 vectors", async () => {
  const names = await vectorNames();
  for (
    const n of [
      "v1-basic",
      "v1-wrong-password",
      "v1-tampered",
      "v1-damaged",
      "v1-future-version",
      "v2-basic",
      "v2-future-version",
      "v2-unsigned",
      "v2-bad-signature",
      "v3-basic",
      "v3-tampered-record",
      "v3-rehashed-record",
      "v3-swapped-records",
      "v3-truncated",
      "v3-extra-line",
      "v3-future-version",
      "v3-bad-signature",
      "v3-secret",
      "v3-secret-relabelled",
      "v4-basic",
      "v4-swapped-entries",
      "v4-changed-tag",
      "v4-rehashed-tag",
      "v4-truncated-index",
      "v4-older-index",
      "v4-future-version",
      "v5-basic",
      "v5-short-index",
      "v5-keyed-index",
      "v5-future-version",
    ]
  ) assert.ok(names.includes(n), `missing vector ${n}`);
});

Deno.test("every vector produces the outcome its expected.json states", async (t) => {
  for (const name of await vectorNames()) {
    const v = await loadVector(name);
    await t.step(`${name}: ${v.expected.description}`, async () => {
      const expected = v.expected;
      if (expected.outcome === "ok") {
        // Pure layer: records as stored, secrets included.
        const state = await UnlockedVault.unlock(v.file, v.password);
        assert.equal(parseVaultFile(v.file).body.version, expected.format_version);
        assert.equal(state.id, expected.vault_id);
        assert.equal(state.generation, expected.generation);
        assert.equal(state.passwordIterations, expected.kdf_iterations);
        const all = (await state.records()).map((r) => r.value);
        const values = all.filter((v) => v.kind !== "secret")
          .sort((a, b) => String(a.name).localeCompare(String(b.name)));
        assert.equal(all.length - values.length, expected.secrets?.length ?? 0, "secret records");
        assert.equal(values.length, expected.profiles.length);
        for (const [i, want] of expected.profiles.entries()) {
          for (const [field, value] of Object.entries(want)) {
            assert.deepEqual(values[i]![field], value, `${want.name}.${field}`);
          }
        }
        // The API key (format 2 vectors): exactly its scope, read through the signature check.
        if (expected.apikey_profiles) {
          const key = (await Deno.readTextFile(`${VECTORS}${name}/apikey.txt`)).trim();
          // The whole file, and the file read by position as the CLI reads it.
          for (const file of [v.file, new MemoryPositionedFile(v.file)]) {
            const scoped = await openScoped(file, key, { now: new Date() });
            const kinds = (kind: string) =>
              scoped.records().filter((r) => (r.value.kind === "secret") === (kind === "secret"))
                .map((r) => r.value.name).sort();
            assert.deepEqual(kinds("profile"), expected.apikey_profiles);
            assert.deepEqual(kinds("secret"), expected.apikey_secrets ?? []);
          }
        }
        // The age identity (age-slot vectors): every profile, through the age slot.
        if (expected.identity_profiles || expected.identity_code) {
          const ids = await parseAgeIdentities(
            await Deno.readTextFile(`${VECTORS}${name}/identity.txt`),
          );
          const open = () => UnlockedVault.unlockWithAge(v.file, ids);
          if (expected.identity_code) {
            await assert.rejects(open, (e: unknown) => {
              assert.ok(e instanceof HecateError, `${name}: identity: threw ${e}`);
              assert.equal(e.code, expected.identity_code, `${name}: identity: ${e.message}`);
              return true;
            });
          } else {
            const { vault } = await open();
            assert.deepEqual(
              (await vault.records()).map((r) => r.value.name).sort(),
              expected.identity_profiles,
            );
          }
        }
        // Library layer: the same profiles, listed without secrets.
        await openThroughLibrary(v, async (open) => {
          const vault = await open();
          assert.equal(vault.id, expected.vault_id);
          assert.deepEqual(
            vault.profiles.list(),
            expected.profiles.map((p) => {
              const { tls: _t, secrets: _s, connectTimeoutMs: _c, ...summary } = p;
              return summary;
            }),
          );
          for (const want of expected.secrets ?? []) {
            assert.equal(await vault.secrets.get(want.name), want.value);
            assert.equal((await vault.secrets.history(want.name))[0]!.version, want.version);
          }
          for (const p of expected.profiles) {
            const shown = JSON.stringify(await vault.profiles.show(String(p.name)));
            const secrets = Object.values(p.secrets as Record<string, { value?: string }>);
            for (const s of secrets) {
              if (s.value !== undefined) assert.ok(!shown.includes(s.value), `${p.name}: masked`);
            }
          }
        });
        return;
      }
      // Every record is read too (format 3 checks a record line when its record is read), and
      // the profile index (formats 4 and 5 check it when it is read: a listing).
      for (
        const attempt of [
          async () => {
            const state = await UnlockedVault.unlock(v.file, v.password);
            state.summaries();
            return await state.records();
          },
          () =>
            openThroughLibrary(v, async (open) => {
              const vault = await open();
              for (const p of vault.profiles.list()) await vault.profiles.show(p.name);
              for (const s of await vault.secrets.list()) await vault.secrets.get(s.name);
            }),
        ]
      ) {
        await assert.rejects(attempt, (e: unknown) => {
          assert.ok(e instanceof HecateError, `${name}: threw ${e}`);
          assert.equal(e.code, expected.code, `${name}: ${e.message}`);
          return true;
        });
      }
      if (expected.apikey_code) {
        const key = (await Deno.readTextFile(`${VECTORS}${name}/apikey.txt`)).trim();
        for (const file of [v.file, new MemoryPositionedFile(v.file)]) {
          await assert.rejects(() => openScoped(file, key, { now: new Date() }), (e: unknown) => {
            assert.ok(e instanceof HecateError, `${name}: API key: threw ${e}`);
            assert.equal(e.code, expected.apikey_code, `${name}: API key: ${e.message}`);
            return true;
          });
        }
      }
    });
  }
});

/** Positions where two equal-length files differ. */
function diff(a: Uint8Array, b: Uint8Array): number[] {
  assert.equal(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

Deno.test("the failure vectors differ from v1-basic only as their descriptions say", async () => {
  const basic = await loadVector("v1-basic");
  const bodyEnd = basic.file.indexOf(0x0a);

  const wrong = await loadVector("v1-wrong-password");
  assert.deepEqual(wrong.file, basic.file);
  assert.notEqual(wrong.password, basic.password);

  const damaged = await loadVector("v1-damaged");
  const d = diff(basic.file, damaged.file);
  assert.equal(d.length, 1);
  assert.ok(d[0]! < bodyEnd);
  assert.equal(basic.file[d[0]!]! ^ damaged.file[d[0]!]!, 0x01);
  assert.equal(damaged.password, basic.password);

  const tampered = await loadVector("v1-tampered");
  const t = diff(basic.file, tampered.file);
  assert.ok(t[0]! < bodyEnd);
  assert.ok(t.slice(1).every((i) => i > bodyEnd), "one body byte, then only the seal line");
  assert.equal(tampered.password, basic.password);

  const future = await loadVector("v1-future-version");
  const text = new TextDecoder();
  assert.equal(
    text.decode(future.file.subarray(0, future.file.indexOf(0x0a))),
    text.decode(basic.file.subarray(0, bodyEnd)).replace('"version":1,', '"version":2,'),
  );
  assert.equal(future.password, basic.password);
});

/** A file's lines (the last, empty one after the final newline dropped). */
function fileLines(file: Uint8Array): string[] {
  return new TextDecoder().decode(file).split("\n").slice(0, -1);
}

Deno.test("the version-3 failure vectors differ from v3-basic only as their descriptions say", async () => {
  const basic = await loadVector("v3-basic");
  const [header, seal, ...records] = fileLines(basic.file);
  assert.equal(JSON.parse(header!).version, 3);
  assert.equal(records.length, 3);
  const sealEnd = header!.length + seal!.length + 2;

  const tampered = await loadVector("v3-tampered-record");
  const t = diff(basic.file, tampered.file);
  assert.equal(t.length, 1);
  assert.ok(t[0]! >= sealEnd, "a record line byte, header and seal untouched");
  assert.equal(basic.file[t[0]!]! ^ tampered.file[t[0]!]!, 0x01);

  const rehashed = fileLines((await loadVector("v3-rehashed-record")).file);
  assert.equal(rehashed.length, 5);
  assert.deepEqual(JSON.parse(rehashed[1]!).mac, JSON.parse(seal!).mac, "the MAC is kept");
  assert.deepEqual(JSON.parse(rehashed[1]!).sig, JSON.parse(seal!).sig, "the signature is kept");
  assert.equal(rehashed.slice(2).filter((l, i) => l !== records[i]).length, 1, "one record line");

  const swapped = fileLines((await loadVector("v3-swapped-records")).file);
  assert.deepEqual(swapped, [header, seal, records[1], records[0], records[2]]);

  const truncated = (await loadVector("v3-truncated")).file;
  assert.ok(truncated.length < basic.file.length && truncated.length > sealEnd);
  assert.deepEqual(truncated, basic.file.slice(0, truncated.length));

  const extra = fileLines((await loadVector("v3-extra-line")).file);
  assert.deepEqual(extra, [header, seal, ...records, records[0]]);

  const future = fileLines((await loadVector("v3-future-version")).file);
  assert.equal(future[0], header!.replace('"version":3,', '"version":4,'));
  assert.deepEqual(future.slice(2), records);

  const badSig = (await loadVector("v3-bad-signature")).file;
  const b = diff(basic.file, badSig);
  assert.equal(b.length, 1);
  assert.ok(b[0]! > header!.length && b[0]! < sealEnd, "one byte of the seal line");
});

Deno.test("the version-4 failure vectors differ from v4-basic only as their descriptions say", async () => {
  const basic = await loadVector("v4-basic");
  const b = readV4(basic.file);
  assert.equal(b.header.version, 4);
  assert.equal(b.parts.table.length, 3);
  const headEnd = (f: Uint8Array) => f.indexOf(0x0a, f.indexOf(0x0a) + 1) + 1;
  const head = basic.file.subarray(0, headEnd(basic.file));
  const sameHead = (f: Uint8Array) => assert.deepEqual(f.subarray(0, headEnd(f)), head);

  const swapped = await loadVector("v4-swapped-entries");
  sameHead(swapped.file);
  const s = readV4(swapped.file).parts;
  assert.deepEqual(s.table, [b.parts.table[1], b.parts.table[0], b.parts.table[2]]);
  assert.deepEqual(s.records, [b.parts.records[1], b.parts.records[0], b.parts.records[2]]);
  assert.deepEqual(s.index, b.parts.index);

  for (const name of ["v4-changed-tag", "v4-rehashed-tag"]) {
    const v = await loadVector(name);
    const t = readV4(v.file);
    const changed = t.parts.table.filter((e, i) => {
      const o = b.parts.table[i]!;
      assert.deepEqual([e.id, e.size, e.sha256], [o.id, o.size, o.sha256], name);
      return e.tag.some((x, k) => x !== o.tag[k]);
    });
    assert.equal(changed.length, 1, `${name}: one tag`);
    assert.deepEqual(t.parts.records, b.parts.records);
    assert.deepEqual(t.seal.mac, b.seal.mac, `${name}: the MAC is kept`);
    assert.deepEqual(t.seal.sig, b.seal.sig, `${name}: the signature is kept`);
    if (name === "v4-changed-tag") sameHead(v.file);
    else assert.notEqual(t.header.table_sha256, b.header.table_sha256);
  }

  const cut = await loadVector("v4-truncated-index");
  sameHead(cut.file);
  assert.equal(cut.file.length, basic.file.length - 1);

  const older = await loadVector("v4-older-index");
  sameHead(older.file);
  assert.equal(older.file.length, basic.file.length);
  const o = readV4(older.file).parts;
  assert.notDeepEqual(o.index, b.parts.index);
  assert.deepEqual([o.table, o.records], [b.parts.table, b.parts.records]);

  const future = await loadVector("v4-future-version");
  const firstLine = (x: Uint8Array) => new TextDecoder().decode(x.subarray(0, x.indexOf(0x0a)));
  assert.equal(
    firstLine(future.file),
    firstLine(basic.file).replace('"version":4,', '"version":5,'),
  );
  assert.deepEqual(
    future.file.subarray(headEnd(future.file)),
    basic.file.subarray(headEnd(basic.file)),
  );
});

Deno.test("the version-5 failure vectors differ from v5-basic only as their descriptions say", async () => {
  const basic = await loadVector("v5-basic");
  const b = readV4(basic.file);
  assert.equal(b.header.version, 5);
  assert.equal(b.parts.table.length, 3);
  const { index_size: _s, index_sha256: _h, ...basicHeader } = b.header;
  for (const name of ["v5-short-index", "v5-keyed-index"]) {
    const v = readV4((await loadVector(name)).file);
    // Only the index line and what the header says of it (so the seal) changed.
    const { index_size: _vs, index_sha256: _vh, ...header } = v.header;
    assert.deepEqual(header, basicHeader, name);
    assert.deepEqual([v.parts.table, v.parts.records], [b.parts.table, b.parts.records], name);
    assert.notDeepEqual(v.parts.index, b.parts.index, name);
    assert.notEqual(v.seal.mac, b.seal.mac, `${name}: sealed again with the real keys`);
    // Both are what a root-key writer could seal: the unlock passes; the index is refused.
    const state = await UnlockedVault.unlock((await loadVector(name)).file, basic.password);
    assert.throws(
      () => state.summaries(),
      (e: unknown) => e instanceof HecateError && e.code === "vault_integrity",
      name,
    );
  }
  const future = await loadVector("v5-future-version");
  const firstLine = (x: Uint8Array) => new TextDecoder().decode(x.subarray(0, x.indexOf(0x0a)));
  assert.equal(
    firstLine(future.file),
    firstLine(basic.file).replace('"version":5,', '"version":6,'),
  );
  const headEnd = (f: Uint8Array) => f.indexOf(0x0a, f.indexOf(0x0a) + 1) + 1;
  assert.deepEqual(
    future.file.subarray(headEnd(future.file)),
    basic.file.subarray(headEnd(basic.file)),
  );
});
