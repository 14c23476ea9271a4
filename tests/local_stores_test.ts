/**
 * The local secret stores against the real programs: `pass` with GnuPG (a temp GNUPGHOME with a
 * passphrase-less key, a temp store), and SOPS files made by an independent encoder
 * (tests/support/local_stores.ts, from SOPS's format with node:crypto and age-encryption). Each
 * failure is exit 18 naming the source and its status; the canary never shows in stdout,
 * stderr or the audit trail.
 */

import assert from "node:assert/strict";
import { generateIdentity, identityToRecipient } from "age-encryption";
import {
  cli,
  envVar,
  PASSWORD,
  run,
  sopsEncryptJson,
  startSecretService,
  withHome,
} from "./support/local_stores.ts";
import { runHecate } from "./support/cli.ts";

const CANARY = "CANARY-0c1d5e77-local-stores";
const PG = ["--engine", "postgres", "--host", "db.internal", "--user", "app"];
const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";

async function noCanary(home: string, r: { out: string; err: string }, what: string) {
  for (const t of [r.out, r.err]) assert.ok(!t.includes(CANARY), `${what}: canary shown`);
  const trail = await Deno.readTextFile(`${home}/audit.jsonl`).catch(() => "");
  assert.ok(!trail.includes(CANARY), `${what}: canary in the audit trail`);
  assert.ok(!trail.includes(PASSWORD));
}

const hasPass = (() => {
  try {
    return new Deno.Command("pass", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "pass: real pass + GnuPG: password, #field, not in store and gpg failure are exit 18",
  ignore: !hasPass,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "hecate-pass-" });
    const gnupg = `${tmp}/gnupg`;
    const store = `${tmp}/store`;
    await Deno.mkdir(gnupg, { mode: 0o700 });
    const env = {
      PATH,
      HOME: Deno.env.get("HOME") ?? tmp,
      GNUPGHOME: gnupg,
      PASSWORD_STORE_DIR: store,
    };
    try {
      await run("gpg", [
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Hecate Test <test@hecate.invalid>",
        "default",
        "default",
        "never",
      ], env);
      const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(
        await run("gpg", ["--batch", "--with-colons", "--list-keys"], env),
      )![1]!;
      await run("pass", ["init", fpr], env);
      await run("pass", ["insert", "-m", "db/billing"], env, `${CANARY}\nuser: billing_app\n`);
      await withHome(async (home) => {
        const add = (name: string, ref: string) =>
          cli(home, ["server", "add", name, ...PG, "--secret-ref", ref], env);
        assert.equal((await add("p", "pass:db/billing")).code, 0);
        const ok = await cli(home, ["env", "p"], env);
        assert.equal(ok.code, 0, ok.err);
        assert.equal(envVar(ok.out, "PGPASSWORD"), CANARY);
        assert.equal((await add("u", "pass:db/billing#user")).code, 0);
        assert.equal(envVar((await cli(home, ["env", "u"], env)).out, "PGPASSWORD"), "billing_app");

        // Malformed references: refused at add time (an option-like path never reaches argv).
        for (const bad of ["pass:", "pass:--clip", "pass:a/../b", "pass:x#"]) {
          assert.equal((await add("bad", bad)).code, 2, bad);
        }

        assert.equal((await add("gone", "pass:db/nothing-here")).code, 0);
        const gone = await cli(home, ["env", "gone"], env);
        assert.equal(gone.code, 18, gone.err);
        assert.match(gone.err, /pass: "pass:db\/nothing-here": not found/);
        assert.match(gone.err, /hint/i);

        // The key is not in this GnuPG home: gpg cannot decrypt.
        const other = `${tmp}/empty-gnupg`;
        await Deno.mkdir(other, { mode: 0o700 });
        const nokey = await cli(home, ["env", "p"], { ...env, GNUPGHOME: other });
        assert.equal(nokey.code, 18, nokey.err);
        assert.match(nokey.err, /pass: "pass:db\/billing": forbidden \(gpg failed/);
        await noCanary(home, nokey, "gpg failure");
        await noCanary(home, gone, "not in store");
        await run("gpgconf", ["--kill", "gpg-agent"], { ...env, GNUPGHOME: other });

        // pass not installed.
        const nopass = await cli(home, ["env", "p"], { ...env, PATH: tmp });
        assert.equal(nopass.code, 18);
        assert.match(nopass.err, /pass: "pass:db\/billing": unreachable \(pass is not installed\)/);
      });
    } finally {
      await run("gpgconf", ["--kill", "gpg-agent"], env).catch(() => "");
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("sops: an age-encrypted JSON file decrypts; tampered values, MAC and wrong identity are refused", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "hecate-sops-" });
  try {
    const id = await generateIdentity();
    const other = await generateIdentity();
    const keyFile = `${tmp}/keys.txt`;
    await Deno.writeTextFile(keyFile, `# created: test\n# public key: x\n${id}\n`);
    const text = await sopsEncryptJson(
      { db: { user: "billing_app", password: CANARY, port: 5432 }, other: "x" },
      [await identityToRecipient(other), await identityToRecipient(id)],
    );
    const file = `${tmp}/secrets.enc.json`;
    await Deno.writeTextFile(file, text);
    const env: Record<string, string> = { SOPS_AGE_KEY_FILE: keyFile };
    await withHome(async (home) => {
      const add = (name: string, ref: string, e = env) =>
        cli(home, ["server", "add", name, ...PG, "--secret-ref", ref], e);
      assert.equal((await add("s", `sops:${file}#db.password`)).code, 0);
      const ok = await cli(home, ["env", "s"], env);
      assert.equal(ok.code, 0, ok.err);
      assert.equal(envVar(ok.out, "PGPASSWORD"), CANARY);
      // SOPS_AGE_KEY (the key itself) works as well as the file; the default path too.
      const inline = await cli(home, ["env", "s"], { SOPS_AGE_KEY: id });
      assert.equal(envVar(inline.out, "PGPASSWORD"), CANARY);
      await Deno.mkdir(`${tmp}/.config/sops/age`, { recursive: true });
      await Deno.copyFile(keyFile, `${tmp}/.config/sops/age/keys.txt`);
      const dflt = await cli(home, ["env", "s"], { XDG_CONFIG_HOME: `${tmp}/.config` });
      assert.equal(envVar(dflt.out, "PGPASSWORD"), CANARY, dflt.err);
      await Deno.remove(`${tmp}/.config`, { recursive: true });

      for (const bad of [`sops:${file}`, `sops:${file}#`, `sops:#a`, `sops:${file}#a..b`]) {
        assert.equal((await add("bad", bad)).code, 2, bad);
      }

      const attempt = async (what: string, body: string, status: RegExp, e = env) => {
        await Deno.writeTextFile(file, body);
        const r = await cli(home, ["env", "s"], e);
        assert.equal(r.code, 18, `${what}: ${r.err}`);
        assert.match(r.err, /SOPS: "sops:[^"]+#db\.password": /, what);
        assert.match(r.err, status, what);
        assert.match(r.err, /hint/i, what);
        await noCanary(home, r, what);
      };
      const doc = JSON.parse(text);
      const edit = (f: (d: typeof doc) => void) => {
        const d = structuredClone(doc);
        f(d);
        return JSON.stringify(d);
      };
      // A byte of a value's ciphertext flipped.
      await attempt(
        "flipped value",
        edit((d) => {
          const v: string = d.db.password;
          const i = v.indexOf("data:") + 5;
          d.db.password = v.slice(0, i) + (v[i] === "A" ? "B" : "A") + v.slice(i + 1);
        }),
        /malformed answer \(refused: a value fails its authentication tag\)/,
      );
      // Another key's ciphertext moved here (the key path is authenticated).
      await attempt(
        "moved value",
        edit((d) => void (d.db.password = d.db.user)),
        /refused: a value fails its authentication tag/,
      );
      // The value replaced by one in clear.
      await attempt(
        "clear value",
        edit((d) => void (d.db.password = 42)),
        /refused: a value is not encrypted/,
      );
      // A value removed: every remaining value opens, but the MAC no longer matches.
      await attempt(
        "removed value",
        edit((d) => void delete d.other),
        /refused: the file MAC does not match its values/,
      );
      // The MAC itself altered, and the MAC's timestamp changed.
      await attempt(
        "tampered MAC",
        edit((d) => {
          const m: string = d.sops.mac;
          const i = m.indexOf("data:") + 5;
          d.sops.mac = m.slice(0, i) + (m[i] === "A" ? "B" : "A") + m.slice(i + 1);
        }),
        /refused: a value fails its authentication tag/,
      );
      await attempt(
        "lastmodified changed",
        edit((d) => void (d.sops.lastmodified = "2020-01-01T00:00:00Z")),
        /refused/,
      );
      await attempt(
        "MAC removed",
        edit((d) => void delete d.sops.mac),
        /refused: the file has no MAC/,
      );
      // A wrong identity: forbidden, names what to set.
      const wrong = `${tmp}/wrong.txt`;
      await Deno.writeTextFile(wrong, `${await generateIdentity()}\n`);
      await attempt("wrong identity", text, /forbidden \(no age identity opens/, {
        ...env,
        SOPS_AGE_KEY_FILE: wrong,
      });
      await attempt("no identity", text, /forbidden \(no age identity found\)/, {
        PATH,
        HOME: tmp,
      });
      // A YAML file (handled only by the sops program, absent here): a clear exit 18.
      await attempt(
        "yaml without sops",
        "db:\n  password: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\n",
        /unreachable \(the sops program is not on PATH/,
        { ...env, PATH: tmp },
      );
      // The original file still works after all that.
      await Deno.writeTextFile(file, text);
      assert.equal(envVar((await cli(home, ["env", "s"], env)).out, "PGPASSWORD"), CANARY);
      // A key path naming an object gives its members (for --from); a missing one is reported.
      assert.equal((await add("m", `sops:${file}#db.nope`)).code, 0);
      const miss = await cli(home, ["env", "m"], env);
      assert.equal(miss.code, 18);
      assert.match(miss.err, /field missing/);
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** `hecate ARGS` with the given stdin text (master password first). */
async function runStdin(home: string, args: string[], env: Record<string, string>, stdin: string) {
  const r = await runHecate(["--password-stdin", ...args], { home, stdin, env });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

const hasSecretService = ["secret-tool", "gnome-keyring-daemon", "dbus-run-session"].every((c) => {
  try {
    return new Deno.Command("which", { args: [c], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
});

Deno.test({
  name: "keyring: a real Secret Service (gnome-keyring): found, not found, no session",
  ignore: !hasSecretService || Deno.build.os !== "linux",
  async fn() {
    const svc = await startSecretService("keyring-login-pw");
    try {
      const env = { PATH, DBUS_SESSION_BUS_ADDRESS: svc.address };
      // What a user runs: the secret goes to secret-tool on stdin.
      await run(
        "secret-tool",
        ["store", "--label=billing db", "service", "billing-db", "username", "app/prod"],
        env,
        CANARY,
      );
      await withHome(async (home) => {
        const add = (name: string, ref: string) =>
          cli(home, ["server", "add", name, ...PG, "--secret-ref", ref], env);
        assert.equal((await add("k", "keyring:billing-db/app/prod")).code, 0);
        const ok = await cli(home, ["env", "k"], env);
        assert.equal(ok.code, 0, ok.err);
        assert.equal(envVar(ok.out, "PGPASSWORD"), CANARY);

        for (
          const bad of ["keyring:", "keyring:noslash", "keyring:/a", "keyring:a/"]
        ) {
          assert.equal((await add("bad", bad)).code, 2, bad);
        }

        // An option-like account is data, not a flag to secret-tool.
        await run(
          "secret-tool",
          ["store", "--label=dash", "--", "service", "-s", "username", "-a"],
          env,
          "dash-value",
        );
        assert.equal((await add("dash", "keyring:-s/-a")).code, 0);
        assert.equal(
          envVar((await cli(home, ["env", "dash"], env)).out, "PGPASSWORD"),
          "dash-value",
        );

        assert.equal((await add("none", "keyring:billing-db/nobody")).code, 0);
        const none = await cli(home, ["env", "none"], env);
        assert.equal(none.code, 18, none.err);
        assert.match(none.err, /OS keyring: "keyring:billing-db\/nobody": not found/);
        assert.match(none.err, /secret-tool store/);

        // No session bus: the service is unreachable, said as such.
        const nobus = await cli(home, ["env", "k"], {
          PATH,
          DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent/bus",
        });
        assert.equal(nobus.code, 18, nobus.err);
        assert.match(nobus.err, /OS keyring: "keyring:billing-db\/app\/prod": unreachable/);
        for (const r of [none, nobus]) await noCanary(home, r, "keyring failure");

        // server add --store keyring: the password goes to the keyring, the vault holds a reference.
        const kept = await runStdin(
          home,
          ["server", "add", "kk", ...PG, "--store", "keyring", "--secret-stdin"],
          env,
          `${PASSWORD}\n${CANARY}-kept\n`,
        );
        assert.equal(kept.code, 0, kept.err);
        const vaultBytes = await Deno.readFile(`${home}/vault.hecate`);
        assert.ok(!new TextDecoder().decode(vaultBytes).includes(`${CANARY}-kept`));
        const shown = await cli(home, ["server", "show", "kk", "--json"], env);
        const ref = /"(keyring:hecate\/[^"]+\/kk)"/.exec(shown.out)?.[1];
        assert.ok(ref, shown.out);
        const account = ref.slice("keyring:hecate/".length);
        assert.equal(
          await run("secret-tool", ["lookup", "--", "service", "hecate", "username", account], env),
          `${CANARY}-kept`,
        );
        assert.equal(
          envVar((await cli(home, ["env", "kk"], env)).out, "PGPASSWORD"),
          `${CANARY}-kept`,
        );
        // A taken name: refused, and the first profile's keyring entry is untouched.
        const again = await runStdin(
          home,
          ["server", "add", "kk", ...PG, "--store", "keyring", "--secret-stdin"],
          env,
          `${PASSWORD}\nother\n`,
        );
        assert.notEqual(again.code, 0);
        assert.equal(
          envVar((await cli(home, ["env", "kk"], env)).out, "PGPASSWORD"),
          `${CANARY}-kept`,
        );
        // --store keyring with --secret-ref is a usage error.
        assert.equal(
          (await cli(home, [
            "server",
            "add",
            "kr",
            ...PG,
            "--store",
            "keyring",
            "--secret-ref",
            "env:X",
          ], env)).code,
          2,
        );
        // Removing the profile clears its entry; the user's own item is left alone.
        assert.equal((await cli(home, ["server", "remove", "kk"], env)).code, 0);
        assert.equal(
          await run("secret-tool", ["lookup", "--", "service", "hecate", "username", account], env)
            .catch(
              () => "gone",
            ),
          "gone",
        );
        assert.equal((await cli(home, ["server", "remove", "k"], env)).code, 0);
        assert.equal(
          await run(
            "secret-tool",
            ["lookup", "service", "billing-db", "username", "app/prod"],
            env,
          ),
          CANARY,
        );
        // No Secret Service: --store keyring fails with exit 18 and adds nothing.
        const down = await runStdin(
          home,
          ["server", "add", "kd", ...PG, "--store", "keyring", "--secret-stdin"],
          { PATH, DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent/bus" },
          `${PASSWORD}\n${CANARY}\n`,
        );
        assert.equal(down.code, 18, down.err);
        await noCanary(home, down, "store failure");
        assert.notEqual((await cli(home, ["server", "show", "kd"], env)).code, 0);
      });
    } finally {
      await svc.stop();
    }
  },
});
