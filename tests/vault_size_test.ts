/**
 * The shortcuts a large vault takes (issue 13, docs/PERFORMANCE.md "Vault size"), each checked
 * against the long way: a write carries the leading unchanged records as one run (table entries
 * and lines copied whole) and the others one by one, whatever was changed, removed or re-keyed
 * before them; API-key scopes are found without the id map; the table's ids are encoded in one
 * pass; duplicate ids are found by sorting. The attack: a record line of the leading run damaged
 * on disk (size and header kept) before `server add`, which must refuse to carry it (exit 4) and
 * leave the file as it was.
 *
 * @module
 */

import assert from "node:assert/strict";
import { toBase64Url } from "../src/vault/encoding.ts";
import {
  assembleFile,
  checkRecordLines,
  hasDuplicateIds,
  parseVaultFile,
  type RecordEntry,
  recordIdTexts,
  recordIdTextsAre,
  serializeBody,
} from "../src/vault/format.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";

const VAULT_INTEGRITY_EXIT = 4;
const ITER = 1_000; // the floor a file may carry: these tests check layout, not the KDF

const profile = (name: string) => ({
  name,
  engine: "sqlite",
  database: `/tmp/${name}.db`,
  secrets: { password: { value: `secret-of-${name}` } },
});

/** A vault of `n` profiles `p0`... written once, and its file. */
async function fileOf(n: number): Promise<{ file: Uint8Array<ArrayBuffer>; ids: string[] }> {
  const state = await UnlockedVault.create(PW, { iterations: ITER });
  const ids = Array.from({ length: n }, (_, i) => state.putRecord(profile(`p${i}`)));
  const { bytes } = await state.serialize();
  return { file: bytes, ids };
}

/** Every record's name and password, opened one by one (each line against its table hash). */
async function contents(file: Uint8Array<ArrayBuffer>): Promise<Map<string, string>> {
  const state = await UnlockedVault.unlock(file, PW);
  const out = new Map<string, string>();
  for (const { id } of state.summaries()) {
    const v = await state.record(id) as { name: string; secrets: { password: { value: string } } };
    out.set(v.name, v.secrets.password.value);
  }
  await checkRecordLines(parseVaultFile(file).body);
  return out;
}

Deno.test("a write after no change carries every record: the same table and record lines, byte for byte", async () => {
  const { file } = await fileOf(40);
  const state = await UnlockedVault.unlock(file, PW);
  const { bytes } = await state.serialize();
  const before = parseVaultFile(file).body.region!;
  const after = parseVaultFile(bytes).body.region!;
  assert.deepEqual(after.table!.bytes, before.table!.bytes);
  assert.deepEqual(
    after.bytes.subarray(after.linesStart),
    before.bytes.subarray(before.linesStart),
  );
  assert.equal((await contents(bytes)).size, 40);
});

Deno.test("a write after changes among the leading records carries the rest and reads back whole", async () => {
  const { file, ids } = await fileOf(12);
  const cases: [string, (s: UnlockedVault) => Promise<void> | void, Map<string, string>][] = [];
  const base = await contents(file);
  const expect = (edit: (m: Map<string, string>) => void) => {
    const m = new Map(base);
    edit(m);
    return m;
  };
  cases.push([
    "first removed",
    (s) => void s.deleteRecord(ids[0]!),
    expect((m) => m.delete("p0")),
  ]);
  cases.push([
    "third changed",
    (s) => void s.putRecord({ ...profile("p2"), secrets: { password: { value: "new" } } }, ids[2]),
    expect((m) => m.set("p2", "new")),
  ]);
  cases.push(["second re-keyed", (s) => void s.rekeyRecord(ids[1]!), base]);
  cases.push([
    "last removed, one added",
    (s) => {
      s.deleteRecord(ids[11]!);
      s.putRecord(profile("added"));
    },
    expect((m) => {
      m.delete("p11");
      m.set("added", "secret-of-added");
    }),
  ]);
  cases.push([
    "a leading record opened, then one added",
    async (s) => {
      await s.record(ids[0]!);
      s.putRecord(profile("added"));
    },
    expect((m) => m.set("added", "secret-of-added")),
  ]);
  for (const [what, edit, want] of cases) {
    const state = await UnlockedVault.unlock(file, PW);
    await edit(state);
    const { bytes } = await state.serialize();
    assert.deepEqual(await contents(bytes), want, what);
    // And again from the new file (a second generation carried from a carried one).
    const next = await UnlockedVault.unlock(bytes, PW);
    next.putRecord(profile("later"));
    const again = await contents((await next.serialize()).bytes);
    assert.equal(again.get("later"), "secret-of-later", what);
    assert.equal(again.size, want.size + 1, what);
  }
});

Deno.test("API-key scopes are found without the id map: each key still opens its records after a write", async () => {
  const { file, ids } = await fileOf(30);
  const state = await UnlockedVault.unlock(file, PW);
  const now = new Date();
  const key = await state.addApiKey({
    name: "k",
    scope: [ids[3]!, ids[29]!, ids[10]!],
    created: now,
    expires: null,
  });
  const first = (await state.serialize()).bytes;
  // A later write from a fresh unlock re-seals the slot from the records found by id (one of
  // them removed: skipped, as with the map).
  const again = await UnlockedVault.unlock(first, PW);
  again.deleteRecord(ids[10]!);
  again.putRecord(profile("added"));
  const second = (await again.serialize()).bytes;
  const scoped = await openScoped(second, key, { now });
  assert.deepEqual(scoped.records().map((r) => r.value.name).sort(), ["p29", "p3"]);
});

Deno.test("the table's ids encoded in one pass equal each id's own encoding", async () => {
  const { file, ids } = await fileOf(257);
  const { body } = parseVaultFile(file);
  const texts = recordIdTexts(body);
  assert.deepEqual(texts, body.records.map((r) => toBase64Url(r.id)));
  assert.deepEqual([...texts].sort(), [...ids].sort());
  // The in-place comparison the index check makes first: true only for exactly these, in order.
  const own = body.records.map((r) => toBase64Url(r.id));
  assert.equal(recordIdTextsAre(body, own), true);
  const swapped = [...own];
  [swapped[3], swapped[200]] = [swapped[200]!, swapped[3]!];
  const altered = (i: number, text: string) => own.map((t, j) => j === i ? text : t);
  const last = own.length - 1;
  for (
    const [what, texts] of [
      ["swapped", swapped],
      ["one short", own.slice(0, -1)],
      ["one more", [...own, own[0]!]],
      ["the last one cut", altered(last, own[last]!.slice(0, 21))],
      ["the last one longer", altered(last, `${own[last]}A`)],
      ["one with a character changed", altered(100, `${own[100]!.slice(0, 21)}!`)],
      ["empty", []],
    ] as const
  ) {
    assert.equal(recordIdTextsAre(body, texts), false, what);
  }
});

/** A format-4 file whose table holds these ids (records otherwise made up; nothing opened). */
async function tableOf(ids: Uint8Array<ArrayBuffer>[]): Promise<Uint8Array<ArrayBuffer>> {
  const records: RecordEntry[] = ids.map((id) => ({
    id,
    kind: "profile",
    key: new Uint8Array(40),
    data: new Uint8Array(40),
  }));
  const { bodyBytes, lines } = await serializeBody({
    version: 4,
    vaultId: new Uint8Array(16),
    generation: 1,
    slots: [],
    records,
    meta: new Uint8Array(28),
    indexLine: { bytes: new Uint8Array(28) },
  }, ids.map(() => new Uint8Array(16)));
  const zeros = new Uint8Array(32);
  return assembleFile(bodyBytes, { sha256: zeros, mac: zeros, sig: new Uint8Array(64) }, lines);
}

Deno.test("duplicate ids in a format-4 table are found, and ids sharing their first 48 bits are not taken for duplicates", async () => {
  const id = (fill: number, last = fill) => {
    const b = new Uint8Array(16).fill(fill);
    b[15] = last;
    return b;
  };
  const distinct = [id(1), id(2), id(3), id(4)];
  assert.equal(hasDuplicateIds(parseVaultFile(await tableOf(distinct)).body), false);
  // Equal in their first 6 bytes (the sorted key), different after.
  const prefix = [id(7, 1), id(2), id(7, 2), id(7, 3)];
  assert.equal(hasDuplicateIds(parseVaultFile(await tableOf(prefix)).body), false);
  const repeated = [id(5), id(2), id(9), id(5)];
  assert.equal(hasDuplicateIds(parseVaultFile(await tableOf(repeated)).body), true);
});

Deno.test("attack: a record line of the leading run damaged on disk (size and header kept) is refused by server add, exit 4, file unchanged", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta", "gamma"]);
    const path = `${home}/${VAULT_FILE}`;
    const genuine = await Deno.readFile(path);
    const { body } = parseVaultFile(genuine);
    // One byte inside the first record line's base64url data: the line keeps its size.
    const region = body.region!;
    const firstLine = genuine.length - (region.bytes.length - region.linesStart);
    const bad = genuine.slice();
    const at = firstLine + bad.subarray(firstLine).indexOf(0x0a) - 10;
    bad[at] = bad[at] === 0x41 ? 0x42 : 0x41;
    await Deno.writeFile(path, bad);
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home), HECATE_LOCKOUT: "off" };
    const r = await runHecate(
      ["--home", home, "server", "add", "delta", "--engine", "sqlite", "--database", "x.db"],
      { env },
    );
    assert.equal(r.code, VAULT_INTEGRITY_EXIT, r.stderr);
    assert.match(r.stderr, /record lines do not match/);
    assert.ok(!r.stdout.includes("secret-of-") && !r.stderr.includes("secret-of-"));
    assert.deepEqual(await Deno.readFile(path), bad, "the vault is left as it was");
  });
});

Deno.test("summary values: in file order whether the index is read in the listing's pass or before, kinds filtered, a changed record with its own summary", async () => {
  const { file, ids } = await fileOf(5);
  const names = (xs: readonly { name?: unknown }[]) => xs.map((x) => x.name);
  // The index read in the pass that collects (the listing's case), after a change in the session.
  const changed = await UnlockedVault.unlock(file, PW);
  changed.putRecord(profile("renamed"), ids[2]);
  changed.putRecord({ name: "token", kind: "secret", value: "v" });
  assert.deepEqual(names(changed.summaryValues("profile")), ["p0", "p1", "renamed", "p3", "p4"]);
  assert.deepEqual(names(changed.summaryValues()), ["p0", "p1", "renamed", "p3", "p4", "token"]);
  assert.deepEqual(names(changed.summaryValues("secret")), ["token"]);
  // The index read before (by summaries()), then collected on its own.
  const before = await UnlockedVault.unlock(file, PW);
  const all = before.summaries().map((r) => r.summary);
  assert.deepEqual(before.summaryValues(), all);
  assert.deepEqual(names(before.summaryValues("profile")), ["p0", "p1", "p2", "p3", "p4"]);
  // Fresh, the listing's first pass: the same objects the index gives summaries().
  const fresh = await UnlockedVault.unlock(file, PW);
  const listed = fresh.summaryValues("profile");
  assert.deepEqual(listed, fresh.summaries().map((r) => r.summary));
  assert.equal(listed[3], fresh.summaries()[3]!.summary, "the index's own objects, not copies");
});
