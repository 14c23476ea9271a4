/**
 * Credentials given through files and the environment, as an attacker on the same machine would
 * meet them: a password or API key file other users can read is refused (exit 11) before anything
 * is unlocked, and `hecate run` keeps the unlocking credentials and the one-time code from the
 * program it starts.
 */

import assert from "node:assert/strict";
import { VAULT_FILE } from "../src/vault/store.ts";
import { WITHHELD } from "../src/run/spawn.ts";
import { openVault } from "../src/hecate.ts";
import { passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";

Deno.test("a password or API key file open to other users is refused with exit 11, vault unchanged", async (t) => {
  await withHome(async (home) => {
    await vaultWith(home, ["lite"]);
    const key = await (await openVault({ home, password: PW })).apiKeys.create({
      name: "k",
      profiles: ["lite"],
      expires: null,
    });
    const vaultFile = `${home}/${VAULT_FILE}`;
    const list = (env: Record<string, string>, extra: string[] = []) =>
      runHecate(["--home", home, ...extra, "server", "list"], { env });

    const pw = await passwordFile(home);
    const keyFile = `${home}/key.txt`;
    await Deno.writeTextFile(keyFile, key + "\n", { mode: 0o600 });

    await t.step("0600 files are accepted", async () => {
      const byPw = await list({ HECATE_PASSWORD_FILE: pw });
      assert.equal(byPw.code, 0, byPw.stderr);
      const byKey = await list({}, ["--api-key-file", keyFile]);
      assert.equal(byKey.code, 0, byKey.stderr);
    });

    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      await t.step(`mode ${mode.toString(8)}: refused, named, with the chmod hint`, async () => {
        const before = await Deno.readFile(vaultFile);
        for (
          const [file, run] of [
            [pw, () => list({ HECATE_PASSWORD_FILE: pw })],
            [keyFile, () => list({}, ["--api-key-file", keyFile])],
          ] as const
        ) {
          await Deno.chmod(file, mode);
          const r = await run();
          await Deno.chmod(file, 0o600);
          assert.equal(r.code, 11, r.stderr);
          assert.ok(r.stderr.includes(`"${file}"`), r.stderr);
          assert.ok(r.stderr.includes(`chmod 600 ${file}`), r.stderr);
          assert.ok(!r.stderr.includes(PW) && !r.stderr.includes(key), r.stderr);
          assert.equal(r.stdout, "");
        }
        assert.deepEqual(await Deno.readFile(vaultFile), before);
      });
    }

    await t.step("a directory or a FIFO instead of a file: exit 11, without blocking", async () => {
      const dir = `${home}/pwdir`;
      await Deno.mkdir(dir, { mode: 0o700 });
      const r = await list({ HECATE_PASSWORD_FILE: dir });
      assert.equal(r.code, 11, r.stderr);
      assert.match(r.stderr, /is not a regular file/);
      const fifo = `${home}/pw.fifo`;
      const mk = await new Deno.Command("mkfifo", { args: ["-m", "600", fifo] }).output();
      assert.ok(mk.success);
      const f = await list({}, ["--api-key-file", fifo]);
      assert.equal(f.code, 11, f.stderr);
      assert.match(f.stderr, /is not a regular file/);
    });

    await t.step("a symlink to a private file is judged by the file", async () => {
      const link = `${home}/pw.link`;
      await Deno.symlink(pw, link);
      assert.equal((await list({ HECATE_PASSWORD_FILE: link })).code, 0);
      await Deno.chmod(pw, 0o644);
      const r = await list({ HECATE_PASSWORD_FILE: link });
      await Deno.chmod(pw, 0o600);
      assert.equal(r.code, 11, r.stderr);
    });

    await t.step("a missing file is still exit 19", async () => {
      const r = await list({ HECATE_PASSWORD_FILE: `${home}/missing` });
      assert.equal(r.code, 19, r.stderr);
    });
  });
});

Deno.test("hecate run: the child gets neither the API key, the password file nor the one-time code", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["lite"]);
    const key = await (await openVault({ home, password: PW })).apiKeys.create({
      name: "k",
      profiles: ["lite"],
      expires: null,
    });
    const pw = await passwordFile(home);
    const code = "493817";
    const childEnv = async (env: Record<string, string>) => {
      const r = await runHecate(
        ["--home", home, "run", "lite", "--", "sh", "-c", "cat /proc/self/environ"],
        { env },
      );
      assert.equal(r.code, 0, r.stderr);
      const vars = new Map(
        r.stdout.split("\0").filter((l) => l.includes("=")).map((l) => {
          const at = l.indexOf("=");
          return [l.slice(0, at), l.slice(at + 1)] as const;
        }),
      );
      assert.equal(vars.get("HECATE_PROFILE"), "lite"); // the child did get the connection
      return { vars, raw: r.stdout };
    };
    for (
      const env of [
        { HECATE_PASSWORD_FILE: pw, HECATE_TOTP: code, HECATE_NEW_PASSWORD_FILE: pw },
        { HECATE_API_KEY: key, HECATE_TOTP: code },
      ]
    ) {
      const { vars, raw } = await childEnv(env);
      for (const name of WITHHELD) assert.equal(vars.get(name), undefined, name);
      for (const name of ["HECATE_TOTP", "HECATE_API_KEY", "HECATE_PASSWORD_FILE"]) {
        assert.ok(WITHHELD.includes(name), name);
      }
      assert.ok(!raw.includes(key) && !raw.includes(code) && !raw.includes(pw));
    }
  });
});
