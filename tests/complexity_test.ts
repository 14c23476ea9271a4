/**
 * Complexity rules for stored database passwords: `server add/edit --complexity` refuses a
 * password that falls short (exit code of `usage`, one line, no value echoed, vault unchanged),
 * and generated passwords meet the rule's length.
 */

import assert from "node:assert/strict";
import { exitCodeFor } from "../src/errors.ts";
import { classCount, parseComplexity } from "../src/lifecycle/complexity.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { assertCode, passwordFile, runHecate, vaultWith, withHome } from "./support/access.ts";

Deno.test("CLI: a weak password is refused by the profile's rule, the vault left as it was", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const add = (pw: string) =>
      runHecate([
        "--home",
        home,
        "server",
        "add",
        "pg",
        "--engine",
        "postgres",
        "--host",
        "127.0.0.1",
        "--user",
        "app",
        "--complexity",
        "length=14,classes=3",
        "--secret-stdin",
      ], { env, stdin: pw + "\n" });
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    for (const weak of ["short-canary1", "alllowercasecanary"]) {
      const r = await add(weak);
      assert.equal(r.code, exitCodeFor("usage"), r.stderr);
      assert.match(r.stderr, /does not meet its complexity rule: it needs at least 14 characters/);
      assert.ok(!(r.stdout + r.stderr).includes("canary"));
      assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
    }
    const ok = await add("Strong-canary-42");
    assert.equal(ok.code, 0, ok.stderr);
    // An edit to a weak password is refused too, and --no-complexity lifts the rule.
    const edit = (pw: string, ...more: string[]) =>
      runHecate(["--home", home, "server", "edit", "pg", "--secret-stdin", ...more], {
        env,
        stdin: pw + "\n",
      });
    const weakEdit = await edit("weakcanary");
    assert.equal(weakEdit.code, exitCodeFor("usage"));
    assert.ok(!weakEdit.stderr.includes("weakcanary"));
    assert.equal((await edit("weakcanary", "--no-complexity")).code, 0);
  });
});

Deno.test("rule parsing and class counting", async () => {
  assert.deepEqual(parseComplexity("length=16,classes=3"), { minLength: 16, classes: 3 });
  assert.deepEqual(parseComplexity("classes=4"), { classes: 4 });
  for (const bad of ["", "length=0", "classes=5", "length=16;classes=2", "len=3", "length=999"]) {
    await assertCode(() => Promise.resolve().then(() => parseComplexity(bad)), "usage");
  }
  assert.equal(classCount("aA1!"), 4);
  assert.equal(classCount("abc"), 1);
});
