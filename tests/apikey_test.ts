/**
 * Scoped API keys: least privilege enforced by the vault file's cryptography (not only by the
 * library), expiry, revocation with re-keying, read-only use, last-used time, audit actor, and
 * rotation keeping keys alive.
 */

import assert from "node:assert/strict";
import { editLogical } from "./support/vault_lines.ts";
import { openVault } from "../src/hecate.ts";
import { openApiKeySlot, parseApiKey } from "../src/vault/apikey.ts";
import { fromUtf8, timingSafeEqual, toBase64Url } from "../src/vault/encoding.ts";
import { type ApiKeySlot, parseVaultFile } from "../src/vault/format.ts";
import { openRecord } from "../src/vault/keyring.ts";
import { AuthenticationFailure } from "../src/vault/primitives.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import {
  assertCode,
  auditLines,
  ITER,
  passwordFile,
  PW,
  runHecate,
  vaultWith,
  withHome,
} from "./support/access.ts";

const DAY = 86_400_000;

/** Everything the key yields, taken straight from the file: slot payload data keys. */
async function keysFromFile(file: Uint8Array<ArrayBuffer>, keyText: string) {
  const { body } = parseVaultFile(file);
  const key = parseApiKey(keyText);
  const slot = body.slots.find((s): s is ApiKeySlot =>
    s.kind === "apikey" && timingSafeEqual(s.id, key.slotId)
  )!;
  return { body, payload: await openApiKeySlot(key.secret, slot, body.vaultId) };
}

Deno.test("an API key's slot yields only its scope's data keys: no out-of-scope record opens with them", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing", "hr", "crm"]);
    const key = await vault.apiKeys.create({
      name: "nightly",
      profiles: ["billing", "crm"],
      expires: null,
    });
    assert.match(key, /^hcx_[A-Za-z0-9_-]{11}_[A-Za-z0-9_-]{43}$/);
    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const { body, payload } = await keysFromFile(file, key);
    assert.equal(payload.scope.length, 2);

    // Try every data key the slot yields against every record in the file.
    const opened = new Set<string>();
    for (const record of body.records) {
      for (const s of payload.scope) {
        try {
          const plain = await openRecord(s.key, record.data, body.vaultId, record.id);
          opened.add(JSON.parse(fromUtf8(plain)).name);
        } catch (e) {
          assert.ok(e instanceof AuthenticationFailure);
        }
      }
    }
    assert.deepEqual([...opened].sort(), ["billing", "crm"]);
    assert.ok(!new TextDecoder().decode(file).includes("secret-of-"));

    // The scoped opener and the library agree, and the key text never reaches the file.
    const scoped = await openScoped(file, key, { now: new Date() });
    assert.deepEqual(scoped.records().map((r) => r.value.name).sort(), ["billing", "crm"]);
    assert.ok(!new TextDecoder().decode(file).includes(key.slice(16)));
    const byKey = await openVault({ home, apiKey: key });
    assert.deepEqual(byKey.profiles.list().map((p) => p.name), ["billing", "crm"]);
    await assertCode(() => byKey.connect("hr"), "profile_not_found");
    assert.equal(byKey.profiles.has("hr"), false);
  });
});

Deno.test("an API key cannot change the vault, and the file stays byte-identical", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const key = await vault.apiKeys.create({ name: "ro", profiles: ["billing"], expires: null });
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const byKey = await openVault({ home, apiKey: key });
    await assertCode(
      () => byKey.profiles.add({ name: "x", engine: "sqlite", database: "/tmp/x" }),
      "no_credential",
    );
    await assertCode(() => byKey.profiles.edit("billing", { tags: ["t"] }), "no_credential");
    await assertCode(() => byKey.profiles.remove("billing"), "no_credential");
    await assertCode(
      () => byKey.keys.changePassword("another long password here"),
      "no_credential",
    );
    await assertCode(() => byKey.apiKeys.list(), "no_credential");
    await assertCode(
      () => byKey.apiKeys.create({ name: "y", profiles: ["billing"], expires: null }),
      "no_credential",
    );
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
  });
});

Deno.test("an expired key is refused with key_expired; an unknown one with key_revoked; a wrong secret with auth_failed", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const t0 = Date.now();
    const key = await vault.apiKeys.create({
      name: "short",
      profiles: ["billing"],
      expires: new Date(t0 + DAY),
    });
    const opts = { home, apiKey: key, lockout: "off" };
    await openVault({ ...opts, now: () => new Date(t0 + DAY - 1000) });
    const e = await assertCode(
      () => openVault({ ...opts, now: () => new Date(t0 + DAY + 1000) }),
      "key_expired",
    );
    assert.equal(e.exitCode, 14);
    assert.match(e.message, /"short" expired at/);

    const { slotId, secret } = parseApiKey(key);
    const unknown = `hcx_${toBase64Url(new Uint8Array(8))}_${toBase64Url(secret)}`;
    assert.equal(
      (await assertCode(() => openVault({ ...opts, apiKey: unknown }), "key_revoked"))
        .exitCode,
      15,
    );
    const flipped = secret.slice();
    flipped[0]! ^= 1;
    const wrong = `hcx_${toBase64Url(slotId)}_${toBase64Url(flipped)}`;
    await assertCode(() => openVault({ ...opts, apiKey: wrong }), "auth_failed");
    await assertCode(() => openVault({ ...opts, apiKey: "hcx_nonsense" }), "auth_failed");
  });
});

Deno.test("revoking re-keys the covered profiles: an old file copy plus the revoked key opens nothing written after", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing", "hr"]);
    const doomed = await vault.apiKeys.create({
      name: "doomed",
      profiles: ["billing"],
      expires: null,
    });
    const keeper = await vault.apiKeys.create({
      name: "keeper",
      profiles: ["billing", "hr"],
      expires: null,
    });
    const oldCopy = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const old = await keysFromFile(oldCopy, doomed);

    await vault.apiKeys.revoke("doomed");
    await vault.profiles.edit("billing", {
      secrets: { password: { value: "new-billing-secret" } },
    });
    await assertCode(() => openVault({ home, apiKey: doomed }), "key_revoked");

    // The old slot's data key does not open the record as written after the revocation.
    const now = parseVaultFile(await Deno.readFile(`${home}/${VAULT_FILE}`)).body;
    const billingId = old.payload.scope[0]!.record;
    const current = now.records.find((r) => toBase64Url(r.id) === billingId)!;
    await assert.rejects(
      openRecord(old.payload.scope[0]!.key, current.data, now.vaultId, current.id),
      AuthenticationFailure,
    );
    // Even the re-keyed record before any edit: revocation itself re-sealed it under a new key.
    // (The old copy still opens its own old records: that is what "after" means; see SECURITY.md.)
    assert.ok((await openScoped(oldCopy, doomed, { now: new Date() })).records().length === 1);

    // The other key got the new data keys and still opens both, with the new secret.
    const byKeeper = await openVault({ home, apiKey: keeper });
    assert.deepEqual(byKeeper.profiles.list().map((p) => p.name), ["billing", "hr"]);
    const scoped = await openScoped(await Deno.readFile(`${home}/${VAULT_FILE}`), keeper, {
      now: new Date(),
    });
    const billing = scoped.records().find((r) => r.value.name === "billing")!;
    assert.equal(
      (billing.value.secrets as { password: { value: string } }).password.value,
      "new-billing-secret",
    );
    assert.deepEqual((await vault.apiKeys.list()).map((k) => k.name), ["keeper"]);
    await assertCode(() => vault.apiKeys.revoke("doomed"), "key_revoked");
  });
});

Deno.test("last-used time is recorded without the master password, in a 0600 state file", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const key = await vault.apiKeys.create({ name: "cron", profiles: ["billing"], expires: null });
    assert.equal((await vault.apiKeys.list())[0]!.lastUsed, null);
    const at = new Date("2026-11-23T12:00:00.000Z");
    const gen = vault.generation;
    await openVault({ home, apiKey: key, now: () => at });
    const listed = await vault.apiKeys.list();
    assert.equal(listed[0]!.lastUsed, at.toISOString());
    assert.deepEqual(listed[0]!.profiles, ["billing"]);
    assert.equal(((await Deno.stat(`${home}/apikeys.state.json`)).mode ?? 0) & 0o777, 0o600);
    const reopened = await openVault({ home, password: PW });
    assert.equal(reopened.generation, gen, "using a key must not rewrite the vault");
  });
});

Deno.test("last-used time is kept to the minute: a use within a minute of the recorded one leaves it", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const key = await vault.apiKeys.create({ name: "cron", profiles: ["billing"], expires: null });
    const t0 = Date.parse("2026-11-23T12:00:00.000Z");
    const useAt = (ms: number) => openVault({ home, apiKey: key, now: () => new Date(t0 + ms) });
    const lastUsed = async () => (await vault.apiKeys.list())[0]!.lastUsed;
    await useAt(0);
    const file = `${home}/apikeys.state.json`;
    const first = await Deno.stat(file);
    await useAt(30_000);
    assert.equal(await lastUsed(), new Date(t0).toISOString());
    assert.equal((await Deno.stat(file)).ino, first.ino, "the file was not replaced");
    await useAt(61_000);
    assert.equal(await lastUsed(), new Date(t0 + 61_000).toISOString());
    // A recorded time after "now" (the clock went back) is corrected at once.
    await useAt(5_000);
    assert.equal(await lastUsed(), new Date(t0 + 5_000).toISOString());
  });
});

Deno.test("audit lines name the API key (id and name) and never carry the key", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const key = await vault.apiKeys.create({ name: "cron", profiles: ["billing"], expires: null });
    const byKey = await openVault({ home, apiKey: key });
    const conn = await byKey.connect("billing");
    const rows = [];
    for await (const row of conn.query("select 1 as one")) rows.push(row);
    assert.deepEqual(rows, [{ one: 1 }]);
    await conn.close();
    const id = toBase64Url(parseApiKey(key).slotId);
    const lines = await auditLines(home);
    const mine = lines.filter((l) => (l.actor as { kind: string }).kind === "apikey");
    assert.deepEqual(mine.map((l) => l.event), ["unlock", "profile.read", "query"]);
    for (const l of mine) assert.deepEqual(l.actor, { kind: "apikey", id, name: "cron" });
    const text = await Deno.readTextFile(`${home}/audit.jsonl`);
    assert.ok(!text.includes(key.slice(16)), "key secret in the audit trail");
  });
});

Deno.test("a record in scope altered in the file is refused with vault_integrity", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const key = await vault.apiKeys.create({ name: "k", profiles: ["billing"], expires: null });
    // Put another record's ciphertext in billing's place and fix up the unkeyed checksum (the MAC,
    // which this path cannot check, is left as it was).
    await vault.profiles.add({ name: "other", engine: "sqlite", database: "/tmp/o" });
    // Every unkeyed value recomputed (line hashes, table, checksum); MAC and signature kept.
    const forged = await editLogical(await Deno.readFile(`${home}/${VAULT_FILE}`), (body) => {
      const records = body.records as { data: string }[];
      records[0]!.data = records[1]!.data;
    });
    await Deno.writeFile(`${home}/${VAULT_FILE}`, forged, { mode: 0o600 });
    await assertCode(() => openVault({ home, apiKey: key }), "vault_integrity");
    await assertCode(() => openVault({ home, password: PW }), "vault_integrity");
  });
});

Deno.test("rotate re-encrypts every record and keeps API keys working; a wrong password changes nothing", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing", "hr"]);
    const key = await vault.apiKeys.create({ name: "k", profiles: ["hr"], expires: null });
    const before = parseVaultFile(await Deno.readFile(`${home}/${VAULT_FILE}`)).body;
    const beforeBytes = await Deno.readFile(`${home}/${VAULT_FILE}`);
    await assertCode(() => vault.keys.rotate("not the password at all"), "auth_failed");
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), beforeBytes);

    await vault.keys.rotate(PW);
    const after = parseVaultFile(await Deno.readFile(`${home}/${VAULT_FILE}`)).body;
    assert.equal(toBase64Url(after.vaultId), toBase64Url(before.vaultId));
    for (const [i, r] of after.records.entries()) {
      assert.notDeepEqual(r.key, before.records[i]!.key);
      assert.notDeepEqual(r.data, before.records[i]!.data);
    }
    // The old file's record keys no longer open anything in the new file.
    const oldHr = (await keysFromFile(beforeBytes, key)).payload.scope[0]!;
    const hr = after.records.find((r) => toBase64Url(r.id) === oldHr.record)!;
    await assert.rejects(
      openRecord(oldHr.key, hr.data, after.vaultId, hr.id),
      AuthenticationFailure,
    );

    const byKey = await openVault({ home, apiKey: key });
    assert.deepEqual(byKey.profiles.list().map((p) => p.name), ["hr"]);
    const again = await openVault({ home, password: PW });
    assert.deepEqual(again.profiles.list().map((p) => p.name), ["billing", "hr"]);
    assert.equal(again.keys.kdfIterations, ITER);
  });
});

Deno.test("unlocking a vault whose KDF cost is below the floor upgrades it and audits the upgrade", async () => {
  await withHome(async (home) => {
    const weak = await UnlockedVault.create(PW, { iterations: 10_000 });
    const { bytes, generation } = await weak.serialize();
    await Deno.writeFile(`${home}/${VAULT_FILE}`, bytes, { mode: 0o600 });
    const v = await openVault({ home, password: PW });
    assert.equal(v.keys.kdfIterations, 600_000);
    // One write for the KDF upgrade (a vault this old also gets its audit chain key on first unlock).
    assert.ok(v.generation > generation);
    const again = await openVault({ home, password: PW });
    assert.equal(again.keys.kdfIterations, 600_000);
    const events = (await auditLines(home)).map((l) => `${l.event}:${l.outcome}`);
    // The chain started for this old vault opens with its own first entry (audit.start); each
    // vault write is recorded with its generation (the chain key, then the upgrade).
    assert.deepEqual(events, [
      "audit.start:ok",
      "vault.write:ok",
      "unlock:ok",
      "vault.write:ok",
      "kdf.upgrade:ok",
      "unlock:ok",
    ]);
  });
});

Deno.test("apikey list --server: only the keys whose scope includes that profile; an unknown profile exits 5", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing", "hr", "ops"]);
    await vault.apiKeys.create({ name: "both", profiles: ["billing", "hr"], expires: null });
    await vault.apiKeys.create({ name: "hr-only", profiles: ["hr"], expires: null });
    await vault.apiKeys.create({ name: "billing-only", profiles: ["billing"], expires: null });
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const list = async (...args: string[]) => {
      const r = await runHecate(["--home", home, "apikey", "list", ...args], { env });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const names = async (server: string) =>
      (JSON.parse(await list("--server", server, "--json")) as { name: string }[]).map((k) =>
        k.name
      );
    assert.deepEqual(await names("billing"), ["both", "billing-only"]);
    assert.deepEqual(await names("hr"), ["both", "hr-only"]);
    assert.deepEqual(await names("ops"), []);
    assert.match(await list("--server", "ops"), /No API keys for "ops"/);
    const table = await list("--server", "hr");
    assert.match(table, /hr-only/);
    assert.doesNotMatch(table, /billing-only/);
    assert.equal((JSON.parse(await list("--json")) as unknown[]).length, 3);
    const unknown = await runHecate(["--home", home, "apikey", "list", "--server", "nope"], {
      env,
    });
    assert.equal(unknown.code, 5);
    assert.match(unknown.stderr, /No profile named "nope"/);
  });
});
