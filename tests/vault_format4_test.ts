/**
 * Vault format 4 (docs/FORMAT.md, "File layout", "Record table", "Index line"): the binary record
 * table with keyed name tags and the sealed index line, each authenticated through its SHA-256 in
 * the small header. The attacks run through the CLI against a temp home, as an attacker who can
 * write the vault file but holds no key: two table entries swapped, a name tag changed, the index
 * line cut short, the index line put back from an older generation; each with the header left as
 * it was and with every unkeyed value recomputed, each refused with exit 4 (`vault_integrity`), no
 * secret printed and the vault left as it was. A root-key writer (a faulty or hostile build) that
 * gives a record another record's name tag, or tags a stored secret as the profile of its name, is
 * refused when a lookup by name opens it; a secret and a profile of one name have different tags
 * and each is found by its kind. Then what the tags reveal (equal names across generations of one
 * vault, nothing across vaults, no name in clear) and the upgrade of a version-3 vault on its first
 * write.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { fromBase64Url, toBase64Url } from "../src/vault/encoding.ts";
import {
  assembleFile,
  FORMAT_VERSION,
  parseVaultFile,
  serializeBody,
} from "../src/vault/format.ts";
import {
  deriveKeys,
  macBody,
  openMeta,
  signedBodyMessage,
  unwrapRootWithPassword,
} from "../src/vault/keyring.ts";
import { signEd25519 } from "../src/vault/asymmetric.ts";
import { sha256 } from "../src/vault/primitives.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { NameTagger } from "../src/vault/name_tag.ts";
import { openVault } from "../src/api/open.ts";
import { passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import {
  fileLines,
  MemoryPositionedFile,
  readV4,
  type V4Parts,
  writeV4,
} from "./support/vault_lines.ts";

const VAULT_INTEGRITY_EXIT = 4;
const VECTOR_V3 = new URL("./vectors/v3-basic/", import.meta.url).pathname;

/** The file with its own header and seal lines, and another file's lines after the seal. */
function withHeadOf(genuine: Uint8Array, forged: Uint8Array): Uint8Array<ArrayBuffer> {
  const end = (f: Uint8Array) => f.indexOf(0x0a, f.indexOf(0x0a) + 1) + 1;
  const head = genuine.subarray(0, end(genuine));
  const tail = forged.subarray(end(forged));
  const out = new Uint8Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

/** Edits the parts of a format-4 file; every unkeyed value recomputed, MAC and signature kept. */
async function edited(
  file: Uint8Array,
  edit: (parts: V4Parts) => void,
): Promise<Uint8Array<ArrayBuffer>> {
  const { header, seal, parts } = readV4(file);
  edit(parts);
  return await writeV4(header, seal, parts);
}

/** A home with three profiles, an API key for "alpha", and the CLI runners of both readers. */
async function setup(home: string) {
  const vault = await vaultWith(home, ["alpha", "beta", "gamma"]);
  const apiKey = await vault.apiKeys.create({ name: "k", profiles: ["alpha"], expires: null });
  const pw = await passwordFile(home);
  const env = { HECATE_PASSWORD_FILE: pw, HECATE_LOCKOUT: "off" };
  return {
    vault,
    apiKey,
    withPassword: (args: string[]) => runHecate(["--home", home, ...args], { env }),
    withKey: (args: string[]) =>
      runHecate(["--home", home, ...args], {
        env: { HECATE_API_KEY: apiKey, HECATE_LOCKOUT: "off" },
      }),
  };
}

Deno.test("attacks on the record table and the index line are refused with exit 4 by every reader, the vault left as it was", async () => {
  await withHome(async (home) => {
    const s = await setup(home);
    const path = `${home}/${VAULT_FILE}`;
    const older = await Deno.readFile(path);
    // A change that keeps every summary (and so the index line's size): a new secret of the
    // same length, so the older index line fits the current layout byte for byte.
    await s.vault.profiles.edit("beta", { secrets: { password: { value: "SECRET-of-beta" } } });
    const genuine = await Deno.readFile(path);
    assert.equal(parseVaultFile(genuine).body.version, FORMAT_VERSION);
    const { parts } = readV4(genuine);
    const ids = parts.table.map((e) => toBase64Url(e.id));
    const names = (await UnlockedVault.unlock(genuine, PW)).summaries();
    const at = (name: string) => ids.indexOf(names.find((n) => n.summary.name === name)!.id);
    const [a, b] = [at("alpha"), at("beta")];
    const olderIndex = readV4(older).parts.index;
    assert.equal(olderIndex.length, parts.index.length, "the older index line has the same size");
    assert.notDeepEqual(olderIndex, parts.index);

    const swapEntries = (p: V4Parts) => {
      [p.table[a], p.table[b]] = [p.table[b]!, p.table[a]!];
    };
    // beta's tag on alpha's entry: a lookup of "beta" by tag would find alpha's record.
    const betaTagOnAlpha = (p: V4Parts) => {
      p.table[a]!.tag = p.table[b]!.tag.slice();
    };
    const cutIndex = (p: V4Parts) => {
      p.index = p.index.slice(0, -16);
    };
    const olderIndexLine = (p: V4Parts) => {
      p.index = olderIndex.slice();
    };
    const attacks: [string, Uint8Array][] = [];
    for (
      const [what, edit] of [
        ["two table entries swapped", swapEntries],
        ["a name tag changed", betaTagOnAlpha],
        ["the index line cut short", cutIndex],
        ["the index line from an older generation", olderIndexLine],
      ] as const
    ) {
      const recomputed = await edited(genuine, edit);
      attacks.push([`${what}, unkeyed values recomputed`, recomputed]);
      // The header and seal as they were (the table's or index line's hash, or the sizes, no
      // longer match).
      attacks.push([`${what}, header untouched`, withHeadOf(genuine, recomputed)]);
    }
    for (const [what, bad] of attacks) {
      await Deno.writeFile(path, bad);
      for (
        const [reader, run] of [
          ["server list (password)", () => s.withPassword(["server", "list"])],
          ["env beta (password)", () => s.withPassword(["env", "beta"])],
          [
            "server edit (password)",
            () => s.withPassword(["server", "edit", "gamma", "--host", "x"]),
          ],
          ["server list (API key)", () => s.withKey(["server", "list"])],
        ] as const
      ) {
        // The API-key reader never reads the index line: one of the same size swapped in under an
        // untouched header is not its to notice (docs/FORMAT.md); a cut one moves the sizes.
        if (reader.includes("API key") && what.includes("older") && what.includes("untouched")) {
          const r = await run();
          assert.equal(r.code, 0, `${what}, ${reader}: ${r.stderr}`);
          continue;
        }
        const r = await run();
        assert.equal(r.code, VAULT_INTEGRITY_EXIT, `${what}, ${reader}: ${r.code} ${r.stderr}`);
        assert.match(r.stderr.split("\n")[0]!, /^hecate: error: Vault /, `${what}: ${r.stderr}`);
        assert.doesNotMatch(r.stdout + r.stderr, /secret-of-|SECRET-of-/, `${what}, ${reader}`);
      }
      assert.deepEqual(await Deno.readFile(path), bad, `${what}: the vault is left as it was`);
    }
    // The genuine file back: every reader works again.
    await Deno.writeFile(path, genuine);
    assert.equal((await s.withPassword(["server", "list"])).code, 0);
    assert.equal((await s.withKey(["server", "list"])).code, 0);
    // doctor names the damage without any key.
    await Deno.writeFile(path, withHeadOf(genuine, await edited(genuine, betaTagOnAlpha)));
    const d = await runHecate(["doctor", "--json"], { env: { HECATE_HOME: home } });
    assert.match(d.stdout, /record table does not match the header/);
  });
});

/** Unwraps the root key and derives the keys, as a root-key holder (a writer) can. */
async function rootKeys(file: Uint8Array<ArrayBuffer>) {
  const parsed = parseVaultFile(file);
  const slot = parsed.body.slots.find((x) => x.kind === "password")!;
  if (slot.kind !== "password") throw new Error("no password slot");
  const root = await unwrapRootWithPassword(
    slot.wrapped,
    PW,
    slot.kdf.salt,
    slot.kdf.iterations,
    parsed.body.vaultId,
    slot.id,
  );
  const keys = await deriveKeys(root, parsed.body.vaultId);
  const meta = JSON.parse(
    new TextDecoder().decode(await openMeta(keys.meta, parsed.body.meta, parsed.body.vaultId)),
  );
  return { parsed, keys, seed: fromBase64Url(meta.signer.seed) };
}

Deno.test("attack: a root-key writer that gives a record another record's name tag is refused when a lookup opens it", async () => {
  await withHome(async (home) => {
    const s = await setup(home);
    const path = `${home}/${VAULT_FILE}`;
    const { parsed, keys, seed } = await rootKeys(await Deno.readFile(path));
    const { body } = parsed;
    const tags = body.records.map((r) => r.nameTag!.slice());
    // The first two tags exchanged, everything else genuine: MAC, signature and all hashes good.
    [tags[0], tags[1]] = [tags[1]!, tags[0]!];
    const { bodyBytes, lines } = await serializeBody(body, tags);
    const forged = assembleFile(bodyBytes, {
      sha256: await sha256(bodyBytes),
      mac: await macBody(keys.mac, bodyBytes),
      sig: await signEd25519(seed, signedBodyMessage(bodyBytes)),
    }, lines);
    await Deno.writeFile(path, forged);
    const state = await UnlockedVault.unlock(forged, PW);
    const [first, second] = state.summaries().map((x) => x.summary.name as string);
    // A fresh reader (index not read) looks "first" up by tag and lands on the second record.
    for (const name of [first!, second!]) {
      const r = await s.withPassword(["env", name]);
      assert.equal(r.code, VAULT_INTEGRITY_EXIT, `env ${name}: ${r.stderr}`);
      assert.match(r.stderr, /does not match its name tag/);
      assert.doesNotMatch(r.stdout + r.stderr, /secret-of-/);
    }
    assert.deepEqual(await Deno.readFile(path), forged, "the vault is left as it was");
    // The third record, whose tag is its own, still reads.
    const third = await s.withPassword(["server", "show", "gamma"]);
    assert.equal(third.code, 0, third.stderr);
  });
});

/** A home whose vault holds a stored secret and a profile both named "dup", in `order`. */
async function sameNames(home: string, order: "secret-first" | "profile-first") {
  const vault = await vaultWith(home, order === "profile-first" ? ["dup"] : []);
  await vault.secrets.set("dup", "stored-canary-7c1e");
  if (order === "secret-first") {
    await Deno.writeFile(`${home}/dup.db`, new Uint8Array(), { mode: 0o600 });
    await vault.profiles.add({
      name: "dup",
      engine: "sqlite",
      database: `${home}/dup.db`,
      secrets: { password: { value: "secret-of-dup" } },
    });
  }
  await vault.close();
}

Deno.test("a secret and a profile of the same name have different tags; a fresh lookup by tag finds each by its kind", async () => {
  for (const order of ["secret-first", "profile-first"] as const) {
    await withHome(async (home) => {
      await sameNames(home, order);
      const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
      const tags = readV4(file).parts.table.map((e) => toBase64Url(e.tag));
      assert.equal(tags.length, 2);
      assert.notEqual(tags[0], tags[1], `${order}: the kind is in the tagged bytes`);
      // A fresh unlock: no index read, each name looked up by its tag alone.
      const v = await openVault({ home, password: PW, lockout: "off" });
      assert.equal(await v.secrets.get("dup"), "stored-canary-7c1e", order);
      assert.equal((await v.profiles.show("dup")).engine, "sqlite", order);
      await v.close();
      const pw = await passwordFile(home);
      const env = { HECATE_PASSWORD_FILE: pw, HECATE_LOCKOUT: "off" };
      const got = await runHecate(["--home", home, "secret", "get", "dup"], { env });
      assert.equal(got.code, 0, got.stderr);
      assert.equal(got.stdout.trim(), "stored-canary-7c1e");
      const show = await runHecate(["--home", home, "server", "show", "dup"], { env });
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /sqlite/);
    });
  }
});

Deno.test("attack: a root-key writer that tags a secret as a profile of its name is refused when the profile lookup opens it", async () => {
  await withHome(async (home) => {
    await sameNames(home, "secret-first");
    const path = `${home}/${VAULT_FILE}`;
    const { parsed, keys, seed } = await rootKeys(await Deno.readFile(path));
    const { body } = parsed;
    assert.equal(body.records[0]!.kind, "secret", "the secret's entry comes first");
    // The secret's entry gets the tag of the profile named "dup" (the kind left out of the tagged
    // bytes); every hash, the MAC and the signature are genuine.
    const tags = body.records.map((r) => r.nameTag!.slice());
    tags[0] = new NameTagger(keys.tag).tag("dup", "profile");
    assert.deepEqual(tags[0], tags[1], "the forged tag is the profile's own");
    const { bodyBytes, lines } = await serializeBody(body, tags);
    const forged = assembleFile(bodyBytes, {
      sha256: await sha256(bodyBytes),
      mac: await macBody(keys.mac, bodyBytes),
      sig: await signEd25519(seed, signedBodyMessage(bodyBytes)),
    }, lines);
    await Deno.writeFile(path, forged);
    const pw = await passwordFile(home);
    const env = { HECATE_PASSWORD_FILE: pw, HECATE_LOCKOUT: "off" };
    // A fresh reader looks the profile up by tag and lands on the secret's entry first.
    const r = await runHecate(["--home", home, "env", "dup"], { env });
    assert.equal(r.code, VAULT_INTEGRITY_EXIT, `env dup: ${r.stderr}`);
    assert.match(r.stderr, /does not match its name tag/);
    assert.doesNotMatch(r.stdout + r.stderr, /stored-canary|secret-of-dup/);
    assert.deepEqual(await Deno.readFile(path), forged, "the vault is left as it was");
  });
});

Deno.test("name tags: equal for a name across generations of one vault, different across vaults and after rotate; no name in clear", async () => {
  await withHome(async (home) => {
    const s = await setup(home);
    const path = `${home}/${VAULT_FILE}`;
    const tagsOf = (f: Uint8Array) => readV4(f).parts.table.map((e) => toBase64Url(e.tag));
    const before = await Deno.readFile(path);
    await s.vault.profiles.edit("beta", { host: "elsewhere" });
    const after = await Deno.readFile(path);
    assert.deepEqual(tagsOf(after), tagsOf(before), "unchanged names keep their tags");
    assert.equal(new Set(tagsOf(after)).size, 3, "different names, different tags");
    // A rename changes only that record's tag; renaming back restores it.
    await s.vault.profiles.edit("beta", { rename: "beta2" });
    const renamed = tagsOf(await Deno.readFile(path));
    assert.equal(renamed.filter((t, i) => t !== tagsOf(after)[i]).length, 1);
    await s.vault.profiles.edit("beta2", { rename: "beta" });
    assert.deepEqual(tagsOf(await Deno.readFile(path)), tagsOf(after));
    // No profile name anywhere in the file's bytes.
    const text = new TextDecoder().decode(await Deno.readFile(path));
    for (const name of ["alpha", "beta", "gamma"]) assert.ok(!text.includes(name), name);
    // Another vault with the same names: other tags (another root key).
    await withHome(async (other) => {
      await vaultWith(other, ["alpha", "beta", "gamma"]);
      const theirs = new Set(tagsOf(await Deno.readFile(`${other}/${VAULT_FILE}`)));
      for (const t of tagsOf(after)) assert.ok(!theirs.has(t));
    });
    // rotate: a new root key, so new tags for every name.
    await s.vault.keys.rotate(PW);
    const rotated = tagsOf(await Deno.readFile(path));
    for (const t of rotated) assert.ok(!tagsOf(after).includes(t));
  });
});

Deno.test("a version-3 vault is read as it is and written as version 5 (format 4's layout) on its first write: record lines kept, tags and index line added, API key still reads", async () => {
  const file = await Deno.readFile(`${VECTOR_V3}vault.hecate`);
  const password = (await Deno.readTextFile(`${VECTOR_V3}password.txt`)).trim();
  const apiKey = (await Deno.readTextFile(`${VECTOR_V3}apikey.txt`)).trim();
  assert.equal(parseVaultFile(file).body.version, 3);
  const old = await UnlockedVault.unlock(file, password);
  const values = await old.records();
  const { bytes } = await old.serialize();
  const v4 = parseVaultFile(bytes).body;
  assert.equal(v4.version, 5);
  assert.equal(v4.generation, parseVaultFile(file).body.generation + 1);
  // Every record line carried over byte for byte (nothing re-encrypted).
  assert.deepEqual(fileLines(bytes).records, fileLines(file).records);
  const { header, parts } = readV4(bytes);
  assert.equal(parts.table.length, header.records);
  assert.equal(parts.table.length, values.length);
  const next = await UnlockedVault.unlock(bytes, password);
  assert.deepEqual(await next.records(), values);
  for (const { value } of values) {
    const id = next.recordIdByName(value.name as string)!;
    assert.deepEqual(await next.record(id), value);
  }
  // The tags are the keyed tags of the names: a lookup finds each record without the index.
  const fresh = await UnlockedVault.unlock(bytes, password);
  for (const { id, value } of values) {
    assert.equal(fresh.recordIdByName(value.name as string), id);
  }
  assert.equal(fresh.recordIdByName("no-such-profile"), undefined);
  const scoped = await openScoped(bytes, apiKey, { now: new Date("2026-12-01T00:00:00Z") });
  assert.deepEqual(scoped.records().map((r) => r.value.name), ["reporting"]);
  // The index moved out of the meta into its own line.
  assert.equal(next.meta.index, undefined);
  assert.ok(parts.index.length > 0);
});

Deno.test("fuzz: random edits of the record table and the index line never open into other contents, by password or API key", async () => {
  const canary = "format4-fuzz-canary-91e";
  const vault = await UnlockedVault.create(PW, { iterations: 1_000 });
  const id = vault.putRecord({ name: "db", engine: "sqlite", secrets: { password: canary } });
  vault.putRecord({ name: "other", engine: "sqlite" });
  vault.putRecord({ name: "third", engine: "sqlite" });
  const key = await vault.addApiKey({ name: "k", scope: [id], created: new Date(), expires: null });
  const file = (await vault.serialize()).bytes;
  const genuine = await (await UnlockedVault.unlock(file, PW)).records();
  const genuineScoped = (await openScoped(file, key, { now: new Date() })).records();
  const allowed = new Set(["vault_integrity", "unsupported_version"]);
  const outcome = async (run: () => Promise<unknown>) => {
    try {
      await run();
      return "ok";
    } catch (e) {
      assert.ok(e instanceof HecateError, `not a HecateError: ${e}`);
      assert.ok(allowed.has(e.code), `unexpected code ${e.code}: ${e.message}`);
      assert.ok(!e.message.includes(canary) && !(e.hint ?? "").includes(canary));
      return e.code;
    }
  };
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.tuple(fc.constant("swap entries"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("copy entry"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("drop entry"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("flip tag"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("flip size"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("cut index"), fc.nat(), fc.nat()),
          fc.tuple(fc.constant("flip index"), fc.nat(), fc.nat()),
        ),
        { minLength: 1, maxLength: 3 },
      ),
      fc.boolean(),
      async (ops, recompute) => {
        const forged = await edited(file, (p) => {
          const n = () => p.table.length;
          for (const [op, a, b] of ops) {
            const i = n() ? a % n() : 0;
            const j = n() ? b % n() : 0;
            const e = p.table[i];
            if (op === "swap entries" && e) [p.table[i], p.table[j]] = [p.table[j]!, e];
            if (op === "copy entry" && e) p.table.splice(j, 0, { ...e });
            if (op === "drop entry" && e) p.table.splice(i, 1);
            if (op === "flip tag" && e) {
              e.tag = e.tag.slice();
              e.tag[b % 16] = e.tag[b % 16]! ^ (1 << (a % 8));
            }
            if (op === "flip size" && e) e.size = e.size ^ (1 << (b % 4));
            if (op === "cut index") p.index = p.index.slice(0, a % p.index.length);
            if (op === "flip index") {
              p.index = p.index.slice();
              p.index[a % p.index.length] = p.index[a % p.index.length]! ^ (1 << (b % 8));
            }
          }
        });
        const bad = recompute ? forged : withHeadOf(file, forged);
        if (bad.length === file.length && bad.every((x, k) => x === file[k])) return;
        let opened: unknown;
        const byPassword = await outcome(async () => {
          const v = await UnlockedVault.unlock(bad, PW);
          v.summaries();
          opened = await v.records();
        });
        if (byPassword === "ok") assert.deepEqual(opened, genuine);
        for (const source of [bad, new MemoryPositionedFile(bad)]) {
          let records: unknown;
          const byKey = await outcome(async () => {
            records = (await openScoped(source, key, { now: new Date() })).records();
          });
          if (byKey === "ok") assert.deepEqual(records, genuineScoped);
        }
      },
    ),
    { numRuns: 250 },
  );
});
