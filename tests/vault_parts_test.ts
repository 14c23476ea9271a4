/**
 * The library's `Vault` as a hub over parts (`profiles`, `apiKeys`, `totp`, `keys`, `backups`):
 * the parts share one state, write lock and audit sink; an API key reaches only what its scope
 * allows through any part; the old flat methods are gone.
 */

import assert from "node:assert/strict";
import type { AuditEvent } from "../src/audit/log.ts";
import { openVault, type Vault } from "../src/hecate.ts";
import { assertCode, PW, vaultWith, withHome } from "./support/access.ts";
import { VAULT_FILE } from "../src/vault/store.ts";

/** A sink that keeps what it is given. */
function memorySink(): { events: AuditEvent[]; append: (e: AuditEvent) => Promise<void> } {
  const events: AuditEvent[] = [];
  return {
    events,
    append: (e) => {
      events.push(e);
      return Promise.resolve();
    },
  };
}

Deno.test("the parts of one vault share its state: a write through one is seen by the others and by a new session", async () => {
  await withHome(async (home) => {
    const first = await vaultWith(home, ["alpha"]);
    const sink = memorySink();
    await using vault = await openVault({ home, password: PW, lockout: "off", audit: sink });
    const start = vault.generation;

    await Deno.writeFile(`${home}/beta.db`, new Uint8Array(), { mode: 0o600 });
    await vault.profiles.add({ name: "beta", engine: "sqlite", database: `${home}/beta.db` });
    assert.equal(vault.generation, start + 1);
    // apiKeys resolves the scope against the state profiles just wrote.
    await vault.apiKeys.create({ name: "ci", profiles: ["alpha", "beta"], expires: null });
    assert.deepEqual((await vault.apiKeys.list()).map((k) => k.profiles), [["alpha", "beta"]]);
    await vault.backups.setRetention(3);
    assert.equal(vault.backups.retention, 3);
    assert.equal(vault.generation, start + 3);
    assert.deepEqual(vault.totp.status(), { vault: false, profiles: [] });

    // The session opened before these writes applies its own change to the newest file.
    await first.profiles.edit("alpha", { tags: ["prod"] });
    await first.close();
    await using again = await openVault({ home, password: PW, lockout: "off" });
    assert.deepEqual(again.profiles.list().map((p) => [p.name, p.tags]), [
      ["alpha", ["prod"]],
      ["beta", undefined],
    ]);
    assert.equal(again.backups.retention, 3);
    assert.deepEqual((await again.apiKeys.list()).map((k) => k.name), ["ci"]);

    // Each change: the generation's vault.write record, then the operation's own record.
    const mine = sink.events.filter((e) => e.event !== "unlock").map((e) => e.event);
    assert.deepEqual(mine, [
      "vault.write",
      "profile.add",
      "vault.write",
      "apikey.create",
      "vault.write",
      "backup.retention",
    ]);
  });
});

Deno.test("a refused change through a part is audited as failed and leaves the vault file as it was", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["alpha", "beta"])).close();
    const sink = memorySink();
    await using vault = await openVault({ home, password: PW, lockout: "off", audit: sink });
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    await assertCode(
      () => vault.profiles.edit("alpha", { rename: "beta" }),
      "already_exists",
    );
    await assertCode(
      () => vault.apiKeys.create({ name: "ci", profiles: ["alpha", "gone"], expires: null }),
      "profile_not_found",
    );
    await assertCode(() => vault.totp.disable(undefined, "123456"), "usage");
    await assertCode(() => vault.backups.setRetention(0), "usage");
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
    assert.deepEqual(
      sink.events.filter((e) => e.outcome === "fail").map((e) => [e.event, e.reason]),
      [
        ["profile.edit", "already_exists"],
        ["apikey.create", "profile_not_found"],
        ["totp.disable", "usage"],
      ],
    );
  });
});

Deno.test("a vault opened with an API key reads its scope and every part refuses the rest with no_credential", async () => {
  await withHome(async (home) => {
    const owner = await vaultWith(home, ["alpha", "beta"]);
    const key = await owner.apiKeys.create({ name: "ci", profiles: ["alpha"], expires: null });
    await owner.close();
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);

    await using vault = await openVault({ home, apiKey: key, lockout: "off" });
    assert.deepEqual(vault.profiles.list().map((p) => p.name), ["alpha"]);
    assert.equal(vault.profiles.has("beta"), false);
    await assertCode(async () => await vault.profiles.show("beta"), "profile_not_found");
    const refused: [string, () => unknown][] = [
      ["profiles.add", () => vault.profiles.add({ name: "x", engine: "sqlite", database: "x" })],
      ["profiles.edit", () => vault.profiles.edit("alpha", { tags: ["t"] })],
      ["profiles.remove", () => vault.profiles.remove("alpha")],
      [
        "apiKeys.create",
        () => vault.apiKeys.create({ name: "k", profiles: ["alpha"], expires: null }),
      ],
      ["apiKeys.list", () => vault.apiKeys.list()],
      ["apiKeys.revoke", () => vault.apiKeys.revoke("ci")],
      ["totp.status", () => vault.totp.status()],
      ["totp.beginSetup", () => vault.totp.beginSetup("alpha")],
      ["keys.kdfIterations", () => vault.keys.kdfIterations],
      ["keys.rotate", () => vault.keys.rotate(PW)],
      ["keys.changePassword", () => vault.keys.changePassword(PW)],
      ["backups.create", () => vault.backups.create()],
      ["backups.auto", () => vault.backups.auto("test")],
      ["backups.retention", () => vault.backups.retention],
      ["backups.setRetention", () => vault.backups.setRetention(4)],
      ["auditChainKey", () => vault.auditChainKey()],
    ];
    for (const [what, call] of refused) {
      await assertCode(async () => await call(), "no_credential", what);
    }
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
  });
});

Deno.test("the hub has no flat methods left over from before the split", async () => {
  await withHome(async (home) => {
    await using vault: Vault = await vaultWith(home, []);
    const gone = [
      "showProfile",
      "hasProfile",
      "addProfile",
      "editProfile",
      "removeProfile",
      "createApiKey",
      "revokeApiKey",
      "totpStatus",
      "beginTotpSetup",
      "enableTotp",
      "disableTotp",
      "rotate",
      "changePassword",
      "kdfIterations",
      "backup",
      "autoBackup",
      "backupRetention",
      "setBackupRetention",
      "markFactorPassed",
      "spendVaultRecoveryCode",
      "upgradeKdf",
    ];
    assert.deepEqual(gone.filter((name) => name in vault), []);
    assert.equal(typeof vault.profiles.list, "function");
    assert.equal(typeof vault.apiKeys.create, "function");
    assert.equal(typeof vault.totp.enable, "function");
    assert.equal(typeof vault.keys.rotate, "function");
    assert.equal(typeof vault.backups.create, "function");
  });
});
