/**
 * Attacks on backups and vault generations (issue 11, findings 5-7 and the foreign-bundle and
 * audit-segment findings), each performed through files and the real CLI as the attacker would:
 *
 * - guessing the password through `backup verify` during a lockout (refused, exit 13, audited);
 * - restoring a bundle made before TOTP was enabled, without a code (refused, exit 16), and with
 *   only the bundle's old password (refused, exit 3); a legit restore keeps TOTP on and the
 *   current password;
 * - rolling the audit trail back through a restore (restore refused; the trail stays reported);
 * - putting a kept generation back over the vault after `passwd` and `rotate` (exit 25 on the
 *   password and API-key paths, and from `audit verify` when the gate file is gone too);
 * - restoring a bundle of another vault (refused without --foreign).
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { totpCode } from "../src/access/totp.ts";
import { FileAuditLog } from "../src/audit/log.ts";
import { BundleOpener } from "../src/backup/bundle.ts";
import { auditLines, PW, runHecate, vaultWith, withHome } from "./support/access.ts";

const OLD_PW = PW;
const NEW_PW = "backup-guard: a brand new master password";

async function sha(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function pwFile(home: string, name: string, password: string): Promise<string> {
  const path = `${home}.${name}`;
  await Deno.writeTextFile(path, password + "\n", { mode: 0o600 });
  return path;
}

/** Every trail line (closed segments too), parsed. */
async function trail(home: string): Promise<Record<string, unknown>[]> {
  return await auditLines(home);
}

Deno.test("backup verify: guesses during a lockout are refused (exit 13), counted and audited", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["alpha"]);
    const { path: bundle } = await vault.backups.create();
    const bad = await pwFile(home, "bad", "not the master password at all");
    const good = await pwFile(home, "good", PW);
    try {
      const env = (file: string) => ({
        HECATE_HOME: home,
        HECATE_PASSWORD_FILE: file,
        HECATE_LOCKOUT: "3/10m",
      });
      const guess = () => runHecate(["backup", "verify", bundle], { env: env(bad) });
      for (let i = 0; i < 3; i++) assert.equal((await guess()).code, 3);
      // Locked out: a further guess is refused before any work, and so is the right password,
      // through verify and through a normal unlock alike (one subject, `password`).
      const refused = await guess();
      assert.equal(refused.code, 13, refused.stderr);
      assert.match(refused.stderr, /locked until/);
      const right = await runHecate(["backup", "verify", bundle], { env: env(good) });
      assert.equal(right.code, 13, right.stderr);
      const unlock = await runHecate(["server", "list"], { env: env(good) });
      assert.equal(unlock.code, 13, unlock.stderr);

      const lines = await trail(home);
      const verify = lines.filter((l) => l.event === "backup.verify");
      assert.deepEqual(
        verify.map((l) => [l.outcome, l.reason]),
        [
          ["fail", "auth_failed"],
          ["fail", "auth_failed"],
          ["fail", "auth_failed"],
          ["fail", "locked_out"],
          ["fail", "locked_out"],
        ],
      );
      assert.equal(lines.filter((l) => l.event === "lockout").length, 1);
      // No password in any line.
      const text = await Deno.readTextFile(`${home}/audit.jsonl`);
      assert.ok(!text.includes("not the master password") && !text.includes(PW));
    } finally {
      await Deno.remove(bad);
      await Deno.remove(good);
    }
  });
});

Deno.test("backup verify succeeds with the right password and is audited", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["alpha"]);
    const { path: bundle } = await vault.backups.create();
    const good = await pwFile(home, "good", PW);
    try {
      const r = await runHecate(["backup", "verify", bundle], {
        env: { HECATE_HOME: home, HECATE_PASSWORD_FILE: good },
      });
      assert.equal(r.code, 0, r.stderr);
      const ok = (await trail(home)).filter((l) => l.event === "backup.verify");
      assert.equal(ok.length, 1);
      assert.equal(ok[0]!.outcome, "ok");
    } finally {
      await Deno.remove(good);
    }
  });
});

Deno.test("restore of a pre-TOTP, pre-passwd bundle: refused without the code (16) or with only the old password (3); a legit restore keeps TOTP and the current password", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["alpha", "beta"]);
    const { path: bundle } = await vault.backups.create(); // before TOTP and before passwd
    const setup = await vault.totp.beginSetup();
    const recovery = await vault.totp.enable(setup, await totpCode(setup.secret, new Date()));
    await vault.keys.changePassword(NEW_PW);
    await vault.profiles.remove("beta");
    const oldPw = await pwFile(home, "old", OLD_PW);
    const newPw = await pwFile(home, "new", NEW_PW);
    const env = (file: string, extra: Record<string, string> = {}) => ({
      HECATE_HOME: home,
      HECATE_PASSWORD_FILE: file,
      HECATE_LOCKOUT: "off",
      ...extra,
    });
    try {
      const before = await sha(`${home}/vault.hecate`);
      // The attacker holds the old password and the old bundle, not the current code.
      const noCode = await runHecate(["backup", "restore", bundle], { env: env(oldPw) });
      assert.equal(noCode.code, 3, noCode.stderr); // the current vault refuses the old password
      const oldWithStdin = await runHecate(
        ["backup", "restore", bundle, "--bundle-password-stdin"],
        { env: env(newPw), stdin: `${OLD_PW}\n` },
      );
      assert.equal(oldWithStdin.code, 16, oldWithStdin.stderr); // current password, no code
      assert.match(oldWithStdin.stderr, /one-time code is required/);
      assert.equal(await sha(`${home}/vault.hecate`), before, "vault unchanged");
      const fails = (await trail(home)).filter((l) => l.outcome === "fail");
      assert.ok(fails.some((l) => l.event === "unlock" && l.reason === "auth_failed"));
      assert.ok(fails.some((l) => l.event === "unlock" && l.reason === "totp_failed"));

      // The owner: current password, a code, and the bundle's old password.
      const code = await totpCode(setup.secret, new Date(Date.now() + 30_000));
      const legit = await runHecate(
        ["backup", "restore", bundle, "--bundle-password-stdin"],
        { env: env(newPw, { HECATE_TOTP: code }), stdin: `${OLD_PW}\n` },
      );
      assert.equal(legit.code, 0, legit.stderr);
      // Profiles come back; TOTP stays on; the current password opens it, the old one does not.
      const noTotp = await runHecate(["server", "list"], { env: env(newPw) });
      assert.equal(noTotp.code, 16, "TOTP was turned off by the restore");
      // A recovery code: the next TOTP step may not have come yet (each step is accepted once).
      const list = await runHecate(["server", "list"], {
        env: env(newPw, { HECATE_TOTP: recovery[0]! }),
      });
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /beta/);
      const old = await runHecate(["server", "list"], { env: env(oldPw) });
      assert.equal(old.code, 3, "the bundle's old password opens the restored vault");
      const restored = (await trail(home)).filter((l) => l.event === "backup.restore");
      assert.equal(restored.at(-1)!.outcome, "ok");
    } finally {
      await Deno.remove(oldPw);
      await Deno.remove(newPw);
    }
  });
});

Deno.test("the audit trail cannot be rolled back through a restore", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["alpha"]);
    const { path: bundle } = await vault.backups.create();
    // Entries made after the bundle: what the attacker wants gone.
    await vault.profiles.add({ name: "later", engine: "sqlite", database: `${home}/alpha.db` });
    const names = (await new BundleOpener(PW).open(await Deno.readFile(bundle))).files.map((f) =>
      f.name
    );
    assert.ok(!names.includes("audit.state"), "the bundle carries the chain state");
    const good = await pwFile(home, "good", PW);
    const env = { HECATE_HOME: home, HECATE_PASSWORD_FILE: good };
    try {
      // The attack: delete the trail and its state, let the owner restore.
      await Deno.remove(`${home}/audit.jsonl`);
      await Deno.remove(`${home}/audit.state`);
      const before = await sha(`${home}/vault.hecate`);
      const r = await runHecate(["backup", "restore", bundle], { env });
      assert.equal(r.code, 12, r.stderr); // the restore cannot be recorded: refused
      assert.equal(await sha(`${home}/vault.hecate`), before);
      await assert.rejects(Deno.stat(`${home}/audit.jsonl`), Deno.errors.NotFound);
      const v = await runHecate(["audit", "verify"], { env });
      assert.equal(v.code, 20, v.stdout + v.stderr); // still reported, never "intact"
      assert.doesNotMatch(v.stdout, /intact/);

      // The vault deleted too: the restore starts a new chain, says so, and archives the
      // bundle's trail instead of writing it back as the home's trail.
      await Deno.remove(`${home}/vault.hecate`);
      const again = await runHecate(["backup", "restore", bundle], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /a new one starts with this restore/);
      const archived = /archived in (\S+)/.exec(again.stderr)![1]!;
      assert.ok((await Deno.stat(`${archived}/audit.jsonl`)).isFile);
      const lines = await trail(home);
      assert.equal(lines[0]!.seq, 1);
      assert.ok(lines.every((l) => l.event !== "init"), "the bundle's trail was written back");
      const restore = lines.find((l) => l.event === "backup.restore")!;
      assert.equal((restore.detail as Record<string, unknown>).new_chain, true);
      const v2 = await runHecate(["audit", "verify"], { env });
      assert.equal(v2.code, 0, v2.stderr);
      assert.match(v2.stdout, /started by a restore/);
    } finally {
      await Deno.remove(good);
    }
  });
});

Deno.test("a kept generation put back over the vault is refused (exit 25) on every path", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["alpha"]);
    const apiKey = await vault.apiKeys.create({ name: "cron", profiles: ["alpha"], expires: null });
    const { path: bundle } = await vault.backups.create();
    await vault.keys.changePassword(NEW_PW);
    await vault.keys.rotate(NEW_PW);
    const gen = vault.generation;
    const kept = [...Deno.readDirSync(`${home}/generations`)].map((e) => e.name);
    const old = kept.find((n) => n === "vault.3.hecate") ?? kept.sort()[0]!;
    const oldPw = await pwFile(home, "old", OLD_PW);
    const newPw = await pwFile(home, "new", NEW_PW);
    try {
      // The attack: an old generation (old password) over the current file.
      await Deno.copyFile(`${home}/generations/${old}`, `${home}/vault.hecate`);
      const env = { HECATE_HOME: home, HECATE_PASSWORD_FILE: oldPw };
      const r = await runHecate(["server", "list"], { env });
      assert.equal(r.code, 25, r.stderr);
      assert.match(r.stderr, /already written here/);
      const byKey = await runHecate(["server", "list"], {
        env: { HECATE_HOME: home, HECATE_API_KEY: apiKey },
      });
      assert.equal(byKey.code, 25, byKey.stderr);
      const lines = await trail(home);
      assert.ok(lines.some((l) => l.event === "unlock" && l.reason === "vault_rolled_back"));

      // The attacker also removes the gate file: `audit verify` still finds it in the trail.
      await Deno.remove(`${home}/generation.state.json`);
      const v = await runHecate(["audit", "verify"], { env });
      assert.equal(v.code, 25, v.stdout + v.stderr);
      assert.match(v.stderr, /verified audit trail/);

      // The owner puts things right with a restore: a new, higher generation that unlocks.
      await Deno.remove(`${home}/vault.hecate`);
      const restore = await runHecate(["backup", "restore", bundle], { env });
      assert.equal(restore.code, 0, restore.stderr);
      const after = Number(/generation (\d+)/.exec(restore.stdout)![1]);
      assert.ok(after > gen, `${after} > ${gen}`);
      const ok = await runHecate(["server", "list"], { env });
      assert.equal(ok.code, 0, ok.stderr);
      const v2 = await runHecate(["audit", "verify"], { env });
      assert.equal(v2.code, 0, v2.stdout + v2.stderr);
      await assert.rejects(() => openVault({ home, password: NEW_PW, lockout: "off" }));
    } finally {
      await Deno.remove(oldPw);
      await Deno.remove(newPw);
    }
  });
});

Deno.test("a bundle of another vault is refused unless --foreign", async () => {
  await withHome(async (home) => {
    await withHome(async (other) => {
      await vaultWith(home, ["mine"]);
      const theirs = await vaultWith(other, ["theirs"]);
      const { path: bundle } = await theirs.backups.create();
      const good = await pwFile(home, "good", PW);
      const env = { HECATE_HOME: home, HECATE_PASSWORD_FILE: good };
      try {
        const before = await sha(`${home}/vault.hecate`);
        const r = await runHecate(["backup", "restore", bundle], { env });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /another vault/);
        assert.equal(await sha(`${home}/vault.hecate`), before);
        const f = await runHecate(["backup", "restore", bundle, "--foreign"], { env });
        assert.equal(f.code, 0, f.stderr);
        const list = await runHecate(["server", "list"], { env });
        assert.match(list.stdout, /theirs/);
        const v = await runHecate(["audit", "verify"], { env });
        assert.equal(v.code, 0, v.stdout + v.stderr); // the home's trail goes on
      } finally {
        await Deno.remove(good);
      }
    });
  });
});

Deno.test("bundles carry the closed audit segments, never the chain state", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["alpha"]);
    const log = new FileAuditLog(home, { segmentBytes: 300 });
    for (let i = 0; i < 4; i++) {
      await log.append({ event: "audit.export", actor: { kind: "password" }, outcome: "ok" });
    }
    const { path } = await vault.backups.create();
    const names = (await new BundleOpener(PW).open(await Deno.readFile(path))).files.map((f) =>
      f.name
    );
    assert.equal(names[0], "vault.hecate");
    assert.ok(names.some((n) => n.startsWith("audit.segments/audit-")), names.join(","));
    assert.ok(names.includes("audit.jsonl"));
    assert.ok(!names.includes("audit.state"));
    const segs = [...Deno.readDirSync(`${home}/audit.segments`)].length;
    assert.equal(names.filter((n) => n.startsWith("audit.segments/")).length, segs);
  });
});

Deno.test("a successful backup verify does not clear the count of wrong current passwords", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["alpha"]);
    const { path: bundle } = await vault.backups.create();
    const bad = await pwFile(home, "bad", "not the master password at all");
    const good = await pwFile(home, "good", PW);
    const env = (file: string) => ({
      HECATE_HOME: home,
      HECATE_PASSWORD_FILE: file,
      HECATE_LOCKOUT: "3/10m",
    });
    try {
      // Guesses at the current password, interleaved with a bundle opened with a known
      // (old) password: the bundle's success must not reset the count.
      for (let i = 0; i < 2; i++) {
        assert.equal((await runHecate(["server", "list"], { env: env(bad) })).code, 3);
      }
      const v = await runHecate(["backup", "verify", bundle], { env: env(good) });
      assert.equal(v.code, 0, v.stderr);
      assert.equal((await runHecate(["server", "list"], { env: env(bad) })).code, 3);
      const locked = await runHecate(["server", "list"], { env: env(good) });
      assert.equal(locked.code, 13, locked.stderr);
    } finally {
      await Deno.remove(bad);
      await Deno.remove(good);
    }
  });
});
