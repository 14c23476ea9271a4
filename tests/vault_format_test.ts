/**
 * The pure vault layer (format.ts, keyring.ts, vault.ts): round trips, wrong passwords, and every
 * way a file can be damaged or tampered with. No file system; small PBKDF2 costs keep it fast.
 */

import assert from "node:assert/strict";
import { HecateError } from "../src/errors.ts";
import { fromBase64Url, toBase64Url } from "../src/vault/encoding.ts";
import {
  FORMAT_VERSION,
  MAX_PBKDF2_ITERATIONS,
  MIN_PBKDF2_ITERATIONS,
  parseVaultFile,
} from "../src/vault/format.ts";
import {
  deriveKeys,
  openMeta,
  openRecord,
  sealMeta,
  sealRecord,
  unwrapDataKey,
  wrapDataKey,
} from "../src/vault/keyring.ts";
import { AuthenticationFailure, randomBytes } from "../src/vault/primitives.ts";
import { type JsonObject, UnlockedVault } from "../src/vault/vault.ts";
import { assemble, editLogical, fileLines, readLogical } from "./support/vault_lines.ts";

const ITER = 1000;
const PW = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// Helpers that work on the file independently of the code under test.

const enc = new TextEncoder();
const dec = new TextDecoder();

function b64u(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The lines of a vault file: the header, the seal, the record lines (tests/support). */
function split(
  file: Uint8Array,
): {
  body: Uint8Array<ArrayBuffer>;
  seal: { sha256: string; mac: string; sig?: string };
  records: string[];
  prefix?: Uint8Array<ArrayBuffer>;
} {
  return fileLines(file);
}

/**
 * Builds a file from header bytes, a MAC (and signature) and record lines, with the unkeyed
 * checksum recomputed: what an attacker who edits the header can always do.
 */
function resealed(
  body: Uint8Array<ArrayBuffer>,
  mac: string,
  sig?: string,
  records: string[] = [],
  prefix?: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  return assemble(body, { mac, sig }, records, prefix);
}

/**
 * Edits the body JSON of a file (format 3: records inline, as format 2 had them) and recomputes
 * every unkeyed value (line hashes, checksum), keeping the original MAC and signature.
 */
function editBody(
  file: Uint8Array,
  edit: (body: Record<string, unknown>) => void,
): Promise<Uint8Array<ArrayBuffer>> {
  return editLogical(file, edit);
}

/** Unlocks and reads every record: format 3 checks a record line when the record is read. */
async function unlockAll(file: Uint8Array<ArrayBuffer>, password: string): Promise<UnlockedVault> {
  const vault = await UnlockedVault.unlock(file, password);
  await vault.records();
  return vault;
}

type Code = HecateError["code"];

/** Asserts that unlocking rejects with a HecateError whose code is one of `codes`. */
async function assertRejects(
  run: () => Promise<unknown>,
  codes: readonly Code[],
  what: string,
): Promise<Code> {
  let result: unknown;
  try {
    result = await run();
  } catch (e) {
    assert.ok(e instanceof HecateError, `${what}: threw a non-HecateError: ${e}`);
    assert.ok(codes.includes(e.code), `${what}: code ${e.code}, wanted one of ${codes.join("|")}`);
    return e.code;
  }
  assert.fail(`${what}: unlock succeeded (${result === undefined ? "undefined" : "a vault"})`);
}

async function sampleVault(
  records: JsonObject[] = [{ name: "db1", engine: "postgres", host: "h1" }],
): Promise<{ vault: UnlockedVault; file: Uint8Array<ArrayBuffer>; ids: string[] }> {
  const vault = await UnlockedVault.create(PW, { iterations: ITER });
  const ids = records.map((r) => vault.putRecord(r));
  vault.meta = { note: "meta-value" };
  const { bytes, generation } = await vault.serialize();
  vault.markSaved(generation);
  return { vault, file: bytes, ids };
}

// ---------------------------------------------------------------------------------------------
// Round trip and passwords.

Deno.test("a vault serialised and unlocked with its password has the same records, ids and meta", async () => {
  const vault = await UnlockedVault.create(PW, { iterations: ITER });
  assert.equal(vault.generation, 0);
  assert.equal(vault.passwordIterations, ITER);
  const a = vault.putRecord({
    name: "a",
    engine: "postgres",
    n: 1,
    nested: { list: [1, "x", null] },
  });
  const b = vault.putRecord({ name: "b", text: 'ünïcødé ✓ \u0000 "quoted"' });
  const c = vault.putRecord({ name: "c" });
  vault.putRecord({ name: "a2", engine: "mysql" }, a); // replace keeps the id
  assert.ok(vault.deleteRecord(c));
  assert.ok(!vault.deleteRecord(c));
  vault.meta = { chain: "A0", list: [1, 2, 3] };

  const { bytes, generation } = await vault.serialize();
  assert.equal(generation, 1);
  vault.markSaved(generation);

  const back = await UnlockedVault.unlock(bytes, PW);
  assert.equal(back.id, vault.id);
  assert.equal(back.generation, 1);
  assert.equal(back.passwordIterations, ITER);
  assert.deepEqual(await back.records(), await vault.records());
  assert.deepEqual(await back.records(), [
    { id: a, value: { name: "a2", engine: "mysql" } },
    { id: b, value: { name: "b", text: 'ünïcødé ✓ \u0000 "quoted"' } },
  ]);
  assert.deepEqual(back.meta, { chain: "A0", list: [1, 2, 3] });
});

Deno.test("the generation goes up by one per serialize + markSaved and not without markSaved", async () => {
  const vault = await UnlockedVault.create(PW, { iterations: ITER });
  let file = new Uint8Array();
  for (let g = 1; g <= 4; g++) {
    vault.putRecord({ name: `p${g}` });
    const first = await vault.serialize();
    const again = await vault.serialize(); // not committed: same number
    assert.equal(first.generation, g);
    assert.equal(again.generation, g);
    vault.markSaved(first.generation);
    assert.equal(vault.generation, g);
    file = first.bytes;
    assert.equal(parseVaultFile(file).body.generation, g);
  }
  const back = await UnlockedVault.unlock(file, PW);
  assert.equal(back.generation, 4);
  assert.deepEqual((await back.records()).map((r) => r.value.name), ["p1", "p2", "p3", "p4"]);
  // A reloaded vault continues numbering from the file.
  assert.equal((await back.serialize()).generation, 5);
});

Deno.test("records and meta returned by the vault are copies, not live references", async () => {
  const { vault } = await sampleVault();
  const recs = await vault.records();
  (recs[0]!.value as { host: string }).host = "changed";
  const m = vault.meta;
  m.note = "changed";
  assert.equal((await vault.records())[0]!.value.host, "h1");
  assert.equal(vault.meta.note, "meta-value");
});

Deno.test("a wrong password fails with auth_failed", async () => {
  const { file } = await sampleVault();
  for (const wrong of ["", "correct horse battery stapl", PW + " ", PW.toUpperCase()]) {
    await assertRejects(
      () => UnlockedVault.unlock(file, wrong),
      ["auth_failed"],
      `password ${wrong}`,
    );
  }
  // And the right one still works on the same bytes.
  await UnlockedVault.unlock(file, PW);
});

Deno.test("passwords are compared after Unicode NFC normalisation", async () => {
  const composed = "p\u00e4ssw\u00f6rd";
  const decomposed = "pa\u0308ssw\u006f\u0308rd";
  assert.notEqual(composed, decomposed);
  const vault = await UnlockedVault.create(composed, { iterations: ITER });
  const { bytes } = await vault.serialize();
  await UnlockedVault.unlock(bytes, decomposed);
});

Deno.test("setPassword re-wraps the root key: the new password opens, the old one fails", async () => {
  const { vault } = await sampleVault();
  await vault.setPassword("new password", ITER + 1);
  const { bytes } = await vault.serialize();
  await assertRejects(() => UnlockedVault.unlock(bytes, PW), ["auth_failed"], "old password");
  const back = await UnlockedVault.unlock(bytes, "new password");
  assert.equal(back.passwordIterations, ITER + 1);
  assert.deepEqual(await back.records(), await vault.records());
  assert.equal(parseVaultFile(bytes).body.slots.length, 1);
});

Deno.test("putRecord with an unknown id fails with profile_not_found", async () => {
  const { vault } = await sampleVault();
  assert.throws(
    () => vault.putRecord({ name: "x" }, b64u(randomBytes(16))),
    (e: unknown) => e instanceof HecateError && e.code === "profile_not_found",
  );
});

// ---------------------------------------------------------------------------------------------
// Damage and tampering.

const ANY_FAILURE: readonly Code[] = ["vault_integrity", "auth_failed", "unsupported_version"];
const TAMPER_FAILURE: readonly Code[] = ["vault_integrity", "auth_failed"];

Deno.test("flipping any single bit (xor 0x01 and xor 0x80) of any byte never unlocks", async () => {
  const { file } = await sampleVault();
  assert.ok(file.length > 600 && file.length < 2000, `fixture size ${file.length}`);
  const seen = new Map<Code, number>();
  for (const mask of [0x01, 0x80]) {
    for (let i = 0; i < file.length; i++) {
      const bad = file.slice();
      bad[i] = bad[i]! ^ mask;
      const code = await assertRejects(
        () => unlockAll(bad, PW),
        ANY_FAILURE,
        `byte ${i} xor ${mask}`,
      );
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
  }
  // Without a fixed-up checksum, damage reads as damage, not as a wrong password.
  assert.deepEqual([...seen.keys()], ["vault_integrity"]);
});

Deno.test("flipping any body byte and recomputing the unkeyed checksum still never unlocks", async () => {
  const { file } = await sampleVault();
  const { body, seal, records } = split(file);
  const seen = new Map<Code, number>();
  const versionAt = dec.decode(body).indexOf(`"version":${FORMAT_VERSION}`) + 10;
  for (const mask of [0x01, 0x80]) {
    for (let i = 0; i < body.length; i++) {
      const edited = body.slice();
      edited[i] = edited[i]! ^ mask;
      const bad = await resealed(edited, seal.mac, seal.sig, records);
      // The version digit turned into another positive version reads as that version: "3" xor 1
      // is "2", a version this build reads, whose body has no record table (damaged).
      const allowed: readonly Code[] = i === versionAt && mask === 0x01
        ? ["unsupported_version", "vault_integrity"]
        : TAMPER_FAILURE;
      const code = await assertRejects(
        () => UnlockedVault.unlock(bad, PW),
        allowed,
        `body byte ${i} (${String.fromCharCode(body[i]!)}) xor ${mask}`,
      );
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
  }
  // Edits of the password slot (salt, iterations, wrapped key, ids) read as auth_failed; the rest
  // is caught by parsing or by the keyed body MAC.
  assert.ok(
    (seen.get("vault_integrity") ?? 0) > (seen.get("auth_failed") ?? 0),
    JSON.stringify([...seen]),
  );
});

Deno.test("a file with the original body and a recomputed checksum but a changed MAC fails with vault_integrity", async () => {
  const { file } = await sampleVault();
  const { body, seal, records } = split(file);
  const mac = fromBase64Url(seal.mac);
  for (const i of [0, 15, 31]) {
    const m = mac.slice();
    m[i] = m[i]! ^ 0x01;
    await assertRejects(
      async () => UnlockedVault.unlock(await resealed(body, b64u(m), seal.sig, records), PW),
      ["vault_integrity"],
      `mac byte ${i}`,
    );
  }
  // A truncated or empty file.
  for (const n of [0, 1, body.length, body.length + 1, file.length - 1]) {
    await assertRejects(
      () => UnlockedVault.unlock(file.slice(0, n), PW),
      ["vault_integrity"],
      `first ${n} bytes`,
    );
  }
});

Deno.test("a record entry spliced in from another vault fails with vault_integrity", async () => {
  const a = await sampleVault([{ name: "a1" }]);
  const b = await sampleVault([{ name: "b1" }, { name: "b2" }]);
  const bRecords = readLogical(b.file).body.records;
  // Appended, replacing, and replacing with the victim's record id kept.
  const variants: [string, (body: Record<string, unknown>) => void][] = [
    ["appended", (j) => (j.records as unknown[]).push(bRecords[0])],
    ["replacing", (j) => (j.records = [bRecords[1]])],
    ["replacing, id kept", (j) => {
      const own = (j.records as { id: string }[])[0]!;
      j.records = [{ ...(bRecords[0] as object), id: own.id }];
    }],
  ];
  for (const [what, edit] of variants) {
    const bad = await editBody(a.file, edit);
    await assertRejects(() => UnlockedVault.unlock(bad, PW), ["vault_integrity"], what);
  }
});

Deno.test("a password slot copied from another vault never unlocks, with either password", async () => {
  const a = await sampleVault([{ name: "a1" }]);
  const bVault = await UnlockedVault.create("password of b", { iterations: ITER });
  const bFile = (await bVault.serialize()).bytes;
  const bSlot = (JSON.parse(dec.decode(split(bFile).body)) as { slots: unknown[] }).slots[0];
  const bad = await editBody(a.file, (j) => (j.slots = [bSlot]));
  for (const pw of ["password of b", PW]) {
    await assertRejects(
      () => UnlockedVault.unlock(bad, pw),
      TAMPER_FAILURE,
      `slot from B, password ${pw}`,
    );
  }
  // Two password slots (A's and B's) are refused outright.
  const two = await editBody(a.file, (j) => (j.slots as unknown[]).push(bSlot));
  for (const pw of ["password of b", PW]) {
    await assertRejects(
      () => UnlockedVault.unlock(two, pw),
      TAMPER_FAILURE,
      `two slots, password ${pw}`,
    );
  }
});

Deno.test("records reordered, swapped with ids exchanged, duplicated or removed are rejected", async () => {
  const { file } = await sampleVault([{ name: "r0" }, { name: "r1" }, { name: "r2" }]);
  type Entry = { id: string; key: string; data: string };
  const variants: [string, (j: { records: Entry[] }) => void][] = [
    ["order reversed", (j) => j.records.reverse()],
    ["ids exchanged", (j) => {
      const [x, y] = j.records;
      [x!.id, y!.id] = [y!.id, x!.id];
    }],
    ["data exchanged", (j) => {
      const [x, y] = j.records;
      [x!.data, y!.data] = [y!.data, x!.data];
    }],
    ["keys exchanged", (j) => {
      const [x, y] = j.records;
      [x!.key, y!.key] = [y!.key, x!.key];
    }],
    ["duplicated", (j) => j.records.push({ ...j.records[0]! })],
    ["removed", (j) => j.records.pop()],
    ["all removed", (j) => (j.records = [])],
  ];
  for (const [what, edit] of variants) {
    const bad = await editBody(file, (j) => edit(j as unknown as { records: Entry[] }));
    await assertRejects(() => UnlockedVault.unlock(bad, PW), ["vault_integrity"], what);
  }
});

Deno.test("generation rolled back or the meta blob swapped in from another vault is rejected", async () => {
  const { file } = await sampleVault();
  const other = await sampleVault();
  const otherMeta = (JSON.parse(dec.decode(split(other.file).body)) as { meta: string }).meta;
  for (
    const [what, edit] of [
      ["generation", (j: Record<string, unknown>) => (j.generation = 0)],
      ["meta", (j: Record<string, unknown>) => (j.meta = otherMeta)],
      ["vault id", (j: Record<string, unknown>) => (j.vault_id = b64u(randomBytes(16)))],
    ] as const
  ) {
    const bad = await editBody(file, edit);
    await assertRejects(() => UnlockedVault.unlock(bad, PW), TAMPER_FAILURE, what);
  }
});

Deno.test("reload refuses a file of another vault and a tampered file", async () => {
  const a = await sampleVault();
  const b = await sampleVault();
  await assertRejects(() => a.vault.reload(b.file), ["vault_integrity"], "other vault");
  const bad = await editBody(a.file, (j) => (j.generation = 7));
  await assertRejects(() => a.vault.reload(bad), ["vault_integrity"], "tampered");
  const same = await a.vault.reload(a.file);
  assert.deepEqual(await same.records(), await a.vault.records());
});

Deno.test("keyring: a record or data key opened with another vault id or record id fails", async () => {
  const root = randomBytes(32);
  const vaultA = randomBytes(16), vaultB = randomBytes(16);
  const rec1 = randomBytes(16), rec2 = randomBytes(16);
  const keysA = await deriveKeys(root, vaultA);
  const keysB = await deriveKeys(root, vaultB);
  assert.notDeepEqual(keysA.wrap, keysB.wrap, "derived keys depend on the vault id");
  assert.notDeepEqual(keysA.wrap, keysA.mac);
  assert.notDeepEqual(keysA.mac, keysA.meta);
  const dataKey = randomBytes(32);
  const wrapped = await wrapDataKey(keysA.wrap, dataKey, vaultA, rec1);
  const sealed = await sealRecord(dataKey, enc.encode('{"x":1}'), vaultA, rec1);
  const meta = await sealMeta(keysA.meta, enc.encode("{}"), vaultA);

  assert.deepEqual(await unwrapDataKey(keysA.wrap, wrapped, vaultA, rec1), dataKey);
  assert.equal(dec.decode(await openRecord(dataKey, sealed, vaultA, rec1)), '{"x":1}');
  assert.equal(dec.decode(await openMeta(keysA.meta, meta, vaultA)), "{}");

  const fails = (p: Promise<unknown>) => assert.rejects(p, AuthenticationFailure);
  await fails(unwrapDataKey(keysA.wrap, wrapped, vaultB, rec1));
  await fails(unwrapDataKey(keysA.wrap, wrapped, vaultA, rec2));
  await fails(unwrapDataKey(keysB.wrap, wrapped, vaultA, rec1));
  await fails(unwrapDataKey(keysA.mac, wrapped, vaultA, rec1));
  await fails(openRecord(dataKey, sealed, vaultB, rec1));
  await fails(openRecord(dataKey, sealed, vaultA, rec2));
  await fails(openRecord(randomBytes(32), sealed, vaultA, rec1));
  await fails(openMeta(keysA.meta, meta, vaultB));
  await fails(openMeta(keysA.wrap, meta, vaultA));
  // A sealed data key is not a valid record under the same key, nor the reverse (labels differ).
  await fails(openRecord(keysA.wrap, wrapped, vaultA, rec1));
  const asKey = await sealRecord(keysA.wrap, dataKey, vaultA, rec1);
  await fails(unwrapDataKey(keysA.wrap, asKey, vaultA, rec1));
  // Truncated ciphertexts fail the same way.
  await fails(openRecord(dataKey, sealed.slice(0, 27), vaultA, rec1));
  await fails(openRecord(dataKey, sealed.slice(0, sealed.length - 1), vaultA, rec1));
});

Deno.test("every encryption uses a fresh nonce: the same record sealed twice differs", async () => {
  const key = randomBytes(32), v = randomBytes(16), r = randomBytes(16);
  const pt = enc.encode("same plaintext");
  const x = await sealRecord(key, pt, v, r);
  const y = await sealRecord(key, pt, v, r);
  assert.notDeepEqual(x.slice(0, 12), y.slice(0, 12));
  assert.notDeepEqual(x, y);
});

Deno.test("a header of version 6 with a correct checksum fails with unsupported_version", async () => {
  const { file } = await sampleVault();
  assert.equal(FORMAT_VERSION, 5);
  for (const v of [6, 7, 1000]) {
    const bad = await editBody(file, (j) => (j.version = v));
    await assertRejects(
      () => UnlockedVault.unlock(bad, PW),
      ["unsupported_version"],
      `version ${v}`,
    );
  }
  // Nonsense versions are damage, not a newer format; a signed file posing as version 1 or 2 too
  // (as version 2, with its records inline in a two-line file: the MAC covers other bytes).
  for (const v of [0, -1, 1.5, "1", null, 1, 2]) {
    const bad = await editBody(file, (j) => (j.version = v));
    await assertRejects(() => UnlockedVault.unlock(bad, PW), ["vault_integrity"], `version ${v}`);
  }
});

Deno.test("iteration counts outside the accepted range fail with vault_integrity before any KDF runs", async () => {
  const { file } = await sampleVault();
  const cases = [
    MAX_PBKDF2_ITERATIONS + 1,
    Number.MAX_SAFE_INTEGER,
    1e300,
    MIN_PBKDF2_ITERATIONS - 1,
    0,
    -600000,
    600000.5,
    "600000",
  ];
  for (const iterations of cases) {
    const bad = await editBody(file, (j) => {
      (j.slots as { kdf: { iterations: unknown } }[])[0]!.kdf.iterations = iterations;
    });
    const t0 = performance.now();
    await assertRejects(
      () => UnlockedVault.unlock(bad, PW),
      ["vault_integrity"],
      `iterations ${iterations}`,
    );
    const ms = performance.now() - t0;
    // MAX+1 iterations of PBKDF2 would take minutes; rejecting takes well under a second.
    assert.ok(ms < 500, `iterations ${iterations}: took ${ms.toFixed(0)} ms`);
  }
});

Deno.test("unknown fields, unknown kinds and wrong id lengths in the body fail with vault_integrity", async () => {
  const { file } = await sampleVault();
  type J = Record<string, unknown> & {
    slots: Record<string, unknown>[];
    records: Record<string, unknown>[];
  };
  const variants: [string, (j: J) => void][] = [
    ["extra top-level field", (j) => (j.extra = 1)],
    ["missing meta", (j) => delete j.meta],
    ["extra slot field", (j) => (j.slots[0]!.extra = 1)],
    ["unknown slot kind", (j) => (j.slots[0]!.kind = "passphrase")],
    ["unknown kdf", (j) => ((j.slots[0]!.kdf as Record<string, unknown>).alg = "pbkdf2-sha1")],
    ["no slots", (j) => (j.slots = [])],
    ["unknown record kind", (j) => (j.records[0]!.kind = "note")],
    ["short record id", (j) => (j.records[0]!.id = b64u(randomBytes(15)))],
    ["short vault id", (j) => (j.vault_id = b64u(randomBytes(8)))],
    [
      "short salt",
      (j) => ((j.slots[0]!.kdf as Record<string, unknown>).salt = b64u(randomBytes(8))),
    ],
    ["format name", (j) => (j.format = "hecate-vault2")],
    ["records not a list", (j) => ((j as Record<string, unknown>).records = {})],
  ];
  for (const [what, edit] of variants) {
    const bad = await editBody(file, (j) => edit(j as J));
    await assertRejects(() => UnlockedVault.unlock(bad, PW), ["vault_integrity"], what);
  }
});

// ---------------------------------------------------------------------------------------------
// Encoding.

Deno.test("base64url decoding accepts only canonical unpadded base64url", () => {
  for (let n = 0; n < 40; n++) {
    const bytes = randomBytes(n);
    assert.deepEqual(fromBase64Url(toBase64Url(bytes)), bytes);
    assert.equal(toBase64Url(bytes), b64u(bytes));
  }
  assert.deepEqual(fromBase64Url(""), new Uint8Array());
  assert.deepEqual(fromBase64Url("QQ"), new Uint8Array([0x41]));
  assert.deepEqual(fromBase64Url("-_8"), new Uint8Array([0xfb, 0xff]));
  const rejected = [
    "QR", // stray low bits: same byte as "QQ", non-canonical spelling
    "QQF", // 2 bytes would need the low 2 bits clear ("QQE" is canonical)
    "QUJ", // "AB" is "QUI"
    "QQ==", // padding
    "QQ=",
    "Q", // impossible length
    "QUJDR", // impossible length
    "+/8", // standard alphabet
    "QU I",
    " QQ",
    "QQ\n",
    "QU.I",
    "ÄÄ",
  ];
  for (const t of rejected) assert.throws(() => fromBase64Url(t), SyntaxError, JSON.stringify(t));
});

Deno.test("a non-canonical base64url spelling inside the file fails with vault_integrity", async () => {
  const { file } = await sampleVault();
  const { body } = split(file);
  const j = JSON.parse(dec.decode(body));
  const id: string = j.vault_id; // 16 bytes = 22 chars; the last char carries 2 bits + 4 zero bits
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const last = alphabet.indexOf(id.at(-1)!);
  assert.equal(last & 0x0f, 0);
  const bad = await editBody(file, (b) => (b.vault_id = id.slice(0, -1) + alphabet[last | 0x01]));
  await assertRejects(
    () => UnlockedVault.unlock(bad, PW),
    ["vault_integrity"],
    "non-canonical vault id",
  );
});

// ---------------------------------------------------------------------------------------------
// Confidentiality.

/** Every way a secret could show up in the file text: plain, JSON-escaped, hex, base64 variants. */
function spellings(secret: string): string[] {
  const bytes = enc.encode(secret);
  const out = [secret, JSON.stringify(secret).slice(1, -1), secret.slice(7, 20)];
  out.push(Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""));
  for (let shift = 0; shift < 3; shift++) {
    // Base64 of the secret at each alignment; drop the characters that depend on neighbours.
    const padded = new Uint8Array(shift + bytes.length);
    padded.set(bytes, shift);
    let bin = "";
    for (const b of padded) bin += String.fromCharCode(b);
    const std = btoa(bin);
    const inner = std.slice(Math.ceil((shift * 4) / 3) + 1, std.length - 4);
    assert.ok(inner.length >= 40);
    out.push(inner, inner.replaceAll("+", "-").replaceAll("/", "_"));
  }
  return out;
}

Deno.test("a secret stored in a record never appears in the serialised file bytes", async () => {
  const canary = `CANARY-${b64u(randomBytes(24))}`;
  const vault = await UnlockedVault.create(PW, { iterations: ITER });
  vault.putRecord({
    name: "canary",
    engine: "postgres",
    host: "db.example",
    secrets: { password: { value: canary } },
  });
  vault.meta = { also: canary };
  const { bytes } = await vault.serialize();
  const text = dec.decode(bytes);
  // Latin-1 view too, in case bytes are not valid UTF-8 where the secret would sit.
  let latin1 = "";
  for (const b of bytes) latin1 += String.fromCharCode(b);
  for (const s of spellings(canary)) {
    assert.ok(!text.includes(s), `file contains ${s}`);
    assert.ok(!latin1.includes(s), `file contains ${s}`);
  }
  assert.ok(!text.includes("CANARY"));
  assert.ok(!text.toLowerCase().includes("canary"));
  // The test is not vacuous: the secret is really in there, encrypted.
  const back = await UnlockedVault.unlock(bytes, PW);
  assert.equal(
    ((await back.records())[0]!.value as { secrets: { password: { value: string } } }).secrets
      .password
      .value,
    canary,
  );
  assert.equal(back.meta.also, canary);
});

Deno.test("format 3 and 4: a damaged record line is found when read, and a writer refuses to carry it forward", async () => {
  const { file, ids } = await sampleVault([{ name: "a" }, { name: "b" }]);
  const { body, seal, records, prefix } = split(file);
  // One byte inside record b's data, header and seal untouched.
  const line = records[1]!;
  const at = line.indexOf('"data":"') + 20;
  const damagedLine = line.slice(0, at) + (line[at] === "A" ? "B" : "A") + line.slice(at + 1);
  const bad = await resealed(body, seal.mac, seal.sig, [records[0]!, damagedLine], prefix);
  // The header still authenticates: unlock and record a succeed; record b does not.
  const vault = await UnlockedVault.unlock(bad, PW);
  assert.equal((await vault.record(ids[0]!)).name, "a");
  await assertRejects(() => vault.record(ids[1]!), ["vault_integrity"], "record b");
  // A write that changes only record a still checks every line it carries forward.
  const fresh = await UnlockedVault.unlock(bad, PW);
  fresh.putRecord({ name: "a2" }, ids[0]!);
  await assertRejects(() => fresh.serialize(), ["vault_integrity"], "write");
  // The same write over the intact file succeeds and keeps record b's line byte for byte.
  const good = await UnlockedVault.unlock(file, PW);
  good.putRecord({ name: "a2" }, ids[0]!);
  assert.equal(split((await good.serialize()).bytes).records[1], records[1]);
});
