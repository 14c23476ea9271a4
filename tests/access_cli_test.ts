/**
 * The access-control commands through the real CLI (child processes): `apikey create|list|revoke`,
 * `HECATE_API_KEY` and `--api-key-file`, `totp setup|status|disable`, `--totp` and `HECATE_TOTP`,
 * `rotate`; exit codes 13-16; and canaries: no password, key secret or one-time code in any error
 * output or audit line.
 */

import assert from "node:assert/strict";
import { totpCode } from "../src/access/totp.ts";
import { type CliRun, passwordFile, PW, ROOT, runHecate, withHome } from "./support/access.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `totp setup`, answering with a valid code once the URI is printed. */
async function totpSetup(home: string, pwFile: string, extra: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", `${ROOT}main.ts`, "--home", home, "totp", "setup", ...extra],
    env: { NO_COLOR: "1", HECATE_PASSWORD_FILE: pwFile },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let out = "";
  let secret = "";
  const stdin = child.stdin.getWriter();
  for await (const chunk of child.stdout) {
    out += dec.decode(chunk, { stream: true });
    const m = /otpauth:\/\/totp\/\S*secret=([A-Z2-7]+)/.exec(out);
    if (m && !secret) {
      secret = m[1]!;
      await stdin.write(new TextEncoder().encode(`${await totpCode(secret, new Date())}\n`));
      await stdin.close();
    }
  }
  const status = await child.status;
  const stderr = await new Response(child.stderr).text();
  return { code: status.code, stdout: out, stderr, secret };
}

Deno.test("CLI: API keys, TOTP and rotate end to end, with exit codes and no secret in any output", async () => {
  await withHome(async (dir) => {
    const home = `${dir}/h`;
    const pw = await passwordFile(dir);
    const runs: CliRun[] = [];
    const h = async (args: string[], env: Record<string, string> = {}, stdin?: string) => {
      const r = await runHecate(["--home", home, ...args], {
        env: { HECATE_PASSWORD_FILE: pw, ...env },
        ...(stdin !== undefined ? { stdin } : {}),
      });
      runs.push(r);
      return r;
    };
    const ok = async (args: string[], env: Record<string, string> = {}) => {
      const r = await h(args, env);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      return r;
    };

    await ok(["init", "--kdf-iterations", "600000"], {
      HECATE_NEW_PASSWORD_FILE: pw,
    });
    const db = `${dir}/a.db`;
    await Deno.writeFile(db, new Uint8Array(), { mode: 0o600 });
    await ok(["server", "add", "a", "--engine", "sqlite", "--database", db]);
    await ok(["server", "add", "b", "--engine", "sqlite", "--database", db]);

    // create: the key alone on stdout, the notice on stderr.
    const created = await ok(["apikey", "create", "cron", "--server", "a", "--expires", "30d"]);
    const key = created.stdout.trim();
    assert.match(key, /^hcx_[A-Za-z0-9_-]{11}_[A-Za-z0-9_-]{43}$/);
    assert.match(created.stderr, /shown only this once/);
    const usage = await h(["apikey", "create", "x"]);
    assert.equal(usage.code, 2, usage.stderr);
    const badExpiry = await h(["apikey", "create", "x", "--server", "a", "--expires", "soon"]);
    assert.equal(badExpiry.code, 2, badExpiry.stderr);
    const dup = await h(["apikey", "create", "cron", "--server", "a"]);
    assert.equal(dup.code, 10, dup.stderr);

    // use: env and file; scope; read-only.
    const q = await ok(["query", "a", "select 7 as n", "--format", "csv"], { HECATE_API_KEY: key });
    assert.equal(q.stdout, "n\n7\n");
    const outOfScope = await h(["query", "b", "select 1"], { HECATE_API_KEY: key });
    assert.equal(outOfScope.code, 5, outOfScope.stderr);
    const keyFile = `${dir}/key`;
    await Deno.writeTextFile(keyFile, key + "\n", { mode: 0o600 });
    const listed = await ok(["--api-key-file", keyFile, "server", "list"]);
    assert.match(listed.stdout, /^a\s/);
    assert.doesNotMatch(listed.stdout, /^b\s/m);
    await Deno.chmod(keyFile, 0o644);
    const loose = await h(["--api-key-file", keyFile, "server", "list"]);
    assert.equal(loose.code, 11, loose.stderr);
    const write = await h(["server", "remove", "a"], { HECATE_API_KEY: key });
    assert.equal(write.code, 19, write.stderr);
    assert.match(write.stderr, /needs the master password/);

    // list: never the key; last used recorded.
    const list = await ok(["apikey", "list", "--json"]);
    const keys = JSON.parse(list.stdout);
    assert.equal(keys.length, 1);
    assert.deepEqual(keys[0].profiles, ["a"]);
    assert.ok(keys[0].lastUsed);
    assert.ok(!list.stdout.includes(key.slice(16)));
    assert.match((await ok(["apikey", "list"])).stdout, /^NAME\s+CREATED/);

    // expired: exit 14; revoked: exit 15.
    const short = (await ok(["apikey", "create", "short", "--server", "a", "--expires", "1s"]))
      .stdout.trim();
    await sleep(1100);
    const expired = await h(["query", "a", "select 1"], { HECATE_API_KEY: short });
    assert.equal(expired.code, 14, expired.stderr);
    assert.match(expired.stderr, /expired at/);
    await ok(["apikey", "revoke", "short"]);
    const revoked = await h(["query", "a", "select 1"], { HECATE_API_KEY: short });
    assert.equal(revoked.code, 15, revoked.stderr);
    const gone = await h(["apikey", "revoke", "short"]);
    assert.equal(gone.code, 15, gone.stderr);

    // rotate keeps the API key working.
    const rotated = await ok(["rotate"]);
    assert.match(rotated.stdout, /2 profiles re-encrypted, 1 API keys re-sealed/);
    await ok(["query", "a", "select 1"], { HECATE_API_KEY: key });
    const rotateByKey = await h(["--api-key-file", `${dir}/key`, "rotate"]);
    assert.equal(rotateByKey.code, 19, rotateByKey.stderr);

    // TOTP on profile a: setup prints QR + URI, needs a code, prints recovery codes.
    const setup = await totpSetup(home, pw, ["--server", "a"]);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, /TOTP is on for profile "a"/);
    const recovery = [...setup.stdout.matchAll(/^ {2}([a-z2-7]{5}-[a-z2-7]{5})$/gm)].map((m) =>
      m[1]!
    );
    assert.equal(recovery.length, 10);
    assert.match((await ok(["totp", "status"])).stdout, /profiles: a/);
    const noCode = await h(["query", "a", "select 1"], { HECATE_API_KEY: key });
    assert.equal(noCode.code, 16, noCode.stderr);
    const wrong = await h(["query", "a", "select 1"], {
      HECATE_API_KEY: key,
      HECATE_TOTP: "000000",
    });
    assert.equal(wrong.code, 16, wrong.stderr);
    // The setup code spent the current step: the next step's code is within the window.
    const next = await totpCode(setup.secret, new Date(Date.now() + 30_000));
    await ok(["--totp", next, "query", "a", "select 1"], { HECATE_API_KEY: key });
    const replay = await h(["--totp", next, "query", "a", "select 1"], { HECATE_API_KEY: key });
    assert.equal(replay.code, 16, replay.stderr);
    assert.match(replay.stderr, /already used/);
    // Profile b needs no code.
    await ok(["query", "b", "select 1"]);
    // disable: a recovery code with the password.
    const badDisable = await h(["--totp", "zzzzz-zzzzz", "totp", "disable", "--server", "a"]);
    assert.equal(badDisable.code, 16, badDisable.stderr);
    await ok(["--totp", recovery[0]!, "totp", "disable", "--server", "a"]);
    await ok(["query", "a", "select 1"], { HECATE_API_KEY: key });

    // Vault TOTP: every password unlock needs a code.
    const vsetup = await totpSetup(home, pw);
    assert.equal(vsetup.code, 0, vsetup.stderr);
    const vrec = [...vsetup.stdout.matchAll(/^ {2}([a-z2-7]{5}-[a-z2-7]{5})$/gm)].map((m) => m[1]!);
    const locked = await h(["server", "list"]);
    assert.equal(locked.code, 16, locked.stderr);
    await ok(["server", "list"], { HECATE_TOTP: vrec[0]! });
    const reused = await h(["server", "list"], { HECATE_TOTP: vrec[0]! });
    assert.equal(reused.code, 16, reused.stderr);
    // API keys are not asked for the vault's code (see SECURITY.md).
    await ok(["query", "a", "select 1"], { HECATE_API_KEY: key });
    await ok(["totp", "disable"], { HECATE_TOTP: vrec[1]! });
    await ok(["server", "list"]);
    await ok(["apikey", "revoke", "cron"]);
    const after = await h(["query", "a", "select 1"], { HECATE_API_KEY: key });
    assert.equal(after.code, 15, after.stderr);

    // Canaries: no password, key secret, TOTP secret or code in any stderr or audit line; the
    // key and TOTP secret only on the stdout of the command that made them.
    const audit = await Deno.readTextFile(`${home}/audit.jsonl`);
    const secrets = [
      PW,
      key.slice(16),
      short.slice(16),
      setup.secret,
      vsetup.secret,
      next,
      ...recovery,
      ...vrec,
    ];
    for (const s of secrets) {
      assert.ok(!audit.includes(s), `a secret in the audit trail`);
      for (const r of runs) assert.ok(!r.stderr.includes(s), `a secret on stderr: ${r.stderr}`);
    }
    const stdoutWithKey = runs.filter((r) => r.stdout.includes(key.slice(16)));
    assert.deepEqual(stdoutWithKey, [created]);
    for (
      const event of ["apikey.create", "apikey.revoke", "rotate", "totp.enable", "totp.disable"]
    ) {
      assert.ok(audit.includes(`"event":"${event}"`), event);
    }
    // Key events name the key (its name and scope; never the key text).
    const created0 = audit.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((r) =>
      r.event === "apikey.create" && r.outcome === "ok" && r.detail?.key_name === "cron"
    );
    assert.deepEqual(created0?.detail?.scope, ["a"]);
  });
});
