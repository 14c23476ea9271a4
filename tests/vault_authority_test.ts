/**
 * The writer's authority over the vault (format 2), tested by performing the attacks of issue 11:
 * an old root key (old file + old password) must open nothing written after `rotate`, through any
 * slot; an API-key holder who shares a profile with another key must not be able to forge the
 * record the other key reads; and the format-1 API keys a vault may still carry are upgraded on
 * write but never carried over a `rotate`.
 */

import assert from "node:assert/strict";
import { openApiKeySlot, parseApiKey } from "../src/vault/apikey.ts";
import { x25519 } from "../src/vault/asymmetric.ts";
import { concatBytes, fromBase64Url, timingSafeEqual, toBase64Url } from "../src/vault/encoding.ts";
import { type ApiKeySlot, parseVaultFile } from "../src/vault/format.ts";
import {
  associatedData,
  associatedDataV2,
  deriveKeys,
  macBody,
  openMeta,
  openRecord,
  sealMeta,
  sealRecord,
  unwrapDataKey,
  unwrapRootWithPassword,
} from "../src/vault/keyring.ts";
import { hkdfSha256, open, seal } from "../src/vault/primitives.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { openVault } from "../src/hecate.ts";
import { assertCode, ITER, PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { initVault } from "../src/hecate.ts";

import {
  type LogicalFile,
  readLogical,
  type SealJson,
  writeLogical,
} from "./support/vault_lines.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const NEW_PW = "access-test: a different violet kettle";

type Json = Record<string, unknown>;

/** The body (format 3: records inline) and seal of a file (tests/support/vault_lines.ts). */
function lines(file: Uint8Array): { body: Json; seal: SealJson } {
  return readLogical(file);
}

/**
 * Writes body and seal back with every unkeyed value recomputed (checksum; format 3: the record
 * lines' hashes in the header): what any editor of the file can do.
 */
function assemble(body: Json, seal: SealJson): Promise<Uint8Array<ArrayBuffer>> {
  return writeLogical({ body: body as LogicalFile["body"], seal });
}

/** Every 32-byte value an attacker holding an old root key can reach: keys, meta values, data keys. */
async function oldKeyMaterial(oldFile: Uint8Array<ArrayBuffer>, password: string) {
  const { body } = parseVaultFile(oldFile);
  const slot = body.slots.find((s) => s.kind === "password")!;
  if (slot.kind !== "password") throw new Error("unreachable");
  const root = await unwrapRootWithPassword(
    slot.wrapped,
    password,
    slot.kdf.salt,
    slot.kdf.iterations,
    body.vaultId,
    slot.id,
  );
  const keys = await deriveKeys(root, body.vaultId);
  const out: Uint8Array<ArrayBuffer>[] = [root, keys.wrap, keys.mac, keys.meta];
  const meta = dec.decode(await openMeta(keys.meta, body.meta, body.vaultId));
  for (const m of meta.matchAll(/"([A-Za-z0-9_-]{43})"/g)) out.push(fromBase64Url(m[1]!));
  for (const r of body.records) out.push(await unwrapDataKey(keys.wrap, r.key, body.vaultId, r.id));
  return out;
}

async function opens(fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch {
    return false;
  }
}

Deno.test("after passwd and rotate, nothing from the old file and old password opens a current record or API-key slot", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing", "hr"]);
    const key = await vault.apiKeys.create({ name: "cron", profiles: ["billing"], expires: null });
    const oldFile = await Deno.readFile(`${home}/${VAULT_FILE}`);
    await vault.keys.changePassword(NEW_PW);
    await vault.keys.rotate(NEW_PW);
    const current = await Deno.readFile(`${home}/${VAULT_FILE}`);

    // The old password is the old file's; it opens nothing in the current one.
    await assertCode(() => openVault({ home, password: PW, lockout: "off" }), "auth_failed");

    const material = await oldKeyMaterial(oldFile, PW);
    assert.ok(material.length >= 8, "the attacker has the old root, derived keys and data keys");
    const { body } = parseVaultFile(current);
    let tries = 0;
    for (const k of material) {
      for (const r of body.records) {
        tries += 2;
        assert.ok(!await opens(() => unwrapDataKey(k, r.key, body.vaultId, r.id)), "record key");
        assert.ok(!await opens(() => openRecord(k, r.data, body.vaultId, r.id)), "record data");
      }
      for (const s of body.slots) {
        if (s.kind !== "apikey") continue;
        // As a symmetric slot key (the format-1 construction that leaked), and as an X25519
        // private key against the slot's ephemeral key with every candidate recipient.
        const aad = associatedDataV2("apikey-slot", body.vaultId, s.id);
        tries++;
        assert.ok(!await opens(() => open(k, s.wrapped, aad)), "slot as symmetric key");
        assert.ok(
          !await opens(() => open(k, s.wrapped, associatedData("apikey-slot", body.vaultId, s.id))),
        );
        const shared = await x25519(k, s.epk).catch(() => undefined);
        if (!shared) continue;
        for (const p of material) {
          tries++;
          const derived = await hkdfSha256(shared, concatBytes(s.epk, p), aad);
          assert.ok(!await opens(() => open(derived, s.wrapped, aad)), "slot through X25519");
        }
      }
    }
    assert.ok(tries > 50);

    // The API key itself still opens its current scope, and only that.
    const scoped = await openScoped(current, key, { now: new Date() });
    assert.deepEqual(scoped.records().map((r) => r.value.name), ["billing"]);
  });
});

Deno.test("the old file's meta holds no API-key slot key: only the key's public half", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const key = await vault.apiKeys.create({ name: "cron", profiles: ["billing"], expires: null });
    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const { body } = parseVaultFile(file);
    const slot = body.slots.find((s): s is ApiKeySlot => s.kind === "apikey")!;
    // Every 32-byte value the root side keeps fails to open the slot.
    const aad = associatedDataV2("apikey-slot", body.vaultId, slot.id);
    for (const k of await oldKeyMaterial(file, PW)) {
      assert.ok(!await opens(() => open(k, slot.wrapped, aad)));
    }
    // ...while the key text does, and names the writer's verifying key.
    const payload = await openApiKeySlot(parseApiKey(key).secret, slot, body.vaultId);
    assert.equal(payload.signer?.length, 32);
  });
});

/** A listener standing for a database server of the attacker's choosing: counts connections. */
function attackerServer(): { port: number; connections: () => number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let count = 0;
  (async () => {
    for await (const conn of listener) {
      count++;
      conn.close();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    connections: () => count,
    close: () => listener.close(),
  };
}

/** Key holder 1's forgery: re-seal the shared record with a new port under the data key it holds. */
async function forgeSharedRecord(
  file: Uint8Array<ArrayBuffer>,
  keyText: string,
  port: number,
): Promise<{ body: Json; seal: SealJson }> {
  const parsed = parseVaultFile(file);
  const key = parseApiKey(keyText);
  const slot = parsed.body.slots.find((s): s is ApiKeySlot =>
    s.kind === "apikey" && timingSafeEqual(s.id, key.slotId)
  )!;
  const payload = await openApiKeySlot(key.secret, slot, parsed.body.vaultId);
  const { body, seal } = lines(file);
  const records = body.records as Json[];
  for (const scope of payload.scope) {
    const entry = records.find((r) => r.id === scope.record)!;
    const id = fromBase64Url(String(entry.id));
    const plain = await openRecord(
      scope.key,
      fromBase64Url(String(entry.data)),
      parsed.body.vaultId,
      id,
    );
    const profile = JSON.parse(dec.decode(plain));
    profile.host = "127.0.0.1";
    profile.port = port;
    const data = await sealRecord(
      scope.key,
      enc.encode(JSON.stringify(profile)),
      parsed.body.vaultId,
      id,
    );
    entry.data = toBase64Url(data);
  }
  return { body, seal };
}

Deno.test("a key holder cannot forge a shared profile for another key: the other key refuses the file (exit 4) and never connects", async () => {
  await withHome(async (home) => {
    await initVault({ home, password: PW, kdfIterations: ITER });
    const vault = await openVault({ home, password: PW, lockout: "off" });
    await vault.profiles.add({
      name: "shared",
      engine: "postgres",
      host: "127.0.0.1",
      port: 1, // nothing listens: the genuine profile fails to connect, the forged one would not
      user: "app",
      tls: { mode: "disable" },
      connectTimeoutMs: 2000,
      secrets: { password: { value: "victim-db-password-canary" } },
    });
    const k1 = await vault.apiKeys.create({ name: "one", profiles: ["shared"], expires: null });
    const k2 = await vault.apiKeys.create({ name: "two", profiles: ["shared"], expires: null });
    const genuine = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const attacker = attackerServer();
    try {
      // As the file was, key two reaches the genuine (closed) port: a connection failure.
      const before = await runHecate(["--home", home, "query", "shared", "select 1"], {
        env: { HECATE_API_KEY: k2, HECATE_LOCKOUT: "off" },
      });
      assert.equal(before.code, 6, before.stderr);

      const forged = await forgeSharedRecord(genuine, k1, attacker.port);
      // The forged record opens with key one's data key: the AEAD alone would accept it.
      await Deno.writeFile(`${home}/${VAULT_FILE}`, await assemble(forged.body, forged.seal));
      const r = await runHecate(["--home", home, "query", "shared", "select 1"], {
        env: { HECATE_API_KEY: k2, HECATE_LOCKOUT: "off" },
      });
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /not signed by the vault's writer/);
      assert.equal(
        r.stderr.trim().split("\n").filter((l) => !l.startsWith("hecate: hint")).length,
        1,
      );

      // Posing as a format-1 file (version 1, no signature) does not escape the check.
      const downgraded: Json = { ...forged.body, version: 1 };
      for (const s of downgraded.slots as Json[]) {
        if (s.kind === "apikey-legacy") s.kind = "apikey";
      }
      const { sig: _sig, ...unsigned } = forged.seal;
      await Deno.writeFile(`${home}/${VAULT_FILE}`, await assemble(downgraded, unsigned));
      const d = await runHecate(["--home", home, "query", "shared", "select 1"], {
        env: { HECATE_API_KEY: k2, HECATE_LOCKOUT: "off" },
      });
      assert.equal(d.code, 4, d.stderr);
      assert.equal(attacker.connections(), 0, "the victim never reached the attacker's server");
      assert.ok(!(r.stderr + d.stderr).includes("canary"));

      // The password holder sees the forgery too (the body MAC), and the genuine file still works.
      await assertCode(() => openVault({ home, password: PW, lockout: "off" }), "vault_integrity");
      await Deno.writeFile(`${home}/${VAULT_FILE}`, genuine);
      assert.equal((await openScoped(genuine, k2, { now: new Date() })).records().length, 1);
    } finally {
      attacker.close();
    }
  });
});

/**
 * Turns a format-2 vault with one API key into what a format-1 writer made: a version-1 body, the
 * key's slot sealed under an HKDF slot key that the meta keeps, no signature.
 */
async function asFormat1(file: Uint8Array<ArrayBuffer>, keyText: string) {
  const parsed = parseVaultFile(file);
  const vaultId = parsed.body.vaultId;
  const pwSlot = parsed.body.slots.find((s) => s.kind === "password")!;
  if (pwSlot.kind !== "password") throw new Error("unreachable");
  const root = await unwrapRootWithPassword(
    pwSlot.wrapped,
    PW,
    pwSlot.kdf.salt,
    pwSlot.kdf.iterations,
    vaultId,
    pwSlot.id,
  );
  const keys = await deriveKeys(root, vaultId);
  const meta = JSON.parse(dec.decode(await openMeta(keys.meta, parsed.body.meta, vaultId)));
  delete meta.signer;
  const key = parseApiKey(keyText);
  const slot = parsed.body.slots.find((s): s is ApiKeySlot => s.kind === "apikey")!;
  const payload = await openApiKeySlot(key.secret, slot, vaultId);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const aad = associatedData("apikey-slot", vaultId, key.slotId);
  const slotKey = await hkdfSha256(key.secret, salt, aad);
  const id = toBase64Url(key.slotId);
  meta.apikeys[id].slotKey = toBase64Url(slotKey);
  delete meta.apikeys[id].publicKey;
  const wrapped = await seal(
    slotKey,
    enc.encode(JSON.stringify({
      name: payload.name,
      created: payload.created,
      expires: payload.expires,
      scope: payload.scope.map((s) => ({ record: s.record, key: toBase64Url(s.key) })),
    })),
    aad,
  );
  const { body } = lines(file);
  body.version = 1;
  // Format 4's logical members: a format-1 body has neither (and no index: every record opened).
  delete body.name_tags;
  delete body.index_line;
  body.slots = (body.slots as Json[]).map((s) =>
    s.id === id ? { id, kind: "apikey", salt: toBase64Url(salt), wrapped: toBase64Url(wrapped) } : s
  );
  body.meta = toBase64Url(await sealMeta(keys.meta, enc.encode(JSON.stringify(meta)), vaultId));
  const bodyBytes = enc.encode(JSON.stringify(body));
  const mac = toBase64Url(await macBody(keys.mac, bodyBytes));
  return await assemble(body, { sha256: "", mac });
}

Deno.test("a format-1 vault with an API key: the key works before and after the upgrade, and rotate refuses to carry it over", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const key = await vault.apiKeys.create({
      name: "old-cron",
      profiles: ["billing"],
      expires: null,
    });
    const v1 = await asFormat1(await Deno.readFile(`${home}/${VAULT_FILE}`), key);
    await Deno.writeFile(`${home}/${VAULT_FILE}`, v1);
    assert.equal(parseVaultFile(v1).body.version, 1);
    assert.equal((await openScoped(v1, key, { now: new Date() })).records().length, 1);

    // The first password write upgrades the file (to the current format, 5); the legacy key
    // keeps working, now signed.
    const owner = await openVault({ home, password: PW, lockout: "off" });
    await owner.profiles.edit("billing", { tags: ["t"] });
    const v2 = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const parsed = parseVaultFile(v2);
    assert.equal(parsed.body.version, 5);
    assert.deepEqual(parsed.body.slots.map((s) => s.kind).sort(), ["apikey-legacy", "password"]);
    assert.ok(parsed.seal.sig);
    assert.equal((await openScoped(v2, key, { now: new Date() })).records().length, 1);

    // Rotate would leave its slot key (kept in the meta) known to the old root: refused, exit 2.
    const r = await runHecate(["--home", home, "rotate", "--password-stdin"], { stdin: PW + "\n" });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /"old-cron"/);
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), v2, "the vault is unchanged");
    await owner.apiKeys.revoke("old-cron");
    await owner.keys.rotate(PW);
    await assertCode(() => openVault({ home, apiKey: key, lockout: "off" }), "key_revoked");
  });
});
