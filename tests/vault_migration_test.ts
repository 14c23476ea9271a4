/**
 * Format 3 migration and the attacks its layout invites, through the real CLI against a temp home:
 * a format-2 vault (the committed vector) is read as it is, written as format 5 on its first
 * write, keeps its API key and its rollback gate, and its backups verify and restore; record lines
 * moved, replaced or damaged are refused with the vault left as it was.
 */

import assert from "node:assert/strict";
import { parseVaultFile } from "../src/vault/format.ts";
import { fromBase64Url, toBase64Url } from "../src/vault/encoding.ts";
import { signEd25519 } from "../src/vault/asymmetric.ts";
import {
  deriveKeys,
  macBody,
  openIndex,
  openMeta,
  sealMeta,
  signedBodyMessage,
  unwrapRootWithPassword,
} from "../src/vault/keyring.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { assemble, fileLines, keyedIndex, readLogical } from "./support/vault_lines.ts";

const VAULT_INTEGRITY_EXIT = 4;
const ROLLED_BACK_EXIT = 25;

/**
 * What a format-2 writer would have written for the same state: one body line with the records
 * inline (the index's generation is the body's, as a format-2 writer kept it), checksum, MAC and
 * signature made with the vault's own keys. (The committed v2 vectors were made without an audit
 * trail, which the CLI requires, so the CLI test makes its own.)
 */
async function asFormat2(file: Uint8Array<ArrayBuffer>, password: string) {
  const { body: parsed } = parseVaultFile(file);
  const slot = parsed.slots.find((s) => s.kind === "password")!;
  if (slot.kind !== "password") throw new Error("unreachable");
  const root = await unwrapRootWithPassword(
    slot.wrapped,
    password,
    slot.kdf.salt,
    slot.kdf.iterations,
    parsed.vaultId,
    slot.id,
  );
  const keys = await deriveKeys(root, parsed.vaultId);
  const meta = JSON.parse(
    new TextDecoder().decode(await openMeta(keys.meta, parsed.meta, parsed.vaultId)),
  );
  const { body } = readLogical(file);
  body.version = 2;
  // Format 4 keeps the index in its own line; a format-2 writer kept it in the meta.
  const index = await openIndex(
    keys.meta,
    parsed.indexLine!.bytes,
    parsed.vaultId,
    parsed.generation,
  );
  // Format 5 lists the entries in record order; a format-2 writer keyed them by record id.
  meta.index = keyedIndex(
    JSON.parse(new TextDecoder().decode(index)),
    parsed.records.map((r) => r.id),
  );
  body.meta = toBase64Url(
    await sealMeta(keys.meta, new TextEncoder().encode(JSON.stringify(meta)), parsed.vaultId),
  );
  delete body.name_tags;
  delete body.index_line;
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  return await assemble(bytes, {
    mac: toBase64Url(await macBody(keys.mac, bytes)),
    sig: toBase64Url(
      await signEd25519(fromBase64Url(meta.signer.seed), signedBodyMessage(bytes)),
    ),
  });
}

/** A home whose vault is format 2 (two profiles, an API key for one), its password in a file. */
async function v2Home(home: string) {
  const vault = await vaultWith(home, ["reporting", "cache"]);
  const apiKey = await vault.apiKeys.create({ name: "k", profiles: ["reporting"], expires: null });
  const file = await asFormat2(await Deno.readFile(`${home}/vault.hecate`), PW);
  // In place of the current file, as the same generation: what a format-2 build left here.
  await Deno.writeFile(`${home}/vault.hecate`, file, { mode: 0o600 });
  const pwFile = `${home}.pw`;
  await Deno.writeTextFile(pwFile, PW, { mode: 0o600 });
  return {
    file,
    pwFile,
    apiKey,
    pw: { HECATE_HOME: home, HECATE_PASSWORD_FILE: pwFile, HECATE_LOCKOUT: "off" },
    key: { HECATE_HOME: home, HECATE_API_KEY: apiKey, HECATE_LOCKOUT: "off" },
  };
}

/** The stored bytes of each record (id, wrapped key, ciphertext), in file order. */
function sealedRecords(file: Uint8Array<ArrayBuffer>): string[] {
  return parseVaultFile(file).body.records.map((r) =>
    [r.id, r.key, r.data].map(toBase64Url).join()
  );
}

Deno.test("a format-2 vault: read as it is, written as format 5 on its first write (records kept, generation +1), its API key still works and the rollback gate still holds", async () => {
  await withHome(async (home) => {
    const v = await v2Home(home);
    try {
      const before = parseVaultFile(v.file).body;
      assert.equal(before.version, 2);
      // Reading never rewrites: both readers see the format-2 file as it is.
      const list = await runHecate(["server", "list"], { env: v.pw });
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /reporting/);
      const byKey = await runHecate(["server", "list"], { env: v.key });
      assert.equal(byKey.code, 0, byKey.stderr);
      assert.deepEqual(await Deno.readFile(`${home}/vault.hecate`), v.file);

      // A backup of the format-2 vault, made before the upgrade.
      const made = await runHecate(["backup", "create"], { env: v.pw });
      assert.equal(made.code, 0, made.stderr);
      const bundle = /(\S+\.hecate-backup)/.exec(made.stdout)?.[1];
      assert.ok(bundle, made.stdout);

      // The first write.
      await Deno.writeFile(`${home}/x.db`, new Uint8Array(), { mode: 0o600 });
      const add = await runHecate(
        ["server", "add", "x", "--engine", "sqlite", "--database", `${home}/x.db`],
        { env: v.pw },
      );
      assert.equal(add.code, 0, add.stderr);
      const upgraded = await Deno.readFile(`${home}/vault.hecate`);
      const after = parseVaultFile(upgraded).body;
      assert.equal(after.version, 5);
      assert.equal(after.generation, before.generation + 1);
      // Not re-encrypted: the old records keep their bytes, the new one follows.
      assert.deepEqual(
        sealedRecords(upgraded).slice(0, before.records.length),
        sealedRecords(v.file),
      );
      assert.equal(after.records.length, before.records.length + 1);
      // The format-2 file is the kept generation.
      assert.deepEqual(
        await Deno.readFile(`${home}/generations/vault.${before.generation}.hecate`),
        v.file,
      );

      // The old API key opens its record in the format-3 file, through the signed header.
      const scoped = await openScoped(upgraded, v.apiKey, { now: new Date() });
      assert.deepEqual(scoped.records().map((r) => r.value.name), ["reporting"]);
      const keyList = await runHecate(["server", "list"], { env: v.key });
      assert.equal(keyList.code, 0, keyList.stderr);
      assert.match(keyList.stdout, /reporting/);
      assert.doesNotMatch(keyList.stdout, /cache/);

      // Backups: a format-3 bundle and the format-2 bundle both verify.
      const made3 = await runHecate(["backup", "create"], { env: v.pw });
      assert.equal(made3.code, 0, made3.stderr);
      const bundle3 = /(\S+\.hecate-backup)/.exec(made3.stdout)![1]!;
      for (const b of [bundle, bundle3]) {
        const verify = await runHecate(["backup", "verify", b], { env: v.pw });
        assert.equal(verify.code, 0, `${b}: ${verify.stderr}`);
      }

      // The attack: the format-2 file put back over the format-3 one. Refused on both paths.
      await Deno.copyFile(
        `${home}/generations/vault.${before.generation}.hecate`,
        `${home}/vault.hecate`,
      );
      for (const env of [v.pw, v.key]) {
        const r = await runHecate(["server", "list"], { env });
        assert.equal(r.code, ROLLED_BACK_EXIT, r.stderr);
      }

      // The owner puts the rolled-back file aside and restores the format-2 bundle: a new,
      // higher generation, written as format 5.
      await Deno.remove(`${home}/vault.hecate`);
      const restore = await runHecate(["backup", "restore", bundle], { env: v.pw });
      assert.equal(restore.code, 0, restore.stderr);
      const restored = parseVaultFile(await Deno.readFile(`${home}/vault.hecate`)).body;
      assert.equal(restored.version, 5);
      assert.ok(restored.generation > after.generation, `${restored.generation}`);
      const ok = await runHecate(["server", "list"], { env: v.pw });
      assert.equal(ok.code, 0, ok.stderr);
      assert.doesNotMatch(ok.stdout, /\bx\b/, "the bundle's contents, from before the add");
    } finally {
      await Deno.remove(v.pwFile);
    }
  });
});

Deno.test("attack: a record line put back from an older generation (an old secret) is refused (exit 4) by every reader of it, and by a writer", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["alpha", "beta"]);
    const apiKey = await vault.apiKeys.create({ name: "k", profiles: ["alpha"], expires: null });
    // No previous versions kept, and one edit first: both lines then hold an `edit` version
    // history of the same size (src/lifecycle/history.ts).
    await vault.profiles.edit("alpha", {
      secrets: { password: { value: "secret-of-alpha" } },
      keepVersions: 0,
    });
    await vault.profiles.edit("alpha", { secrets: { password: { value: "secret-of-alphx" } } });
    await vault.profiles.edit("alpha", { secrets: { password: { value: "secret-of-alpha" } } });
    const old = await Deno.readFile(`${home}/vault.hecate`);
    // A new secret of the same length, so the old line has the current line's size: only its
    // hash can tell them apart.
    await vault.profiles.edit("alpha", { secrets: { password: { value: "SECRET-of-alpha" } } });
    const current = await Deno.readFile(`${home}/vault.hecate`);
    // alpha's line from the older file in place of its current one; header and seal untouched.
    const now = fileLines(current);
    const was = fileLines(old);
    const i = now.records.findIndex((l, n) => l !== was.records[n]);
    assert.ok(i >= 0, "the edited record's line changed");
    now.records[i] = was.records[i]!;
    const forged = await assemble(now.body, now.seal, now.records, now.prefix);
    assert.equal(forged.length, current.length, "the old line has the current line's size");
    await Deno.writeFile(`${home}/vault.hecate`, forged);
    const pwFile = `${home}.pw`;
    await Deno.writeTextFile(pwFile, PW, { mode: 0o600 });
    try {
      const pw = { HECATE_HOME: home, HECATE_PASSWORD_FILE: pwFile, HECATE_LOCKOUT: "off" };
      for (
        const [args, env] of [
          [["server", "show", "alpha"], pw],
          [["server", "edit", "beta", "--host", "h"], pw],
          [["server", "list"], { HECATE_HOME: home, HECATE_API_KEY: apiKey }],
        ] as const
      ) {
        const r = await runHecate([...args], { env });
        assert.equal(r.code, VAULT_INTEGRITY_EXIT, `${args.join(" ")}: ${r.stderr}`);
        assert.ok(!r.stdout.includes("secret-of-alpha") && !r.stderr.includes("secret-of-alpha"));
      }
      assert.deepEqual(await Deno.readFile(`${home}/vault.hecate`), forged, "left as it was");
      // doctor names the damage without any key.
      const d = await runHecate(["doctor", "--json"], { env: { HECATE_HOME: home } });
      assert.match(d.stdout, /record line \d+ does not match its hash/);
    } finally {
      await Deno.remove(pwFile);
    }
  });
});
