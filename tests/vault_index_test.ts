/**
 * The profile index and lazily opened records (issue 13): a vault with an index opens without
 * decrypting its records, a record opened later must match its index entry, an older vault
 * without an index opens as before and gets one on its next write, a write re-seals only the
 * records it changed, and a batch import writes the vault once.
 *
 * The attacks run through the CLI against a temp home: an attacker with write access to the
 * vault file (no root key) edits the sealed index; a writer holding the root key (a faulty or
 * hostile one) seals an index that names the records wrongly.
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../src/vault/encoding.ts";
import { assembleFile, parseVaultFile, serializeBody } from "../src/vault/format.ts";
import {
  deriveKeys,
  macBody,
  openIndex,
  openMeta,
  sealIndex,
  sealMeta,
  signedBodyMessage,
  unwrapRootWithPassword,
} from "../src/vault/keyring.ts";
import { signEd25519 } from "../src/vault/asymmetric.ts";
import { sha256 } from "../src/vault/primitives.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import {
  assertCode,
  auditLines,
  passwordFile,
  PW,
  runHecate,
  vaultWith,
  withHome,
} from "./support/access.ts";

import { editLogical, fileLines, keyedIndex, readLogical } from "./support/vault_lines.ts";

const VECTOR_V2 = new URL("./vectors/v2-basic/", import.meta.url).pathname;
const VAULT_INTEGRITY_EXIT = 4;

/** Opens the sealed meta of a vault file with the password, as a root-key holder can. */
async function openWithPassword(file: Uint8Array<ArrayBuffer>, password: string) {
  const parsed = parseVaultFile(file);
  const slot = parsed.body.slots.find((s) => s.kind === "password")!;
  if (slot.kind !== "password") throw new Error("no password slot");
  const root = await unwrapRootWithPassword(
    slot.wrapped,
    password,
    slot.kdf.salt,
    slot.kdf.iterations,
    parsed.body.vaultId,
    slot.id,
  );
  const keys = await deriveKeys(root, parsed.body.vaultId);
  const meta = JSON.parse(
    fromUtf8(await openMeta(keys.meta, parsed.body.meta, parsed.body.vaultId)),
  );
  const line = parsed.body.indexLine;
  if (line) {
    // Format 4: the index is its own sealed line; shown here as the meta member it was.
    const { vaultId, generation } = parsed.body;
    meta.index = JSON.parse(fromUtf8(await openIndex(keys.meta, line.bytes, vaultId, generation)));
  }
  return { parsed, keys, meta };
}

/**
 * Writes the file a root-key holder would write with `edit` applied to the meta: the meta sealed
 * again, the MAC, checksum and signature all genuine. With `asVersion4`, the index's entries are
 * first keyed by record id and the header says version 4: the file a format-4 writer would write.
 */
async function resealMeta(
  file: Uint8Array<ArrayBuffer>,
  password: string,
  edit: (meta: Record<string, unknown>) => void,
  asVersion4 = false,
): Promise<Uint8Array<ArrayBuffer>> {
  const { parsed, keys, meta } = await openWithPassword(file, password);
  if (asVersion4) meta.index = keyedIndex(meta.index, parsed.body.records.map((r) => r.id));
  edit(meta);
  const { index, ...rest } = meta;
  const { vaultId, generation } = parsed.body;
  await parsed.body.region?.checkTable();
  const body = {
    ...parsed.body,
    meta: await sealMeta(keys.meta, utf8(JSON.stringify(rest)), vaultId),
    // Format 4: the index line sealed again for the header's generation.
    indexLine: {
      bytes: await sealIndex(keys.meta, utf8(JSON.stringify(index)), vaultId, generation),
    },
  };
  const serialized = await serializeBody(body, body.records.map((r) => r.nameTag!));
  const { lines } = serialized;
  const bodyBytes = asVersion4
    ? utf8(fromUtf8(serialized.bodyBytes).replace('"version":5,', '"version":4,'))
    : serialized.bodyBytes;
  const seed = fromBase64Url(meta.signer.seed);
  return assembleFile(bodyBytes, {
    sha256: await sha256(bodyBytes),
    mac: await macBody(keys.mac, bodyBytes),
    sig: await signEd25519(seed, signedBodyMessage(bodyBytes)),
  }, lines);
}

async function cli(home: string, args: string[]) {
  return await runHecate(["--home", home, ...args], {
    env: { HECATE_PASSWORD_FILE: await passwordFile(home), HECATE_LOCKOUT: "off" },
  });
}

Deno.test("a vault with an index opens without opening records; the index lists and finds profiles", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta", "gamma"]);
    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const { meta } = await openWithPassword(file, PW);
    const names = Object.values(meta.index.entries as Record<string, { name: string }>).map((e) =>
      e.name
    );
    assert.deepEqual(names.sort(), ["alpha", "beta", "gamma"]);
    const state = await UnlockedVault.unlock(file, PW);
    assert.equal(state.indexed, true);
    assert.equal(state.meta.index, undefined, "the index is kept out of the meta's view");
    const id = state.recordIdByName("beta")!;
    assert.equal((await state.record(id)).name, "beta");
    const vault = await openVault({ home, password: PW, lockout: "off" });
    assert.deepEqual(vault.profiles.list().map((p) => p.name), ["alpha", "beta", "gamma"]);
    assert.equal((await vault.profiles.show("gamma")).name, "gamma");
  });
});

Deno.test("attack: an edited index (no root key) is refused with vault_integrity", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta"]);
    const path = `${home}/${VAULT_FILE}`;
    const file = await Deno.readFile(path);
    // Flip bytes inside the sealed meta (the index is its largest member) and fix the checksum.
    const edited = await editLogical(file, (body) => {
      const meta = fromBase64Url(String(body.meta));
      meta[meta.length - 40]! ^= 1;
      body.meta = toBase64Url(meta);
    });
    await Deno.writeFile(path, edited);
    const before = await Deno.readFile(path);
    for (const args of [["server", "list"], ["server", "show", "alpha"]]) {
      const r = await cli(home, args);
      assert.equal(r.code, VAULT_INTEGRITY_EXIT, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n")[0]!.startsWith("hecate:"), true, r.stderr);
    }
    assert.deepEqual(await Deno.readFile(path), before, "the vault is left as it was");
  });
});

Deno.test("attack: a root-key writer's index that misnames a record never hands out the other record's secrets", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta"]);
    const path = `${home}/${VAULT_FILE}`;
    // Swap the two names in the index: asking for "alpha" would hand out beta's secrets.
    const forged = await resealMeta(await Deno.readFile(path), PW, (meta) => {
      const index = (meta.index as { entries: Record<string, { name: string }> }).entries;
      const [a, b] = Object.values(index);
      [a!.name, b!.name] = [b!.name, a!.name];
    });
    await Deno.writeFile(path, forged);
    // Format 4 finds a profile by its name tag, not the index: "env beta" gets beta's own record
    // or a refusal, never alpha's secret.
    const env = await cli(home, ["env", "beta"]);
    assert.ok(env.code === 0 || env.code === VAULT_INTEGRITY_EXIT, env.stderr);
    assert.doesNotMatch(env.stdout + env.stderr, /secret-of-alpha/);
    // Once the index is read (a listing), a record opened must match its entry.
    const state = await UnlockedVault.unlock(forged, PW);
    state.summaries();
    await assertCode(
      () => state.record(state.recordIdByName("alpha")!),
      "vault_integrity",
      "misnamed",
    );
    // An index that leaves a record out, or names one that is not there, fails when it is read.
    const indexRead = (file: Uint8Array<ArrayBuffer>) => async () =>
      (await UnlockedVault.unlock(file, PW)).summaries();
    const short = await resealMeta(await Deno.readFile(path), PW, (meta) => {
      (meta.index as { entries: unknown[] }).entries.shift();
    });
    await assertCode(indexRead(short), "vault_integrity", "missing entry");
    const extra = await resealMeta(await Deno.readFile(path), PW, (meta) => {
      (meta.index as { entries: unknown[] }).entries.push({ name: "ghost" });
    });
    await assertCode(indexRead(extra), "vault_integrity", "extra entry");
    const bad = await resealMeta(await Deno.readFile(path), PW, (meta) => {
      meta.index = ["not", "an", "object"];
    });
    await assertCode(indexRead(bad), "vault_integrity", "malformed");
    const noGeneration = await resealMeta(await Deno.readFile(path), PW, (meta) => {
      delete (meta.index as { generation?: number }).generation;
    });
    await assertCode(indexRead(noGeneration), "vault_integrity", "no gen");
  });
});

Deno.test("attack: a root-key writer's format-4 index under ids that are not the records' (in their order or not) is refused by server list, exit 4; one in another order is read by id", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta", "gamma"]);
    const path = `${home}/${VAULT_FILE}`;
    const original = await Deno.readFile(path);
    const listed = await cli(home, ["server", "list"]);
    assert.equal(listed.code, 0, listed.stderr);
    /** A format-4 file whose index entries are rebuilt from `[id, entry]` pairs edited by `edit`. */
    const forge = (edit: (pairs: [string, unknown][]) => [string, unknown][]) =>
      resealMeta(original, PW, (meta) => {
        const index = meta.index as { entries: Record<string, unknown> };
        index.entries = Object.fromEntries(edit(Object.entries(index.entries)));
      }, true);
    // Format 4 as written by a format-4 writer (the ids keyed, in record order) lists the same.
    await Deno.writeFile(path, await forge((pairs) => pairs));
    assert.equal(parseVaultFile(await Deno.readFile(path)).body.version, 4);
    const asV4 = await cli(home, ["server", "list"]);
    assert.equal(asV4.code, 0, asV4.stderr);
    assert.equal(asV4.stdout, listed.stdout);
    // The listing compares the index's ids with the table's in order first; another order is
    // looked up by id, so every record still gets its own entry.
    await Deno.writeFile(path, await forge((pairs) => pairs.reverse()));
    const reordered = await cli(home, ["server", "list"]);
    assert.equal(reordered.code, 0, reordered.stderr);
    assert.equal(reordered.stdout, listed.stdout);
    const state = await UnlockedVault.unlock(await Deno.readFile(path), PW);
    state.summaries();
    for (const name of ["alpha", "beta", "gamma"]) {
      // Opened against its entry: an entry handed to another record would not match.
      assert.equal((await state.record(state.recordIdByName(name)!)).name, name);
    }
    type Pairs = [string, unknown][];
    const renamed = (at: number, id: (old: string) => string) => (p: Pairs): Pairs =>
      p.map(([k, e], i): [string, unknown] => [i === at ? id(k) : k, e]);
    const valued = (at: number, v: (old: unknown) => unknown) => (p: Pairs): Pairs =>
      p.map(([k, e], i): [string, unknown] => [k, i === at ? v(e) : e]);
    const reversed = (edit: (p: Pairs) => Pairs) => (p: Pairs): Pairs => edit(p).reverse();
    const ghost = () => "AAAAAAAAAAAAAAAAAAAAAA";
    const forged: [string, (p: Pairs) => Pairs][] = [
      ["an id replaced, in order", renamed(1, ghost)],
      ["an id replaced, reordered", reversed(renamed(1, ghost))],
      ["an id's case changed", renamed(2, (id) => id.toLowerCase())],
      ["an id with a suffix", renamed(0, (id) => `${id}A`)],
      ["an id twice, one left out", (p) => [p[0]!, p[1]!, [p[0]![0], p[2]![1]]]],
      ["an entry that is null", valued(2, () => null)],
      ["an entry that is an array", valued(0, (e) => [e])],
      ["an entry that is a string, reordered", reversed(valued(0, () => "x"))],
    ];
    for (const [what, edit] of forged) {
      await Deno.writeFile(path, await forge(edit));
      const before = await Deno.readFile(path);
      const r = await cli(home, ["server", "list"]);
      assert.equal(r.code, VAULT_INTEGRITY_EXIT, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /profile index does not match the records/, what);
      assert.equal(r.stderr.trim().split("\n").length <= 2, true, r.stderr);
      assert.deepEqual(await Deno.readFile(path), before, `${what}: the vault is left as it was`);
    }
  });
});

Deno.test("attack: a root-key writer's format-5 index with an entry too few or too many, or one not an object, is refused by server list, exit 4; entries out of record order are refused when a record meets its entry", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta", "gamma"]);
    const path = `${home}/${VAULT_FILE}`;
    const original = await Deno.readFile(path);
    assert.equal(parseVaultFile(original).body.version, 5);
    const ids = parseVaultFile(original).body.records.map((r) => r.id);
    const listed = await cli(home, ["server", "list"]);
    assert.equal(listed.code, 0, listed.stderr);
    /** A format-5 file whose index entries (an array in record order) are edited by `edit`. */
    const forge = (edit: (entries: unknown[]) => unknown) =>
      resealMeta(original, PW, (meta) => {
        const index = meta.index as { entries: unknown[] };
        index.entries = edit(index.entries) as unknown[];
      });
    const forged: [string, (e: unknown[]) => unknown][] = [
      ["the last entry left out", (e) => e.slice(0, -1)],
      ["an entry added", (e) => [...e, { name: "ghost" }]],
      ["an entry that is null", (e) => e.with(1, null)],
      ["an entry that is an array", (e) => e.with(0, [e[0]])],
      ["an entry that is a string", (e) => e.with(2, "x")],
      [
        "entries keyed by record id, as format 4 kept them",
        (e) => keyedIndex({ generation: 0, entries: e }, ids).entries,
      ],
    ];
    for (const [what, edit] of forged) {
      await Deno.writeFile(path, await forge(edit));
      const before = await Deno.readFile(path);
      const r = await cli(home, ["server", "list"]);
      assert.equal(r.code, VAULT_INTEGRITY_EXIT, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /profile index (does not match the records|is malformed)/, what);
      assert.equal(r.stderr.trim().split("\n").length <= 2, true, r.stderr);
      assert.equal(r.stdout, "", what);
      assert.deepEqual(await Deno.readFile(path), before, `${what}: the vault is left as it was`);
    }
    // Entries in another order (as format 4's entries swapped between ids): each summary is
    // whole, so the listing shows what is stored, and a lookup by name finds the record by its
    // name tag; a record opened once the index is read meets another record's entry: refused.
    const reversed = await forge((e) => e.toReversed());
    await Deno.writeFile(path, reversed);
    const reordered = await cli(home, ["server", "list"]);
    assert.equal(reordered.code, 0, reordered.stderr);
    assert.equal(reordered.stdout, listed.stdout);
    const shown = await cli(home, ["server", "show", "alpha", "--json"]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(JSON.parse(shown.stdout).name, "alpha");
    const state = await UnlockedVault.unlock(reversed, PW);
    state.summaries();
    await assertCode(
      () => state.record(state.recordIdByName("alpha")!),
      "vault_integrity",
      "another record's entry",
    );
  });
});

Deno.test("an add to a format-5 vault appends to the index as read; a format-4 vault's add rewrites its index as format 5's array", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta", "gamma"]);
    const v5 = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const v4 = await resealMeta(v5, PW, () => {}, true);
    assert.equal(parseVaultFile(v4).body.version, 4);
    const delta = { name: "delta", engine: "sqlite", database: "/tmp/delta.db" };
    for (const [what, file] of [["format 5", v5], ["format 4", v4]] as const) {
      // A fresh state (index not parsed), one record added: the add path of `server add`.
      const state = await UnlockedVault.unlock(file, PW);
      const id = state.putRecord(delta);
      const { bytes } = await state.serialize();
      const written = parseVaultFile(bytes).body;
      assert.equal(written.version, 5, what);
      const { meta, keys } = await openWithPassword(bytes, PW);
      const index = meta.index as { generation: number; entries: { name: string }[] };
      // The text as written is the text a whole serialisation makes (no gap, no stray comma).
      const text = fromUtf8(
        await openIndex(keys.meta, written.indexLine!.bytes, written.vaultId, written.generation),
      );
      assert.equal(text, JSON.stringify(index), what);
      assert.equal(index.generation, written.generation, what);
      assert.ok(Array.isArray(index.entries), what);
      // Entry i is record i's: the old records in their order, the new one last.
      assert.deepEqual(
        written.records.map((r) => toBase64Url(r.id)).at(-1),
        id,
        what,
      );
      assert.deepEqual(index.entries.map((e) => e.name), ["alpha", "beta", "gamma", "delta"], what);
      const again = await UnlockedVault.unlock(bytes, PW);
      again.summaries();
      for (const name of ["alpha", "beta", "gamma", "delta"]) {
        assert.equal((await again.record(again.recordIdByName(name)!)).name, name, what);
      }
      const whole = await (await UnlockedVault.unlock(bytes, PW)).serialize();
      const rewritten = (await openWithPassword(whole.bytes, PW)).meta.index;
      assert.deepEqual(rewritten.entries, index.entries, what);
    }
  });
});

Deno.test("an older vault without an index opens (every record opened) and gets the index on its next write", async () => {
  const file = await Deno.readFile(`${VECTOR_V2}vault.hecate`);
  const password = await Deno.readTextFile(`${VECTOR_V2}password.txt`);
  const old = await UnlockedVault.unlock(file, password);
  assert.equal(old.indexed, false);
  const values = await old.records();
  const { bytes } = await old.serialize();
  const next = await UnlockedVault.unlock(bytes, password);
  assert.equal(next.indexed, true);
  assert.deepEqual(
    next.summaries().map((s) => s.summary.name),
    values.map((v) => v.value.name),
  );
  assert.deepEqual(await next.records(), values);
  // The upgrade (to format 3) re-sealed nothing: every record keeps its bytes.
  const sealed = (f: Uint8Array<ArrayBuffer>) =>
    parseVaultFile(f).body.records.map((r) => [r.id, r.key, r.data].map(toBase64Url).join());
  assert.deepEqual(sealed(bytes), sealed(file));
});

Deno.test("attack: an index line for an older generation, sealed by a root-key writer, is refused", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta"]);
    const path = `${home}/${VAULT_FILE}`;
    // What an older build's write looks like: the records changed (here: renamed in the index
    // only, standing for a rename it made), the index member kept as it was, one generation back.
    const stale = await resealMeta(await Deno.readFile(path), PW, (meta) => {
      const index = meta.index as { generation: number; entries: Record<string, { name: string }> };
      index.generation -= 1;
      for (const e of Object.values(index.entries)) e.name = `stale-${e.name}`;
    });
    await Deno.writeFile(path, stale);
    // Format 4 keeps the index in its own line, rewritten on every write: one that names another
    // generation is not a leftover but an altered file.
    const state = await UnlockedVault.unlock(stale, PW);
    await assertCode(
      () => new Promise((resolve) => resolve(state.summaries())),
      "vault_integrity",
      "stale index",
    );
    const r = await cli(home, ["server", "list"]);
    assert.equal(r.code, VAULT_INTEGRITY_EXIT, r.stderr);
    assert.doesNotMatch(r.stdout, /stale-/);
  });
});

Deno.test("a write re-seals only the record it changed", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta", "gamma"]);
    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const state = await UnlockedVault.unlock(file, PW);
    const id = state.recordIdByName("beta")!;
    state.putRecord({ ...(await state.record(id)), host: "moved" }, id);
    const { bytes } = await state.serialize();
    const before = parseVaultFile(file).body.records;
    const after = parseVaultFile(bytes).body.records;
    assert.equal(after.length, before.length);
    for (const [i, r] of after.entries()) {
      const same = toBase64Url(r.data) === toBase64Url(before[i]!.data) &&
        toBase64Url(r.key) === toBase64Url(before[i]!.key);
      assert.equal(same, toBase64Url(r.id) !== id, `record ${i}`);
    }
    const back = await UnlockedVault.unlock(bytes, PW);
    assert.equal((await back.record(id)).host, "moved");
    assert.equal(back.summaries().find((s) => s.id === id)!.summary.name, "beta");
  });
});

Deno.test("import pgpass writes the vault once: generation plus one, one vault.write record", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["existing"]);
    const gen = parseVaultFile(await Deno.readFile(`${home}/${VAULT_FILE}`)).body.generation;
    const writes = (await auditLines(home)).filter((l) => l.event === "vault.write").length;
    const lines = Array.from({ length: 60 }, (_, i) => `db${i}.example:5432:app:u${i}:pw-${i}`);
    lines.push("bad line");
    await Deno.writeTextFile(`${home}/pgpass`, lines.join("\n") + "\n", { mode: 0o600 });
    const r = await cli(home, ["import", "pgpass", `${home}/pgpass`]);
    assert.equal(r.code, 0, r.stderr);
    const after = parseVaultFile(await Deno.readFile(`${home}/${VAULT_FILE}`)).body.generation;
    assert.equal(after, gen + 1);
    const audit = await auditLines(home);
    assert.equal(audit.filter((l) => l.event === "vault.write").length, writes + 1);
    assert.equal(audit.filter((l) => l.event === "profile.add" && l.outcome === "ok").length, 61);
    assert.doesNotMatch(JSON.stringify(audit), /pw-\d/);
    const vault = await openVault({ home, password: PW, lockout: "off" });
    assert.equal(vault.profiles.list().length, 61);
    // Running it again adds nothing and writes nothing.
    const again = await cli(home, ["import", "pgpass", `${home}/pgpass`]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      parseVaultFile(await Deno.readFile(`${home}/${VAULT_FILE}`)).body.generation,
      after,
    );
  });
});

Deno.test("addMany: refused inputs are reported and audited, the rest written in one generation", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["taken"]);
    const gen = vault.generation;
    const pw = { password: { value: "batch-secret" } };
    const results = await vault.profiles.addMany([
      { name: "one", engine: "postgres", host: "h1", user: "u", secrets: pw },
      { name: "taken", engine: "postgres", host: "h2", user: "u", secrets: pw },
      { name: "bad name!", engine: "postgres", host: "h3", user: "u", secrets: pw },
      { name: "one", engine: "postgres", host: "h4", user: "u", secrets: pw },
      { name: "two", engine: "postgres", host: "h5", user: "u", secrets: pw },
    ]);
    assert.deepEqual(results.map((r) => r.error?.code), [
      undefined,
      "already_exists",
      "invalid_profile",
      "already_exists",
      undefined,
    ]);
    assert.equal(vault.generation, gen + 1);
    assert.deepEqual(vault.profiles.list().map((p) => p.name), ["one", "taken", "two"]);
    const adds = (await auditLines(home)).filter((l) => l.event === "profile.add").slice(-5);
    assert.deepEqual(adds.map((l) => l.outcome), ["ok", "fail", "fail", "fail", "ok"]);
  });
});

Deno.test("a record's key and data are decoded when read: a bad spelling is still damaged, and an unchanged record is written back as read", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta"]);
    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    // The record's line re-hashed into the table too (the parser checks no key; the MAC would).
    const bad = parseVaultFile(
      await editLogical(file, (body) => {
        const records = body.records as { data: string }[];
        records[1]!.data = records[1]!.data + "*";
      }),
    );
    assert.equal(
      toBase64Url(bad.body.records[0]!.data),
      readLogical(file).body.records.map((r) => (r as { data: string }).data)[0],
    );
    await assertCode(async () => await bad.body.records[1]!.data, "vault_integrity", "bad data");
    // Written back unchanged: the same record lines, byte for byte.
    const state = await UnlockedVault.unlock(file, PW);
    const again = (await state.serialize()).bytes;
    assert.deepEqual(fileLines(again).records, fileLines(file).records);
  });
});

Deno.test("reload of the bytes just verified skips no check that matters: states are independent, a changed buffer is verified again", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta"]);
    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const state = await UnlockedVault.unlock(file, PW);
    const a = await state.reload(file);
    const b = await state.reload(await Deno.readFile(`${home}/${VAULT_FILE}`));
    a.putRecord(
      { ...(await a.record(a.recordIdByName("alpha")!)), name: "renamed" },
      a.recordIdByName("alpha"),
    );
    await a.addApiKey({
      name: "k",
      scope: [a.recordIdByName("beta")!],
      created: new Date(),
      expires: null,
    });
    assert.deepEqual(b.summaries().map((s) => s.summary.name), ["alpha", "beta"]);
    assert.deepEqual(state.summaries().map((s) => s.summary.name), ["alpha", "beta"]);
    assert.equal(b.apiKeys().length, 0);
    assert.equal((await b.serialize()).bytes.length > 0, true);
    // The caller's buffer changed after the unlock: the same array object, other bytes.
    const body = file.indexOf(0x0a);
    file[body - 30] = file[body - 30] === 0x41 ? 0x42 : 0x41;
    await assertCode(() => state.reload(file), "vault_integrity", "edited buffer");
  });
});
