/**
 * Backup bundles: round trip, every byte flip refused, wrong password, restore after a simulated
 * disaster, a tampered bundle never restored, automatic bundles before removing a profile with
 * the retention limit. The CLI runs as a separate process with the task's permissions.
 */

import assert from "node:assert/strict";
import { HecateError, initVault, openVault } from "../mod.ts";
import { BundleOpener, HEADER_BYTES } from "../src/backup/bundle.ts";
import { runHecate } from "./support/run_hecate.ts";

const MASTER = "backup-test-master-password";

async function sha(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function newHome(profiles: string[]): Promise<string> {
  const home = await Deno.makeTempDir({ prefix: "hecate-backup-" });
  await initVault({ home, password: MASTER, kdfIterations: 600_000 });
  const vault = await openVault({ home, password: MASTER });
  for (const name of profiles) {
    await vault.profiles.add({ name, engine: "sqlite", database: `/tmp/${name}.db` });
  }
  return home;
}

Deno.test("backup bundles", async (t) => {
  const home = await newHome(["alpha", "beta", "gamma"]);
  const pwFile = `${home}.pw`;
  await Deno.writeTextFile(pwFile, MASTER, { mode: 0o600 });
  const env = { HECATE_HOME: home, HECATE_PASSWORD_FILE: pwFile };
  const profileNames = async () => {
    const r = await runHecate(["server", "list"], { env });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  try {
    let bundle = "";
    await t.step("create, list and verify round trip", async () => {
      const made = await runHecate(["backup", "create"], { env });
      assert.equal(made.code, 0, made.stderr);
      bundle = made.stdout.trim();
      assert.match(bundle, /\/backups\/\d{4}-.*-manual\.hecate-backup$/);
      assert.equal((await Deno.stat(bundle)).mode! & 0o777, 0o600);
      const list = await runHecate(["backup", "list"], { env });
      assert.ok(list.stdout.includes(bundle));
      const v = await runHecate(["backup", "verify", bundle], { env });
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /^ok: .*3 profile\(s\), files: vault\.hecate, audit\.jsonl/);
      const out = `${home}.bundle`;
      const explicit = await runHecate(["backup", "create", "--output", out], { env });
      assert.equal(explicit.code, 0, explicit.stderr);
      const again = await runHecate(["backup", "create", "--output", out], { env });
      assert.equal(again.code, 10); // never overwrites
      await Deno.remove(out);
    });

    await t.step("a wrong password is refused with its own exit code", async () => {
      await Deno.writeTextFile(`${home}.bad`, "not-the-master-password", { mode: 0o600 });
      const r = await runHecate(["backup", "verify", bundle], {
        env: { ...env, HECATE_PASSWORD_FILE: `${home}.bad` },
      });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /Wrong password for this backup bundle/);
      await Deno.remove(`${home}.bad`);
    });

    await t.step("every single-byte change of a bundle is detected", async () => {
      const small = await newHome(["one"]);
      try {
        const v = await openVault({ home: small, password: MASTER });
        const { path } = await v.backups.create();
        const bytes = await Deno.readFile(path);
        const opener = new BundleOpener(MASTER);
        // The vault and the audit trail; never the chain state (a forward key).
        const names = (await opener.open(bytes)).files.map((f) => f.name);
        assert.deepEqual(names, ["vault.hecate", "audit.jsonl"]);
        const t0 = performance.now();
        for (let i = 0; i < bytes.length; i++) {
          const flipped = bytes.slice();
          flipped[i]! ^= i < HEADER_BYTES ? 0x80 : 0x01;
          try {
            await opener.open(flipped);
            assert.fail(`byte ${i} of ${bytes.length} changed and the bundle still opened`);
          } catch (e) {
            assert.ok(e instanceof HecateError, `byte ${i}: ${e}`);
            assert.ok(
              ["auth_failed", "vault_integrity", "unsupported_version"].includes(e.code),
              `byte ${i}: ${e.code}`,
            );
          }
        }
        // Truncation and extension too.
        for (const cut of [bytes.slice(0, -1), bytes.slice(0, HEADER_BYTES), new Uint8Array()]) {
          await assert.rejects(() => opener.open(cut), HecateError);
        }
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        await assert.rejects(() => opener.open(longer), HecateError);
        assert.ok(performance.now() - t0 < 60_000);
      } finally {
        await Deno.remove(small, { recursive: true });
      }
    });

    await t.step("a tampered bundle is never restored", async () => {
      const bad = `${home}.tampered`;
      const bytes = await Deno.readFile(bundle);
      bytes[bytes.length - 40]! ^= 0x04;
      await Deno.writeFile(bad, bytes);
      const before = await sha(`${home}/vault.hecate`);
      const r = await runHecate(["backup", "restore", bad], { env });
      assert.equal(r.code, 4, r.stderr);
      assert.equal(await sha(`${home}/vault.hecate`), before);
      await Deno.remove(bad);
    });

    await t.step("restore after the vault file was deleted", async () => {
      await Deno.remove(`${home}/vault.hecate`);
      assert.equal((await runHecate(["server", "list"], { env })).code, 8);
      const r = await runHecate(["backup", "restore", bundle], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^restored vault generation \d+\n$/);
      const names = await profileNames();
      for (const n of ["alpha", "beta", "gamma"]) assert.ok(names.includes(n), names);
    });

    await t.step("restore after the vault file was corrupted keeps the damaged copy", async () => {
      const f = await Deno.readFile(`${home}/vault.hecate`);
      f.fill(0x41, 100, 200);
      await Deno.writeFile(`${home}/vault.hecate`, f);
      assert.equal((await runHecate(["server", "list"], { env })).code, 4);
      const r = await runHecate(["backup", "restore", bundle], { env });
      assert.equal(r.code, 0, r.stderr);
      const kept = /kept in (\S+)\n/.exec(r.stdout)![1]!;
      assert.match(kept, /\/backups\/previous-/);
      assert.deepEqual(await Deno.readFile(`${kept}/vault.hecate`), f);
      assert.ok((await profileNames()).includes("gamma"));
    });

    await t.step("restore over a healthy vault keeps it as an automatic bundle", async () => {
      await runHecate(["server", "remove", "alpha"], { env });
      const before = (await openVault({ home, password: MASTER })).generation;
      const r = await runHecate(["backup", "restore", bundle], { env });
      assert.equal(r.code, 0, r.stderr);
      // Generations only go up, and the replaced vault is kept under its own number.
      const after = Number(/generation (\d+)/.exec(r.stdout)![1]);
      assert.equal(after, before + 1);
      assert.equal((await openVault({ home, password: MASTER })).generation, after);
      const keptAfter = [...Deno.readDirSync(`${home}/generations`)].map((e) => e.name);
      assert.ok(keptAfter.includes(`vault.${before}.hecate`));
      const kept = /kept in (\S+)\n/.exec(r.stdout)![1]!;
      assert.match(kept, /auto-.*-restore\.hecate-backup$/);
      const v = await runHecate(["backup", "verify", kept], { env });
      assert.match(v.stdout, /2 profile\(s\)/); // the vault as it was: alpha removed
      assert.ok((await profileNames()).includes("alpha"));
      const audit = await Deno.readTextFile(`${home}/audit.jsonl`);
      assert.ok(audit.includes('"event":"backup.restore"'));
    });

    await t.step(
      "an automatic bundle precedes every profile removal; retention prunes",
      async () => {
        const set = await runHecate(["backup", "retention", "2"], { env });
        assert.equal(set.stdout, "2\n");
        for (const n of ["alpha", "beta", "gamma"]) {
          const r = await runHecate(["server", "remove", n], { env });
          assert.equal(r.code, 0, r.stderr);
        }
        const list = (await runHecate(["backup", "list"], { env })).stdout.trim().split("\n");
        const auto = list.filter((l) => l.includes(" auto "));
        assert.equal(auto.length, 2, list.join("\n"));
        assert.ok(auto.every((l) => l.includes("profile-remove")));
        assert.equal(list.filter((l) => l.includes(" manual ")).length, 1); // never pruned
        // The newest one holds the vault just before "gamma" was removed.
        const newest = auto.at(-1)!.split(/\s+/).at(-1)!;
        const v = await runHecate(["backup", "verify", newest], { env });
        assert.match(v.stdout, /1 profile\(s\)/);
      },
    );
  } finally {
    await Deno.remove(home, { recursive: true });
    await Deno.remove(pwFile);
  }
});
