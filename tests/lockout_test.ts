/**
 * Lockout across processes (real CLI child processes sharing one home), its settings, expiry of
 * a lockout, and the master-password policy.
 */

import assert from "node:assert/strict";
import { checkPasswordPolicy } from "../src/access/password_policy.ts";
import { Lockout, parseLockoutPolicy } from "../src/access/lockout.ts";
import { openVault } from "../src/hecate.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import {
  assertCode,
  auditLines,
  passwordFile,
  PW,
  runHecate,
  vaultWith,
  withHome,
} from "./support/access.ts";

Deno.test("parseLockoutPolicy reads MAX/WINDOW[/LOCK] and off, and rejects anything else", () => {
  assert.deepEqual(parseLockoutPolicy(undefined), { max: 5, windowMs: 900_000, lockMs: 900_000 });
  assert.deepEqual(parseLockoutPolicy("3/10m/1h"), {
    max: 3,
    windowMs: 600_000,
    lockMs: 3_600_000,
  });
  assert.deepEqual(parseLockoutPolicy("2/30s"), { max: 2, windowMs: 30_000, lockMs: 30_000 });
  assert.equal(parseLockoutPolicy("off"), null);
  for (const bad of ["5", "0/15m", "5/15", "5/15m/", "x/15m", "5/15m/1h/2h", "5/-1m"]) {
    assert.throws(() => parseLockoutPolicy(bad), /Invalid/, bad);
  }
});

Deno.test("failures from parallel processes add up: after five, attempts are refused with locked_out until a stated time", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing"]);
    const key = await (await openVault({ home, password: PW })).apiKeys.create({
      name: "k",
      profiles: ["billing"],
      expires: null,
    });
    const wrong = `${home}/wrong.txt`;
    await Deno.writeTextFile(wrong, "not the password, clearly\n", { mode: 0o600 });
    const right = await passwordFile(home);
    const list = (file: string) =>
      runHecate(["--home", home, "server", "list"], { env: { HECATE_PASSWORD_FILE: file } });

    // Eight processes at once: the checks are serialised, so exactly five are tried and fail and
    // the other three are refused, whatever the interleaving.
    const codes = (await Promise.all(Array.from({ length: 8 }, () => list(wrong)))).map((r) =>
      r.code
    );
    assert.equal(codes.filter((c) => c === 3).length, 5, `exit codes ${codes}`);
    assert.equal(codes.filter((c) => c === 13).length, 3, `exit codes ${codes}`);
    // Even the right password is refused now, with the time it ends.
    const locked = await list(right);
    assert.equal(locked.code, 13, locked.stderr);
    const until = /locked until (\S+)/.exec(locked.stderr)?.[1];
    assert.ok(until && Date.parse(until) > Date.now() + 14 * 60_000, locked.stderr);
    // The API key is a different subject: it still works.
    const byKey = await runHecate(["--home", home, "server", "list"], {
      env: { HECATE_API_KEY: key },
    });
    assert.equal(byKey.code, 0, byKey.stderr);

    const lines = await auditLines(home);
    const fails = lines.filter((l) => l.event === "unlock" && l.outcome === "fail");
    // Parallel processes may write their lines in either order: compare as multisets.
    assert.deepEqual(
      fails.map((l) => l.reason).sort(),
      [...Array(5).fill("auth_failed"), ...Array(4).fill("locked_out")],
    );
    const lockouts = lines.filter((l) => l.event === "lockout");
    assert.equal(lockouts.length, 1);
    assert.match(String(lockouts[0]!.reason), /^locked_out until /);
    const text = await Deno.readTextFile(`${home}/audit.jsonl`);
    assert.ok(!text.includes("not the password") && !text.includes(PW));
  });
});

Deno.test("many parallel processes with the right API key and password are never locked out", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing"]);
    const key = await (await openVault({ home, password: PW })).apiKeys.create({
      name: "k",
      profiles: ["billing"],
      expires: null,
    });
    const pw = await passwordFile(home);
    const runs = await Promise.all([
      ...Array.from(
        { length: 6 },
        () => runHecate(["--home", home, "server", "list"], { env: { HECATE_API_KEY: key } }),
      ),
      ...Array.from(
        { length: 3 },
        () => runHecate(["--home", home, "server", "list"], { env: { HECATE_PASSWORD_FILE: pw } }),
      ),
    ]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
  });
});

Deno.test("API-key failures lock that key id out; HECATE_LOCKOUT sets the threshold", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing"]);
    const key = await (await openVault({ home, password: PW })).apiKeys.create({
      name: "k",
      profiles: ["billing"],
      expires: null,
    });
    const bad = key.slice(0, -4) + (key.endsWith("AAAA") ? "BBBB" : "AAAA");
    const env = (apiKey: string) => ({ HECATE_API_KEY: apiKey, HECATE_LOCKOUT: "2/10m" });
    const run = (apiKey: string) =>
      runHecate(["--home", home, "server", "list"], { env: env(apiKey) });
    assert.equal((await run(bad)).code, 3);
    assert.equal((await run(bad)).code, 3);
    const refused = await run(key);
    assert.equal(refused.code, 13, refused.stderr);
    assert.ok(!refused.stderr.includes(key.slice(16)), "key secret in an error message");
  });
});

Deno.test("a lockout ends after its period, and a success clears the count", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing"]);
    let t = Date.parse("2026-11-23T10:00:00Z");
    const now = () => new Date(t);
    const open = (password: string) => openVault({ home, password, now, lockout: "3/5m/10m" });
    await assertCode(() => open("wrong password one"), "auth_failed");
    await assertCode(() => open("wrong password one"), "auth_failed");
    await open(PW); // clears
    await assertCode(() => open("wrong password one"), "auth_failed");
    await assertCode(() => open("wrong password one"), "auth_failed");
    await assertCode(() => open("wrong password one"), "auth_failed");
    const e = await assertCode(() => open(PW), "locked_out");
    assert.match(e.message, /locked until 2026-11-23T10:10:00.000Z/);
    t += 10 * 60_000 + 1;
    await open(PW);
    // Failures older than the window do not count.
    const lock = new Lockout(home, parseLockoutPolicy("2/1m"), now);
    const wrong = new Error("wrong");
    const fail = async () => {
      let until: Date | undefined;
      await assert.rejects(
        lock.guard("apikey:x", () => Promise.reject(wrong), (e) => e === wrong, (_e, u) => {
          until = u;
          return Promise.resolve();
        }),
      );
      return until;
    };
    await fail();
    t += 61_000;
    assert.equal(await fail(), undefined);
    assert.ok(await fail());
    await assertCode(
      () => lock.guard("apikey:x", () => Promise.resolve(1), () => true, () => Promise.resolve()),
      "locked_out",
    );
    await assertCode(() => lock.check("apikey:x"), "locked_out");
    // Errors that are not wrong credentials are not counted; other subjects are unaffected.
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        lock.guard(
          "apikey:y",
          () => Promise.reject(new Error("io")),
          () => false,
          () => Promise.resolve(),
        ),
      );
    }
    assert.equal(
      await lock.guard("apikey:y", () => Promise.resolve(7), () => true, () => Promise.resolve()),
      7,
    );
  });
});

Deno.test("the password policy refuses short and common passwords, naming the rule, never the password", async () => {
  await assertCode(() => checkPasswordPolicy("short pw"), "usage");
  for (const weak of ["password1234", "qwertyuiop12", "123456789012", "iloveyou2024"]) {
    const e = await assertCode(() => checkPasswordPolicy(weak), "usage", weak);
    assert.match(e.message, /too easy to guess/);
    assert.ok(!e.message.includes(weak));
  }
  await checkPasswordPolicy(PW);
  await checkPasswordPolicy("correct horse battery staple 9");
});

Deno.test("init and passwd refuse a weak password with exit 2 and change nothing", async () => {
  await withHome(async (home) => {
    const weak = await runHecate(["--home", `${home}/v`, "init", "--password-stdin"], {
      stdin: "password1234\n",
    });
    assert.equal(weak.code, 2, weak.stderr);
    assert.match(weak.stderr, /too easy to guess/);
    await assert.rejects(Deno.stat(`${home}/v/${VAULT_FILE}`), Deno.errors.NotFound);

    const ok = await runHecate(["--home", `${home}/v`, "init", "--password-stdin"], {
      stdin: `${PW}\n`,
    });
    assert.equal(ok.code, 0, ok.stderr);
    const before = await Deno.readFile(`${home}/v/${VAULT_FILE}`);
    const pw = await passwordFile(home);
    const passwd = await runHecate(["--home", `${home}/v`, "passwd", "--new-password-stdin"], {
      stdin: "short\n",
      env: { HECATE_PASSWORD_FILE: pw },
    });
    assert.equal(passwd.code, 2, passwd.stderr);
    assert.deepEqual(await Deno.readFile(`${home}/v/${VAULT_FILE}`), before);
    const good = await runHecate(["--home", `${home}/v`, "passwd", "--new-password-stdin"], {
      stdin: "a different, long passphrase: teal otter\n",
      env: { HECATE_PASSWORD_FILE: pw },
    });
    assert.equal(good.code, 0, good.stderr);
    await assertCode(() => openVault({ home: `${home}/v`, password: PW }), "auth_failed");
    await openVault({ home: `${home}/v`, password: "a different, long passphrase: teal otter" });
  });
});
