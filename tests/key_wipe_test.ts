/**
 * Key wiping: after `vault.close()` every root, derived, data and signing key buffer the unlocked
 * state held reads as zeros, and the closed vault refuses to open a record or write the file (a
 * write under zero keys would seal the vault with a key anyone knows).
 */

import assert from "node:assert/strict";
import { openVaultWithState } from "../src/api/open.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { assertCode, PW, vaultWith, withHome } from "./support/access.ts";

Deno.test("vault.close() zeroes every key buffer; the closed vault opens and writes nothing", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["billing", "hr"])).close();
    const { vault, state } = await openVaultWithState({ home, password: PW, lockout: "off" });
    assert.ok(state instanceof UnlockedVault);
    // Open records so their data keys are held too.
    for (const name of ["billing", "hr"]) await (await vault.connect(name)).close();
    const buffers = state.keyBuffers();
    assert.ok(buffers.length >= 5, `only ${buffers.length} key buffers`);
    const live = buffers.filter((b) => b.some((x) => x !== 0)).length;
    assert.equal(live, buffers.length, "every key buffer holds a key before close");
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    await vault.close();
    for (const [i, b] of buffers.entries()) {
      assert.ok(b.every((x) => x === 0), `buffer ${i} (${b.length} bytes) not zeroed`);
    }
    await assertCode(() => vault.connect("hr"), "usage", "connect after close");
    await assertCode(
      () => vault.profiles.add({ name: "x", engine: "sqlite", database: `${home}/x.db` }),
      "usage",
      "write after close",
    );
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
  });
});

Deno.test("an API-key session's close zeroes the key's secret and every data key; nothing opens after", async () => {
  await withHome(async (home) => {
    const owner = await vaultWith(home, ["billing", "hr"]);
    const key = await owner.apiKeys.create({
      name: "k",
      profiles: ["billing", "hr"],
      expires: null,
    });
    await owner.close();
    const { vault, state } = await openVaultWithState({ home, apiKey: key, lockout: "off" });
    assert.ok(!(state instanceof UnlockedVault));
    for (const name of ["billing", "hr"]) await (await vault.connect(name)).close();
    const buffers = state.keyBuffers();
    // The key's secret and one data key per record in scope.
    assert.equal(buffers.length, 3);
    assert.ok(buffers.every((b) => b.length === 32 && b.some((x) => x !== 0)), "keys held");
    await vault.close();
    for (const [i, b] of buffers.entries()) {
      assert.ok(b.every((x) => x === 0), `buffer ${i} (${b.length} bytes) not zeroed`);
    }
    assert.equal(state.records().length, 0, "records forgotten");
    await assertCode(() => vault.connect("billing"), "profile_not_found", "connect after close");
    await assertCode(() => state.recordSideKey("x"), "usage", "side key after close");
  });
});

Deno.test("side keys handed to the offline secret cache are zeroed by close (password and API key)", async () => {
  await withHome(async (home) => {
    const pwFile = `${home}/pw`;
    await Deno.writeTextFile(pwFile, "cached-pw\n");
    const owner = await vaultWith(home, []);
    await owner.profiles.add({
      name: "cached",
      engine: "postgres",
      host: "db",
      user: "app",
      secrets: { password: { ref: `file:${pwFile}` } },
      sources: { cacheTtlMs: 60_000 },
    });
    const key = await owner.apiKeys.create({ name: "k", profiles: ["cached"], expires: null });
    await owner.close();
    for (const credential of [{ password: PW }, { apiKey: key }]) {
      const { vault, state } = await openVaultWithState({ home, ...credential, lockout: "off" });
      // Catch every side key the state hands out (the cache's key for this record).
      const handed: Uint8Array[] = [];
      const sideKey = state.recordSideKey.bind(state);
      state.recordSideKey = async (id: string) => {
        const k = await sideKey(id);
        if (k) handed.push(k);
        return k;
      };
      await vault.environment("cached", []);
      await vault.environment("cached", []);
      // One side key per record and state, however many uses: nothing piles up in a long-lived pool.
      assert.equal(handed.length, 1, "the cache got one side key for both uses");
      assert.ok(handed.every((b) => b.some((x) => x !== 0)), "side keys hold a key before close");
      await vault.close();
      for (const [i, b] of handed.entries()) {
        assert.ok(b.every((x) => x === 0), `side key ${i} not zeroed (${Object.keys(credential)})`);
      }
    }
  });
});

Deno.test("rotate zeroes the retired keys (the old root key, its derived keys, data keys, signing seed); the vault goes on under the new ones", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["billing", "hr"])).close();
    const { vault, state } = await openVaultWithState({ home, password: PW, lockout: "off" });
    assert.ok(state instanceof UnlockedVault);
    for (const name of ["billing", "hr"]) await (await vault.connect(name)).close();
    const retired = state.keyBuffers();
    assert.ok(retired.every((b) => b.some((x) => x !== 0)), "keys held before rotate");
    await vault.keys.rotate(PW);
    for (const [i, b] of retired.entries()) {
      assert.ok(b.every((x) => x === 0), `retired buffer ${i} (${b.length} bytes) not zeroed`);
    }
    // The rotated vault works: it reads, writes, and a fresh unlock opens what it wrote.
    await (await vault.connect("hr")).close();
    await Deno.writeFile(`${home}/x.db`, new Uint8Array(), { mode: 0o600 });
    await vault.profiles.add({ name: "x", engine: "sqlite", database: `${home}/x.db` });
    await vault.close();
    const again = await openVaultWithState({ home, password: PW, lockout: "off" });
    assert.deepEqual(again.vault.profiles.list().map((p) => p.name).sort(), ["billing", "hr", "x"]);
    await again.vault.close();
  });
});
