/**
 * Stored secrets that are not database logins (issue 16): `hecate secret` and `vault.secrets`.
 * The tests perform the attacks: an API key reads a secret outside its scope (library and CLI),
 * a value is looked for in argv, stderr, the audit trail and the vault file (canaries), `get` is
 * run on a terminal, a removed secret is read again; and history is kept across `rotate` and
 * `passwd`.
 */

import assert from "node:assert/strict";
import { type ErrorCode, exitCodeFor } from "../src/errors.ts";
import { openVault } from "../src/hecate.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { openRecord, sealRecord } from "../src/vault/keyring.ts";
import { AuthenticationFailure } from "../src/vault/primitives.ts";
import {
  assertCode,
  ITER,
  passwordFile,
  PW,
  ROOT,
  runHecate,
  vaultWith,
  withHome,
} from "./support/access.ts";
import { HECATE_PERMISSIONS } from "../scripts/permissions.ts";

const CANARY = "sekret-canary-";

function codeOf(name: ErrorCode): number {
  return exitCodeFor(name);
}

async function fileText(home: string, name: string): Promise<string> {
  return new TextDecoder().decode(await Deno.readFile(`${home}/${name}`));
}

Deno.test("library: set keeps versions (default 5), list and history show no value, remove then get is not found", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["lite"]);
    for (let i = 1; i <= 8; i++) await vault.secrets.set("stripe", `${CANARY}v${i}`);
    assert.equal(await vault.secrets.set("stripe", `${CANARY}v8`), 8, "same value: no version");
    assert.equal(await vault.secrets.get("stripe"), `${CANARY}v8`);
    const h = await vault.secrets.history("stripe");
    assert.deepEqual(h.map((v) => v.version), [8, 7, 6, 5, 4, 3]);
    assert.equal(h[0]!.current, true);
    assert.equal(h[0]!.actor, "password");
    const list = await vault.secrets.list();
    assert.deepEqual(list.map((s) => [s.name, s.version]), [["stripe", 8]]);
    // A secret is not a profile, and a profile is not a secret, though names may be equal.
    assert.deepEqual(vault.profiles.list().map((p) => p.name), ["lite"]);
    await assertCode(() => vault.secrets.get("lite"), "profile_not_found");
    await vault.secrets.set("lite", `${CANARY}same-name`);
    assert.equal(await vault.secrets.get("lite"), `${CANARY}same-name`);
    assert.equal((await vault.profiles.show("lite")).engine, "sqlite");
    assert.ok(!JSON.stringify([h, list, vault.profiles.list()]).includes(CANARY));

    await vault.secrets.remove("stripe");
    await assertCode(() => vault.secrets.get("stripe"), "profile_not_found");
    await assertCode(() => vault.secrets.history("stripe"), "profile_not_found");
    await assertCode(() => vault.secrets.remove("stripe"), "profile_not_found");
    await vault.close();

    const file = await fileText(home, VAULT_FILE);
    assert.ok(!file.includes(CANARY), "sealed: no value in the vault file");
    const trail = await fileText(home, "audit.jsonl");
    assert.ok(!trail.includes(CANARY), "no value in the audit trail");
    for (const e of ["secret.set", "secret.read", "secret.history", "secret.remove"]) {
      assert.ok(trail.includes(`"event":"${e}"`), `${e} is audited`);
    }
  });
});

Deno.test("library: complexity rule kept on the secret; a weak value leaves the vault as it was", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.secrets.set("hook", "Abcdefgh1234", { complexity: { minLength: 12, classes: 3 } });
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const e = await assertCode(() => vault.secrets.set("hook", `short${CANARY}`), "usage");
    assert.match(e.message, /at least 12 characters/);
    assert.ok(!e.message.includes(CANARY));
    await assertCode(() => vault.secrets.set("hook", "alllowercaseletters"), "usage");
    await assertCode(() => vault.secrets.set("hook", ""), "usage");
    await assertCode(() => vault.secrets.set("bad name", "x"), "invalid_profile");
    await assertCode(() => vault.secrets.set("hook", "Xyz1234567890", { keep: 101 }), "usage");
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
    // Vault-wide defaults apply where the secret sets none; its own rule wins.
    await assertCode(
      () => vault.secrets.set("other", "abc", { defaults: { complexity: { minLength: 8 } } }),
      "usage",
    );
    await vault.secrets.set("hook", "Xyz1234567890!", { defaults: { complexity: { classes: 4 } } });
    await vault.close();
  });
});

Deno.test("library: an API key reads only the secrets in its scope and cannot set or remove", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["lite"]);
    await vault.secrets.set("a", `${CANARY}a`);
    await vault.secrets.set("b", `${CANARY}b`);
    const key = await vault.apiKeys.create({
      name: "ci",
      profiles: [],
      secrets: ["a"],
      expires: null,
    });
    const profileOnly = await vault.apiKeys.create({
      name: "db",
      profiles: ["lite"],
      expires: null,
    });
    const listed = await vault.apiKeys.list();
    assert.deepEqual(listed.map((k) => [k.name, k.profiles, k.secrets]), [
      ["ci", [], ["a"]],
      ["db", ["lite"], []],
    ]);
    await assertCode(
      () => vault.apiKeys.create({ name: "x", profiles: [], secrets: ["nope"], expires: null }),
      "profile_not_found",
    );
    await vault.close();

    const scoped = await openVault({ home, apiKey: key, lockout: "off" });
    assert.equal(await scoped.secrets.get("a"), `${CANARY}a`);
    assert.deepEqual((await scoped.secrets.list()).map((s) => s.name), ["a"]);
    // The attack: read, list the history of, change and remove what is out of scope.
    const out = await assertCode(() => scoped.secrets.get("b"), "profile_not_found");
    assert.ok(!out.message.includes(CANARY));
    await assertCode(() => scoped.secrets.history("b"), "profile_not_found");
    await assertCode(() => scoped.secrets.set("a", "x"), "no_credential");
    await assertCode(() => scoped.secrets.remove("a"), "no_credential");
    assert.deepEqual(scoped.profiles.list(), [], "a secret in scope is no profile");
    await scoped.close();

    const db = await openVault({ home, apiKey: profileOnly, lockout: "off" });
    await assertCode(() => db.secrets.get("a"), "profile_not_found");
    assert.deepEqual(await db.secrets.list(), []);
    await db.close();
  });
});

Deno.test("history survives rotate and passwd; a key made before still reads its secret", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.secrets.set("s", `${CANARY}1`);
    await vault.secrets.set("s", `${CANARY}2`);
    const key = await vault.apiKeys.create({
      name: "k",
      profiles: [],
      secrets: ["s"],
      expires: null,
    });
    await vault.keys.rotate(PW);
    const NEW = "secrets-test: another long master phrase";
    await vault.keys.changePassword(NEW, { kdfIterations: ITER });
    await vault.close();
    assert.ok(!(await fileText(home, VAULT_FILE)).includes(CANARY));
    const again = await openVault({ home, password: NEW, lockout: "off" });
    assert.deepEqual((await again.secrets.history("s")).map((v) => v.version), [2, 1]);
    assert.equal(await again.secrets.get("s"), `${CANARY}2`);
    await again.secrets.set("s", `${CANARY}3`);
    assert.deepEqual((await again.secrets.history("s")).map((v) => v.version), [3, 2, 1]);
    await again.close();
    const scoped = await openVault({ home, apiKey: key, lockout: "off" });
    assert.equal(await scoped.secrets.get("s"), `${CANARY}3`);
    await scoped.close();
  });
});

Deno.test("CLI: set from stdin, get to a pipe, list, history, remove; the value only on get's stdout", async () => {
  await withHome(async (home) => {
    (await vaultWith(home, [])).close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const runs: { args: string[]; stdout: string; stderr: string }[] = [];
    const run = async (args: string[], stdin?: string) => {
      const r = await runHecate(["--home", home, ...args], { env, ...(stdin ? { stdin } : {}) });
      runs.push({ args, ...r });
      return r;
    };
    const set = await run(["secret", "set", "tok", "--stdin", "--keep", "2"], `${CANARY}1\n`);
    assert.equal(set.code, 0, set.stderr);
    assert.equal((await run(["secret", "set", "tok", "--stdin"], `${CANARY}2\n`)).code, 0);
    const get = await run(["secret", "get", "tok"]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, `${CANARY}2`);
    const list = await run(["secret", "list", "--json"]);
    assert.deepEqual(JSON.parse(list.stdout).map((s: { name: string }) => s.name), ["tok"]);
    const hist = await run(["secret", "history", "tok"]);
    assert.match(hist.stdout, /^ {3}2\* {2}\S+ {2}password {10}set\n {3}1 {3}\S+ {2}password/);
    // No value on the command line, and no terminal to ask on: refused, nothing stored.
    const none = await run(["secret", "set", "other"]);
    assert.equal(none.code, codeOf("no_credential"));
    const weak = await run(["secret", "set", "tok", "--stdin", "--min-length", "64"], "short\n");
    assert.equal(weak.code, codeOf("usage"));
    assert.equal((await run(["secret", "remove", "tok"])).code, 0);
    const gone = await run(["secret", "get", "tok"]);
    assert.equal(gone.code, codeOf("profile_not_found"));
    assert.match(gone.stderr, /No secret named "tok"/);

    for (const r of runs) {
      assert.ok(!r.args.join(" ").includes(CANARY), "never in argv");
      assert.ok(!r.stderr.includes(CANARY), `not on stderr of ${r.args.join(" ")}`);
      if (r.args[1] !== "get") {
        assert.ok(!r.stdout.includes(CANARY), `not on stdout of ${r.args.join(" ")}`);
      }
    }
    assert.ok(!(await fileText(home, "audit.jsonl")).includes(CANARY), "not in the trail");
  });
});

Deno.test("CLI: an API key without the secret in scope cannot read it, nor inject it with run --secret", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["lite"]);
    await vault.secrets.set("mine", `${CANARY}mine`);
    await vault.secrets.set("theirs", `${CANARY}theirs`);
    await vault.close();
    const pw = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const made = await runHecate([
      "--home",
      home,
      "apikey",
      "create",
      "app",
      "--server",
      "lite",
      "--secret",
      "mine",
      "--allow-credentials",
    ], { env: pw });
    assert.equal(made.code, 0, made.stderr);
    const listed = await runHecate(["--home", home, "apikey", "list", "--json"], { env: pw });
    assert.deepEqual(JSON.parse(listed.stdout)[0].secrets, ["mine"]);
    const env = { HECATE_API_KEY: made.stdout.trim() };
    const ok = await runHecate(["--home", home, "secret", "get", "mine"], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `${CANARY}mine`);
    // The attacks: read, list, inject what is outside the scope.
    const denied = await runHecate(["--home", home, "secret", "get", "theirs"], { env });
    assert.equal(denied.code, codeOf("profile_not_found"));
    const list = await runHecate(["--home", home, "secret", "list"], { env });
    assert.ok(!list.stdout.includes("theirs"));
    const script = ["sh", "-c", 'printf "%s" "$TOKEN"'];
    const inj = await runHecate(
      ["--home", home, "run", "lite", "--secret", "TOKEN=theirs", "--", ...script],
      { env },
    );
    assert.equal(inj.code, codeOf("profile_not_found"));
    assert.equal(inj.stdout, "", "the program never ran");
    const good = await runHecate(
      ["--home", home, "run", "lite", "--secret", "TOKEN=mine", "--", ...script],
      { env },
    );
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout, `${CANARY}mine`);
    // 'secret run': the same without a profile; the program's exit code comes back.
    const solo = await runHecate(
      ["--home", home, "secret", "run", "--secret", "TOKEN=mine", "--", ...script],
      { env },
    );
    assert.equal(solo.code, 0, solo.stderr);
    assert.equal(solo.stdout, `${CANARY}mine`);
    const soloDenied = await runHecate(
      ["--home", home, "secret", "run", "--secret", "TOKEN=theirs", "--", ...script],
      { env },
    );
    assert.equal(soloDenied.code, codeOf("profile_not_found"));
    assert.equal(soloDenied.stdout, "", "the program never ran");
    const exit3 = await runHecate(
      ["--home", home, "secret", "run", "--secret", "TOKEN=mine", "--", "sh", "-c", "exit 3"],
      { env },
    );
    assert.equal(exit3.code, 3, exit3.stderr);
    const noSecret = await runHecate(["--home", home, "secret", "run", "--", ...script], { env });
    assert.equal(noSecret.code, codeOf("usage"));
    for (const r of [denied, list, inj, good, ok, solo, soloDenied, exit3]) {
      assert.ok(!r.stderr.includes(CANARY));
    }
    const trail = await fileText(home, "audit.jsonl");
    assert.ok(!trail.includes(CANARY));
    assert.ok(/"event":"secret.read"[^\n]*"outcome":"fail"[^\n]*"theirs"/.test(trail));
    const runs = trail.split("\n").filter((l) => l.includes('"event":"run"'));
    assert.ok(runs.some((l) => l.includes('"secrets":"mine"') && l.includes('"exit_code":3')));
  });
});

Deno.test("CLI: get refuses a terminal unless --reveal (run under script(1))", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.secrets.set("t", `${CANARY}tty`);
    await vault.close();
    const pwFile = await passwordFile(home);
    const quote = (s: string) => `'${s.replaceAll("'", `'"'"'`)}'`;
    const onTty = async (extra: string[]) => {
      const cmd = [
        Deno.execPath(),
        "run",
        "--quiet",
        ...HECATE_PERMISSIONS,
        `${ROOT}main.ts`,
        "--home",
        home,
        "secret",
        "get",
        "t",
        ...extra,
      ].map(quote).join(" ");
      const out = await new Deno.Command("script", {
        args: ["-qec", cmd, "/dev/null"],
        env: { HECATE_PASSWORD_FILE: pwFile, NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      return { code: out.code, text };
    };
    const refused = await onTty([]);
    assert.equal(refused.code, codeOf("usage"), refused.text);
    assert.match(refused.text, /Refusing to print a secret on a terminal/);
    assert.ok(!refused.text.includes(CANARY));
    const trail = await fileText(home, "audit.jsonl");
    assert.ok(!trail.includes('"event":"secret.read"'), "refused before anything was read");
    const revealed = await onTty(["--reveal"]);
    assert.equal(revealed.code, 0, revealed.text);
    assert.ok(revealed.text.includes(`${CANARY}tty`));
  });
});

Deno.test("a secret's ciphertext does not open as a profile, nor a profile's as a secret", async () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const vaultId = crypto.getRandomValues(new Uint8Array(16));
  const recordId = crypto.getRandomValues(new Uint8Array(16));
  const plain = new TextEncoder().encode('{"kind":"secret","name":"s"}');
  const sealed = await sealRecord(key, plain, vaultId, recordId, "secret");
  assert.deepEqual(await openRecord(key, sealed, vaultId, recordId, "secret"), plain);
  await assert.rejects(() => openRecord(key, sealed, vaultId, recordId), AuthenticationFailure);
  const asProfile = await sealRecord(key, plain, vaultId, recordId);
  await assert.rejects(
    () => openRecord(key, asProfile, vaultId, recordId, "secret"),
    AuthenticationFailure,
  );
});
