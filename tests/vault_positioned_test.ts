/**
 * The API-key reader reads the vault file by position: the header and seal lines, then only the
 * record lines in the key's scope (docs/FORMAT.md, "Reading with an API key"). These tests check
 * that it reads no more than that, and perform the attacks of someone who can write the home
 * (and cannot forge the MAC or the writer's signature) against that reader through the CLI:
 * altering, resizing or moving the lines it reads, and adding or cutting bytes at the end of the
 * file, each refused with exit 4 (`vault_integrity`) and the vault left as it was; and altering
 * a line outside the scope, which this reader does not see (as documented) while every writer
 * refuses to carry it forward.
 */

import assert from "node:assert/strict";
import { openApiKeySlot, parseApiKey } from "../src/vault/apikey.ts";
import { timingSafeEqual } from "../src/vault/encoding.ts";
import { type ApiKeySlot, parseVaultFile } from "../src/vault/format.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { passwordFile, runHecate, vaultWith, withHome } from "./support/access.ts";
import { timingSafeEqual as same, toBase64Url } from "../src/vault/encoding.ts";
import {
  fileLines,
  MemoryPositionedFile,
  readV4,
  rehashTable,
  TABLE_ENTRY,
  writeV4,
} from "./support/vault_lines.ts";

const PW = "positioned-test: a long enough master password";

Deno.test("an API-key reader reads by position only the header, the seal and the record lines in its scope", async () => {
  const vault = await UnlockedVault.create(PW, { iterations: 1_000 });
  const ids: string[] = [];
  for (let i = 0; i < 600; i++) {
    ids.push(
      vault.putRecord({ name: `p${i}`, engine: "sqlite", secrets: { password: "x".repeat(2000) } }),
    );
  }
  const scope = [ids[17]!, ids[250]!];
  const key = await vault.addApiKey({ name: "k", scope, created: new Date(), expires: null });
  const { bytes: file } = await vault.serialize();

  const positioned = new MemoryPositionedFile(file);
  const byPosition = await openScoped(positioned, key, { now: new Date() });
  const whole = await openScoped(file, key, { now: new Date() });
  assert.deepEqual(byPosition.records(), whole.records());
  assert.deepEqual(byPosition.records().map((r) => r.value.name).sort(), ["p17", "p250"]);

  // After the head (read in growing chunks until the seal line ends), one read of the record
  // table line (format 4), then exactly one read per record in scope, of that record's line and
  // its newline; never the index line.
  const headEnd = file.indexOf(0x0a, file.indexOf(0x0a) + 1) + 1;
  const lineReads = positioned.reads.filter(([at]) => at >= headEnd);
  const headReads = positioned.reads.filter(([at]) => at < headEnd);
  const { parts } = readV4(file);
  const tableLine = parts.table.length * TABLE_ENTRY + 1;
  assert.equal(lineReads.length, 3);
  assert.deepEqual(lineReads[0], [headEnd, tableLine]);
  const { records: lines } = fileLines(file);
  const starts = [headEnd + tableLine + parts.index.length + 1];
  for (const l of lines) starts.push(starts.at(-1)! + new TextEncoder().encode(l).length + 1);
  const table = parts.table.map((e) => ({ id: toBase64Url(e.id) }));
  for (const id of scope) {
    const i = table.findIndex((e) => e.id === id);
    assert.ok(i >= 0);
    assert.ok(lineReads.some(([at, n]) => at === starts[i] && n === starts[i + 1]! - starts[i]!));
  }
  const headBytes = headReads.reduce((n, [, len]) => n + len, 0);
  assert.ok(file.length > 1024 * 1024, "the fixture is larger than the first head read");
  assert.ok(headBytes < file.length, `head reads ${headBytes} of ${file.length} bytes`);
  assert.ok(positioned.bytesRead < file.length);
});

/** Index of the record line of the key's first scope entry, and the number of lines. */
async function scopedLine(file: Uint8Array<ArrayBuffer>, keyText: string): Promise<number> {
  const { body } = parseVaultFile(file);
  const key = parseApiKey(keyText);
  const slot = body.slots.find((s): s is ApiKeySlot =>
    s.kind === "apikey" && timingSafeEqual(s.id, key.slotId)
  )!;
  const payload = await openApiKeySlot(key.secret, slot, body.vaultId);
  const want = Uint8Array.fromBase64(payload.scope[0]!.record, { alphabet: "base64url" });
  return readV4(file).parts.table.findIndex((e) => same(e.id, want));
}

/** Replaces the character at `at` of a base64url text with another base64url character. */
function flipChar(line: string, at: number): string {
  return line.slice(0, at) + (line[at] === "A" ? "B" : "A") + line.slice(at + 1);
}

Deno.test("attacks on the lines an API-key reader reads by position are refused with exit 4, the vault left as it was", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["a", "b", "c"]);
    const dir = await Deno.makeTempDir({ prefix: "hecate-positioned-" });
    try {
      const pw = await passwordFile(dir);
      const withPassword = (args: string[]) =>
        runHecate(["--home", home, ...args], { env: { HECATE_PASSWORD_FILE: pw } });
      const made = await withPassword(["apikey", "create", "k", "--server", "b"]);
      assert.equal(made.code, 0, made.stderr);
      const key = made.stdout.trim();
      const byKey = () =>
        runHecate(["--home", home, "server", "list"], { env: { HECATE_API_KEY: key } });
      const good = await byKey();
      assert.equal(good.code, 0, good.stderr);
      assert.match(good.stdout, /^b\s/m);

      const path = `${home}/${VAULT_FILE}`;
      const genuine = await Deno.readFile(path);
      const i = await scopedLine(genuine, key);
      const { records } = fileLines(genuine);
      const rehashed = async (lines: string[]) => {
        const { header, seal, parts } = readV4(genuine);
        parts.records = lines;
        await rehashTable(parts);
        return await writeV4(header, seal, parts);
      };
      assert.ok(i >= 0 && i < records.length - 1, "the scoped line has a line after it");
      const raw = (text: string) => new TextEncoder().encode(text);
      const cat = (...parts: Uint8Array[]) => {
        const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) out.set(p, (at += p.length) - p.length);
        return out;
      };
      const head = genuine.subarray(0, genuine.length - raw(records.join("\n") + "\n").length);
      const asFile = (lines: string[]) => cat(head, raw(lines.join("\n") + "\n"));
      const dataAt = (l: string) => l.indexOf('"data":"') + 20;

      const attacks: [string, Uint8Array][] = [
        // Its content, same size, table and every unkeyed hash as they were.
        [
          "scoped line altered",
          asFile(records.map((l, k) => k === i ? flipChar(l, dataAt(l)) : l)),
        ],
        // The same, with the line's hash in the table recomputed (the signature then fails).
        [
          "scoped line altered, table rehashed",
          await rehashed(records.map((l, k) => k === i ? flipChar(l, dataAt(l)) : l)),
        ],
        // One byte moved across the newline that ends it: every size sum still matches the file.
        [
          "scoped line's end moved",
          asFile(
            records.map((l, k) =>
              k === i ? l.slice(0, -1) : k === i + 1 ? records[i]!.slice(-1) + l : l
            ),
          ),
        ],
        ["a byte appended", cat(genuine, raw("x"))],
        ["a newline appended", cat(genuine, raw("\n"))],
        ["the last byte cut", genuine.slice(0, -1)],
        ["the scoped line cut off", asFile(records.slice(0, i))],
      ];
      for (const [what, bad] of attacks) {
        await Deno.writeFile(path, bad);
        const r = await byKey();
        assert.equal(r.code, 4, `${what}: ${r.code} ${r.stderr}`);
        const errors = r.stderr.split("\n").filter((l) => l.startsWith("hecate: error:"));
        assert.equal(errors.length, 1, `${what}: one error line: ${r.stderr}`);
        assert.ok(!r.stderr.includes("secret-of-"), what);
        assert.deepEqual(await Deno.readFile(path), bad, `${what}: the file is left as it was`);
      }

      // A line outside the scope: this reader does not read it (docs/FORMAT.md), and still
      // gets exactly its own record; a writer refuses to carry the line into a new file.
      const other = records.findIndex((_, k) => k !== i);
      const outside = asFile(records.map((l, k) => k === other ? flipChar(l, dataAt(l)) : l));
      await Deno.writeFile(path, outside);
      const unseen = await byKey();
      assert.equal(unseen.code, 0, unseen.stderr);
      assert.equal(unseen.stdout, good.stdout);
      const write = await withPassword(["apikey", "create", "k2", "--server", "b"]);
      assert.equal(write.code, 4, write.stderr);
      assert.deepEqual(await Deno.readFile(path), outside);

      await Deno.writeFile(path, genuine);
      assert.equal((await byKey()).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
