/**
 * Version history of profile secrets (issue 16): every change keeps the previous secrets sealed
 * in the record (default 5), listing never shows a value, rollback restores one, history survives
 * `rotate` and `passwd`, an API key sees only its scope's histories and cannot roll back, and
 * records written before history existed keep working.
 */

import assert from "node:assert/strict";
import { type ErrorCode, exitCodeFor } from "../src/errors.ts";
import { openVault } from "../src/hecate.ts";
import { historyOf, versionList } from "../src/lifecycle/history.ts";
import type { Profile } from "../src/profile.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
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

/** A postgres profile whose environment carries its password (no connection is made). */
async function withPg(home: string) {
  const vault = await vaultWith(home, ["lite"]);
  await vault.profiles.add({
    name: "pg",
    engine: "postgres",
    host: "127.0.0.1",
    user: "app",
    tls: { mode: "disable" },
    secrets: { password: { value: "pw-v1-canary" } },
  });
  return vault;
}

async function passwordOf(vault: Awaited<ReturnType<typeof openVault>>, name: string) {
  return (await vault.environment(name)).PGPASSWORD;
}

Deno.test("each secret change keeps the previous version; at most 5 by default; rollback restores one", async () => {
  await withHome(async (home) => {
    const vault = await withPg(home);
    for (let i = 2; i <= 8; i++) {
      await vault.profiles.edit("pg", { secrets: { password: { value: `pw-v${i}-canary` } } });
    }
    // A change without secrets makes no version.
    await vault.profiles.edit("pg", { port: 6432 });
    const list = await vault.profiles.history("pg");
    assert.deepEqual(list.map((v) => v.version), [8, 7, 6, 5, 4, 3]);
    assert.equal(list[0]!.current, true);
    assert.equal(list[0]!.reason, "edit");
    assert.equal(list[0]!.actor, "password");
    assert.ok(!JSON.stringify(list).includes("canary"), "no value in the listing");
    assert.ok(!JSON.stringify(await vault.profiles.show("pg")).includes("canary"));

    assert.equal(await vault.profiles.rollback("pg", 4), 9);
    assert.equal(await passwordOf(vault, "pg"), "pw-v4-canary");
    const after = await vault.profiles.history("pg");
    assert.equal(after[0]!.reason, "rollback to 4");
    assert.deepEqual(after.map((v) => v.version), [9, 8, 7, 6, 5, 4]);
    // Version 8 (the replaced one) is kept: rolling forward again works.
    await vault.profiles.rollback("pg", 8);
    assert.equal(await passwordOf(vault, "pg"), "pw-v8-canary");
    // Dropped, current and unknown versions are refused with usage, the vault unchanged.
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    await assertCode(() => vault.profiles.rollback("pg", 2), "usage");
    await assertCode(() => vault.profiles.rollback("pg", 10), "usage");
    await assertCode(() => vault.profiles.rollback("pg", 99), "usage");
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);

    const trail = await auditLines(home);
    const rb = trail.filter((l) => l.event === "profile.rollback");
    assert.equal(rb.filter((l) => l.outcome === "ok").length, 2);
    assert.equal(rb.filter((l) => l.outcome === "fail").length, 3);
    assert.ok(!JSON.stringify(trail).includes("canary"));
  });
});

Deno.test("keep-versions bounds the history; 0 keeps none", async () => {
  await withHome(async (home) => {
    const vault = await withPg(home);
    await vault.profiles.edit("pg", { secrets: { password: { value: "b" } }, keepVersions: 1 });
    await vault.profiles.edit("pg", { secrets: { password: { value: "c" } } });
    assert.deepEqual((await vault.profiles.history("pg")).map((v) => v.version), [3, 2]);
    await vault.profiles.edit("pg", { keepVersions: 0 });
    assert.deepEqual((await vault.profiles.history("pg")).map((v) => v.version), [3]);
    await assertCode(() => vault.profiles.edit("pg", { keepVersions: 101 }), "usage");
  });
});

Deno.test("history survives rotate and passwd, sealed: no old value in the file", async () => {
  await withHome(async (home) => {
    const vault = await withPg(home);
    await vault.profiles.edit("pg", { secrets: { password: { value: "pw-v2-canary" } } });
    await vault.keys.rotate(PW);
    const NEW = "history-test: a different master phrase";
    await vault.keys.changePassword(NEW, { kdfIterations: ITER });
    await vault.close();
    const file = new TextDecoder().decode(await Deno.readFile(`${home}/${VAULT_FILE}`));
    assert.ok(!file.includes("canary"));
    const again = await openVault({ home, password: NEW, lockout: "off" });
    assert.deepEqual((await again.profiles.history("pg")).map((v) => v.version), [2, 1]);
    await again.profiles.rollback("pg", 1);
    assert.equal(await passwordOf(again, "pg"), "pw-v1-canary");
    await again.close();
  });
});

Deno.test("an API key lists only its scope's histories and cannot roll back (CLI)", async () => {
  await withHome(async (home) => {
    const vault = await withPg(home);
    await vault.profiles.edit("lite", { secrets: { password: { value: "lite-v2-canary" } } });
    await vault.profiles.edit("pg", { secrets: { password: { value: "pw-v2-canary" } } });
    const key = await vault.apiKeys.create({ name: "ci", profiles: ["lite"], expires: null });
    await vault.close();
    const env = { HECATE_API_KEY: key };
    const ok = await runHecate(["--home", home, "server", "history", "lite", "--json"], { env });
    assert.equal(ok.code, 0, ok.stderr);
    const listed = JSON.parse(ok.stdout) as { version: number; actor: string }[];
    assert.deepEqual(listed.map((v) => v.version), [2, 1]);
    // The attack: ask for a profile outside the scope, then try to roll one back.
    const out = await runHecate(["--home", home, "server", "history", "pg"], { env });
    assert.equal(out.code, codeOf("profile_not_found"));
    assert.ok(!out.stdout.includes("pw-v"));
    const rb = await runHecate(["--home", home, "server", "rollback", "lite", "--version", "1"], {
      env,
    });
    assert.equal(rb.code, codeOf("no_credential"), rb.stderr);
    for (const r of [ok, out, rb]) assert.ok(!(r.stdout + r.stderr).includes("canary"));
  });
});

Deno.test("CLI: edit, history, rollback and show with the master password; no value printed", async () => {
  await withHome(async (home) => {
    const vault = await withPg(home);
    await vault.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const run = (args: string[], stdin?: string) =>
      runHecate(["--home", home, ...args], { env, ...(stdin ? { stdin } : {}) });
    const e = await run(["server", "edit", "pg", "--secret-stdin"], "pw-v2-canary\n");
    assert.equal(e.code, 0, e.stderr);
    const h = await run(["server", "history", "pg"]);
    assert.equal(h.code, 0, h.stderr);
    assert.match(
      h.stdout,
      /^ {3}2\* {2}\S+ {2}password {10}edit\n {3}1 {3}\S+ {2}password {10}add\n$/,
    );
    const rb = await run(["server", "rollback", "pg", "--version", "1"]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stdout, /version 1 restored as version 3/);
    const show = await run(["server", "show", "pg", "--json"]);
    assert.equal(JSON.parse(show.stdout).version, 3);
    const bad = await run(["server", "rollback", "pg", "--version", "3"]);
    assert.equal(bad.code, codeOf("usage"));
    for (const r of [e, h, rb, show, bad]) assert.ok(!(r.stdout + r.stderr).includes("canary"));
    const again = await openVault({ home, password: PW, lockout: "off" });
    assert.equal(await passwordOf(again, "pg"), "pw-v1-canary");
    await again.close();
  });
});

Deno.test("a record written before history existed has version 1 and a malformed history fails closed", () => {
  const old = {
    name: "old",
    engine: "postgres",
    host: "h",
    auth: "sql",
    tls: { mode: "verify" },
    secrets: { password: { value: "x" } },
    created: "2026-01-01T00:00:00.000Z",
    updated: "2026-02-01T00:00:00.000Z",
  } as Profile;
  assert.deepEqual(versionList(old), [{
    version: 1,
    time: "2026-02-01T00:00:00.000Z",
    actor: "unknown",
    reason: "initial",
    current: true,
  }]);
  for (const history of [1, { current: {}, previous: [] }, { current: null }, "x"]) {
    assert.throws(
      () => historyOf({ ...old, history } as unknown as Profile),
      (e: Error & { code?: string }) => e.code === "vault_integrity",
    );
  }
});

function codeOf(name: ErrorCode): number {
  return exitCodeFor(name);
}
