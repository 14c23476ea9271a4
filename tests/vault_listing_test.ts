/**
 * `server list` with a root-key credential reads the vault file by position: the header and seal
 * lines, the record table and the sealed index line, never a record line (src/vault/listing.ts;
 * docs/FORMAT.md, "Reading for a listing"). These tests check that it reads no more than that,
 * lists what a full unlock lists, and opens or writes nothing from what it read; and they perform
 * the attacks of someone who can write the home (no root key) against it through the CLI: a
 * damaged index line or record table of the same size is refused (exit 4, file unchanged); a
 * damaged record line, which the listing does not read, leaves the listing as it was and is
 * refused by `server show` and `query` of that profile and by a write.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { openVault } from "../src/hecate.ts";
import { openVaultForListing } from "../src/api/open.ts";
import { ListingFile, readListingFile } from "../src/vault/listing.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { auditLines, passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { fileLines, MemoryPositionedFile, readV4, TABLE_ENTRY } from "./support/vault_lines.ts";

const VAULT_INTEGRITY_EXIT = 4;

/** Replaces the character at `at` of a base64url text with another base64url character. */
function flipChar(line: string, at: number): string {
  return line.slice(0, at) + (line[at] === "A" ? "B" : "A") + line.slice(at + 1);
}

/** Where the record lines start in a format-4 file (after the header, seal, table, index). */
function linesStart(file: Uint8Array): number {
  const headEnd = file.indexOf(0x0a, file.indexOf(0x0a) + 1) + 1;
  const { parts } = readV4(file);
  return headEnd + parts.table.length * TABLE_ENTRY + 1 + parts.index.length + 1;
}

Deno.test("a listing reads by position only the head, the record table and the index line, lists as a full unlock does, and opens or writes no record", async () => {
  const vault = await UnlockedVault.create(PW, { iterations: 1_000 });
  const ids: string[] = [];
  for (let i = 0; i < 1_500; i++) {
    ids.push(vault.putRecord({
      name: `p${i}`,
      engine: "postgres",
      host: `db${i}.example`,
      secrets: { password: "s".repeat(400) },
    }));
  }
  vault.putRecord({ kind: "secret", name: "token", value: "t".repeat(300) });
  const { bytes: file } = await vault.serialize();

  const positioned = new MemoryPositionedFile(file);
  const head = await readListingFile(positioned);
  assert.ok(head instanceof ListingFile);
  const listed = await UnlockedVault.unlock(head, PW);
  const whole = await UnlockedVault.unlock(file, PW);
  assert.ok(listed.listingOnly && !whole.listingOnly);
  assert.deepEqual(listed.summaryValues("profile"), whole.summaryValues("profile"));
  assert.deepEqual(listed.summaries(), whole.summaries());
  assert.deepEqual(listed.meta, whole.meta);

  // No read reaches a record line: the head (one chunk here), then one read of the table and
  // index lines with their newlines.
  const start = linesStart(file);
  const headEnd = file.indexOf(0x0a, file.indexOf(0x0a) + 1) + 1;
  assert.ok(start > 64 * 1024, "the head chunk ends before the record lines");
  for (const [at, n] of positioned.reads) assert.ok(at + n <= start, `read ${at}+${n} of ${start}`);
  const after = positioned.reads.filter(([at]) => at >= headEnd);
  assert.deepEqual(after, [[headEnd, start - headEnd]]);
  assert.ok(positioned.bytesRead < file.length / 2, `${positioned.bytesRead} of ${file.length}`);

  // A lookup by name uses the table's tags; opening a record, listing all records or writing
  // needs the record lines, which this state never read: an internal error, no HecateError.
  const id = listed.recordIdByName("p7")!;
  assert.equal(id, ids[7]);
  for (
    const use of [
      () => listed.record(id),
      () => listed.records(),
      () => listed.recordSideKey(id),
      () => listed.serialize(),
    ]
  ) {
    await assert.rejects(use, (e) => e instanceof Error && !(e instanceof HecateError));
  }
  // A reload (what every write does first, under the lock) reads and checks the whole file.
  const full = await listed.reload(file);
  assert.ok(!full.listingOnly);
  assert.deepEqual(await full.record(id), await whole.record(id));
  assert.ok((await full.serialize()).bytes.length > 0);
});

const VECTORS = new URL("./vectors/", import.meta.url).pathname;

Deno.test("vectors: a listing opens every format-4 and -5 vector (and older ones, read whole) as a full unlock does, or refuses it with the same code", async () => {
  const names = ["v2-basic", "v3-basic"];
  for await (const e of Deno.readDir(VECTORS)) if (/^v[45]-/.test(e.name)) names.push(e.name);
  assert.ok(names.length >= 12);
  for (const name of names.sort()) {
    const dir = `${VECTORS}${name}/`;
    const file = await Deno.readFile(`${dir}vault.hecate`);
    const password = await Deno.readTextFile(`${dir}password.txt`);
    const expected = JSON.parse(await Deno.readTextFile(`${dir}expected.json`));
    const head = await readListingFile(new MemoryPositionedFile(file));
    // Read by position when the header's version has an index line (4 and 5; v4-future-version
    // says 5), else whole.
    assert.equal(
      head instanceof ListingFile,
      /^v[45]-/.test(name) && name !== "v5-future-version",
      name,
    );
    const listing = UnlockedVault.unlock(head, password);
    if (expected.outcome === "ok") {
      const listed = (await listing).summaryValues("profile").map((s) => s.name).sort();
      assert.deepEqual(listed, expected.profiles.map((p: { name: string }) => p.name), name);
    } else {
      // What a listing does: unlock, then read the summaries (the index is parsed then).
      await assert.rejects(
        async () => (await listing).summaryValues("profile"),
        (e) => e instanceof HecateError && e.code === expected.code,
        name,
      );
    }
  }
});

Deno.test("a listing open writes the same audit records as an unlock, and a write from it reads the whole file first", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["a", "b"])).close();
    const before = (await auditLines(home)).length;
    const listing = await openVaultForListing({ home, password: PW, lockout: "off" });
    const mid = (await auditLines(home)).length;
    const opened = await openVault({ home, password: PW, lockout: "off" });
    const events = (await auditLines(home)).map((l) => `${l.event}:${l.outcome}`);
    assert.deepEqual(events.slice(before, mid), events.slice(mid));
    assert.deepEqual(events.slice(before, mid), ["unlock:ok"]);
    assert.deepEqual(listing.profiles.list(), opened.profiles.list());
    // A write through the listing's session: under the lock it re-reads and checks the whole
    // file, then writes from that; the session reads records again afterwards.
    await Deno.writeFile(`${home}/c.db`, new Uint8Array(), { mode: 0o600 });
    await listing.profiles.add({ name: "c", engine: "sqlite", database: `${home}/c.db` });
    assert.deepEqual(listing.profiles.list().map((p) => p.name), ["a", "b", "c"]);
    assert.equal((await listing.profiles.show("a")).name, "a");
    await listing.close();
    await opened.close();
  });
});

Deno.test("attack: a damaged index line or record table (same size) is refused by the positioned listing, exit 4; a damaged record line does not change the listing and is refused by show, query and a write", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["a", "b", "c"])).close();
    const dir = await Deno.makeTempDir({ prefix: "hecate-listing-" });
    try {
      const pw = await passwordFile(dir);
      const run = (args: string[]) =>
        runHecate(["--home", home, ...args], { env: { HECATE_PASSWORD_FILE: pw } });
      const path = `${home}/${VAULT_FILE}`;
      const genuine = await Deno.readFile(path);
      const table = await run(["server", "list"]);
      const json = await run(["server", "list", "--json"]);
      assert.equal(table.code, 0, table.stderr);
      assert.equal(json.code, 0, json.stderr);
      assert.match(table.stdout, /^b\s/m);

      const headEnd = genuine.indexOf(0x0a, genuine.indexOf(0x0a) + 1) + 1;
      const { parts } = readV4(genuine);
      const indexAt = headEnd + parts.table.length * TABLE_ENTRY + 1;
      const flipByte = (at: number) => {
        const bad = genuine.slice();
        bad[at]! ^= 0x01;
        return bad;
      };
      const attacks: [string, Uint8Array][] = [
        ["index line, a byte in its middle", flipByte(indexAt + (parts.index.length >> 1))],
        ["index line, its last byte", flipByte(indexAt + parts.index.length - 1)],
        ["record table, a name tag byte", flipByte(headEnd + TABLE_ENTRY + 60)],
        ["record table, a line hash byte", flipByte(headEnd + 30)],
        // A record's size in the table, one bigger, and the next one's one smaller: every sum of
        // sizes still matches the file; the table's hash does not.
        [
          "record table, two sizes moved by one",
          (() => {
            const bad = genuine.slice();
            const v = new DataView(bad.buffer);
            v.setUint32(headEnd + 16, v.getUint32(headEnd + 16) + 1);
            v.setUint32(headEnd + TABLE_ENTRY + 16, v.getUint32(headEnd + TABLE_ENTRY + 16) - 1);
            return bad;
          })(),
        ],
      ];
      for (const [what, bad] of attacks) {
        assert.equal(bad.length, genuine.length, what);
        await Deno.writeFile(path, bad);
        for (const args of [["server", "list"], ["server", "list", "--json"]]) {
          const r = await run(args);
          assert.equal(r.code, VAULT_INTEGRITY_EXIT, `${what}: ${r.code} ${r.stderr}`);
          const errors = r.stderr.split("\n").filter((l) => l.startsWith("hecate: error:"));
          assert.equal(errors.length, 1, `${what}: one error line: ${r.stderr}`);
          assert.equal(r.stdout, "", what);
          assert.ok(!r.stderr.includes("secret-of-"), what);
        }
        assert.deepEqual(await Deno.readFile(path), bad, `${what}: the file is left as it was`);
      }

      // A record line's content (same size, table and every unkeyed hash as they were): the
      // listing reads no record line and shows what it showed; show, query and a write refuse it.
      const { records } = fileLines(genuine);
      const i = parts.table.findIndex((_, k) => records[k]!.includes('"kind":"profile"'));
      const start = genuine.length - new TextEncoder().encode(records.join("\n") + "\n").length;
      const dataAt = (l: string) => l.indexOf('"data":"') + 20;
      const lines = records.map((l, k) => k === i ? flipChar(l, dataAt(l)) : l);
      const bad = new Uint8Array(genuine.length);
      bad.set(genuine.subarray(0, start));
      bad.set(new TextEncoder().encode(lines.join("\n") + "\n"), start);
      await Deno.writeFile(path, bad);
      const listed = await run(["server", "list"]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal(listed.stdout, table.stdout);
      const listedJson = await run(["server", "list", "--json"]);
      assert.equal(listedJson.stdout, json.stdout);
      // Which profile the damaged line holds: the one whose show is refused.
      const refused: string[] = [];
      for (const name of ["a", "b", "c"]) {
        const shown = await run(["server", "show", name]);
        if (shown.code !== 0) {
          assert.equal(shown.code, VAULT_INTEGRITY_EXIT, shown.stderr);
          refused.push(name);
        }
      }
      assert.equal(refused.length, 1, `one profile's line was damaged: ${refused}`);
      const q = await run(["query", refused[0]!, "select 1"]);
      assert.equal(q.code, VAULT_INTEGRITY_EXIT, q.stderr);
      assert.ok(!q.stderr.includes("secret-of-"));
      const write = await run(["apikey", "create", "k", "--server", "a"]);
      assert.equal(write.code, VAULT_INTEGRITY_EXIT, write.stderr);
      assert.deepEqual(await Deno.readFile(path), bad, "the file is left as it was");

      // The newline between two record lines moved by one byte, every size sum still the file's:
      // a reader of the whole file refuses the layout, the listing (which reads neither line)
      // does not see it, as docs/FORMAT.md states; each profile's show and a write refuse it.
      const moved = records.map((l, k) =>
        k === 0 ? l.slice(0, -1) : k === 1 ? records[0]!.slice(-1) + l : l
      );
      const shifted = new Uint8Array(genuine.length);
      shifted.set(genuine.subarray(0, start));
      shifted.set(new TextEncoder().encode(moved.join("\n") + "\n"), start);
      await Deno.writeFile(path, shifted);
      const unseen = await run(["server", "list"]);
      assert.equal(unseen.code, 0, unseen.stderr);
      assert.equal(unseen.stdout, table.stdout);
      let refusedShows = 0;
      for (const name of ["a", "b", "c"]) {
        const shown = await run(["server", "show", name]);
        if (shown.code !== 0) refusedShows++;
        assert.ok([0, VAULT_INTEGRITY_EXIT].includes(shown.code), shown.stderr);
      }
      assert.equal(refusedShows, 3, "a whole-file read refuses the layout for every profile");
      const rewrite = await run(["apikey", "create", "k", "--server", "a"]);
      assert.equal(rewrite.code, VAULT_INTEGRITY_EXIT, rewrite.stderr);
      assert.deepEqual(await Deno.readFile(path), shifted, "the file is left as it was");

      await Deno.writeFile(path, genuine);
      assert.equal((await run(["server", "list"])).stdout, table.stdout);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("fuzz: random byte edits of a file never open into another listing by position, nor crash", async () => {
  const vault = await UnlockedVault.create(PW, { iterations: 1_000 });
  for (let i = 0; i < 40; i++) {
    vault.putRecord({ name: `p${i}`, engine: "sqlite", secrets: { password: `canary-${i}` } });
  }
  const { bytes: file } = await vault.serialize();
  const genuine = (await UnlockedVault.unlock(file, PW)).summaryValues("profile");
  const allowed = new Set(["vault_integrity", "unsupported_version", "auth_failed"]);
  let opened = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat({ max: file.length - 1 }), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.boolean(),
      async (edits, truncate) => {
        const bad = file.slice();
        for (const [at, x] of edits) bad[at]! ^= x;
        const input = truncate ? bad.slice(0, edits[0]![0]) : bad;
        try {
          const head = await readListingFile(new MemoryPositionedFile(input));
          const listed = await UnlockedVault.unlock(head, PW);
          // Opened: only edits the listing does not read (record lines) leave it opening, and
          // then it lists exactly the genuine index.
          assert.deepEqual(listed.summaryValues("profile"), genuine);
          opened++;
          assert.ok(input.length === file.length);
          assert.ok(edits.every(([at]) => at >= linesStart(file)), "an edit it read went unseen");
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
          assert.ok(e instanceof HecateError && allowed.has(e.code), String(e));
          assert.ok(!e.message.includes("canary-"), e.message);
        }
      },
    ),
    { numRuns: 300 },
  );
  // Edits of record lines (most of the file) leave the listing opening: both branches ran.
  assert.ok(opened > 0, "no run opened");
});
