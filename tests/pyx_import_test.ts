/**
 * Hecate Pyx import without loss, through the CLI as a person migrating would run it: a Pyx
 * directory in the 3.0 layout (salt | IV | AES-256-CBC | HMAC-SHA256, a JSON document with the
 * profiles under `servers`), built here from the documented format with WebCrypto; every profile
 * kind kept (the ones Hecate cannot complete alone imported *incomplete*, refused at every use
 * with exit 17 and the completing `hecate server edit`, then completed and used against the SQL
 * Server test double); the TOTP secret carried over and a code from it accepted; a wrong password
 * (exit 3) told apart from a damaged file (exit 4).
 */

import assert from "node:assert/strict";
import { HecateError, initVault, openVault } from "../mod.ts";
import { totpCode } from "../src/access/totp.ts";
import { runHecate } from "./support/cli.ts";
import { startTdsDouble } from "./support/tds_double.ts";
import { pyx30File } from "./support/pyx_files.ts";

const MASTER = "pyx-import-master-Passw0rd";
const OLD = "old pyx 3.0 password ñ";
const SA_PW = "Sa-secret-6a1f";
const NTLM = { domain: "TESTDOM", user: "alice", password: "Alice-ntlm-9c2e" };
const TOKEN = "eyJ.pyx-token-41b0";
const CERT_PW = "cert-pass-77d3";
const SSH_PW = "ssh-pass-1e90";
const TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const OFF_SECRET = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";
const SECRETS = [SA_PW, NTLM.password, TOKEN, CERT_PW, SSH_PW, TOTP_SECRET, OFF_SECRET, OLD];

/** A 3.0 file of a JSON document, HMAC keyed with the second half of the PBKDF2 output. */
function pyx30Doc(doc: unknown, password: string): Promise<Uint8Array<ArrayBuffer>> {
  return pyx30File(JSON.stringify(doc), password);
}

/** An HMAC under a key no derivation gives: the file reads as unverifiable. */
const UNKNOWN_MAC = { key: "random", covers: "iv+ct" } as const;

function document(servers: unknown) {
  return {
    version: "3.0",
    encryption: "AES-256-CBC",
    kdf: "PBKDF2-HMAC-SHA256",
    iterations: 100_000,
    timestamp: "2026-11-30T10:00:00Z",
    servers,
  };
}

Deno.test("Hecate Pyx 3.0 import: every profile kept, incomplete ones refused then completed, TOTP carried over", async (t) => {
  await using db = await startTdsDouble({ logins: { sa: SA_PW }, ntlm: NTLM, tokens: [TOKEN] });
  db.answer("select 1 as one", {
    sets: [{ columns: [{ name: "one", type: "int" }], rows: [[1]] }],
  });
  const root = await Deno.makeTempDir({ prefix: "hecate-pyx-import-" });
  const home = `${root}/home`;
  await initVault({ home, password: MASTER, kdfIterations: 600_000 });
  const pwFile = `${root}/master`;
  await Deno.writeTextFile(pwFile, MASTER, { mode: 0o600 });
  const env = { HECATE_PASSWORD_FILE: pwFile, HOME: root };
  const run = (args: string[], stdin = "", extra: Record<string, string> = {}) =>
    runHecate(args, { home, stdin, env: { ...env, ...extra } });
  const noSecret = (r: { stdout: string; stderr: string }, except: string[] = []) => {
    for (const s of SECRETS.filter((x) => !except.includes(x))) {
      assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `${s} printed`);
    }
  };
  const at = { server: "127.0.0.1", port: db.port, database: "master" };
  const servers = {
    "app sql": { ...at, auth_type: "sql_auth", username: "sa", password: SA_PW },
    // Pyx logged in as the current Windows user: no user name at all.
    winbox: { ...at, auth_type: "windows_auth" },
    certy: {
      ...at,
      auth_type: "certificate_auth",
      certificate_path: "/etc/pyx/client.pem",
      certificate_password: CERT_PW,
    },
    azure: { ...at, auth_type: "jwt_auth", access_token: TOKEN },
    tunnel: {
      ...at,
      auth_type: "ssh_tunnel",
      ssh_host: "bastion.example",
      ssh_port: 2222,
      ssh_username: "jump",
      ssh_password: SSH_PW,
      sql_username: "sa",
      sql_password: SA_PW,
    },
    nohost: { auth_type: "sql_auth", username: "sa", password: SA_PW },
    off: { ...at, auth_type: "sql_auth", username: "sa", password: SA_PW },
  };
  const pyx = `${root}/.hecate_pyx`;
  await Deno.mkdir(pyx);
  const credentials = await pyx30Doc(document(servers), OLD);
  const totp = await pyx30Doc(
    document({
      "app sql": { secret: TOTP_SECRET, enabled: true },
      off: { secret: OFF_SECRET, enabled: false },
    }),
    OLD,
  );
  await Deno.writeFile(`${pyx}/credentials.enc`, credentials);
  await Deno.writeFile(`${pyx}/totp_secrets.enc`, totp);
  const importPyx = (dir: string, password = OLD) =>
    run(["import", "hecate-pyx", dir, "--legacy-password-stdin"], `${password}\n`);

  try {
    await t.step(
      "a wrong password is exit 3, a damaged file exit 4; nothing imported",
      async () => {
        const wrong = await importPyx(pyx, "not the old password");
        assert.equal(wrong.code, 3, wrong.stderr);
        assert.match(wrong.stderr, /wrong Hecate Pyx password/);
        const bad = `${root}/damaged`;
        await Deno.mkdir(bad);
        // A byte in the middle of the ciphertext: the HMAC and the JSON both break.
        const mid = credentials.slice();
        mid[48 + 40]! ^= 0x01;
        await Deno.writeFile(`${bad}/credentials.enc`, mid);
        const r1 = await importPyx(bad);
        assert.equal(r1.code, 4, r1.stderr);
        assert.match(r1.stderr, /credentials\.enc is damaged/);
        // credentials.enc verifies; the TOTP file's HMAC tag is changed: damaged, not "wrong
        // password", and not quietly "unverifiable".
        await Deno.writeFile(`${bad}/credentials.enc`, credentials);
        const tag = totp.slice();
        tag[tag.length - 1]! ^= 0x80;
        await Deno.writeFile(`${bad}/totp_secrets.enc`, tag);
        const r2 = await importPyx(bad);
        assert.equal(r2.code, 4, r2.stderr);
        assert.match(r2.stderr, /totp_secrets\.enc is damaged: its HMAC does not match/);
        const list = await run(["server", "list"]);
        assert.equal(list.stdout.trim(), "No profiles");
      },
    );

    await t.step(
      "a 3.0 file whose HMAC derivation is unknown is imported as unverifiable",
      async () => {
        const odd = `${root}/odd`;
        await Deno.mkdir(odd);
        await Deno.writeFile(
          `${odd}/credentials.enc`,
          await pyx30File(JSON.stringify(document(servers)), OLD, { mac: UNKNOWN_MAC }),
        );
        const r = await run(
          ["import", "hecate-pyx", odd, "--legacy-password-stdin", "--dry-run"],
          `${OLD}\n`,
        );
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /credentials\.enc: layout 3\.0, HMAC unverifiable/);
        assert.match(r.stdout, /imported winbox: would be imported/);
      },
    );

    await t.step(
      "every profile kind is brought over; the report says what is missing",
      async () => {
        const r = await importPyx(pyx);
        assert.equal(r.code, 0, r.stderr);
        const out = r.stdout;
        assert.match(out, /credentials\.enc: layout 3\.0, HMAC verified/);
        assert.match(out, /totp_secrets\.enc: layout 3\.0, HMAC verified/);
        for (const name of ["app-sql", "azure", "tunnel", "off"]) {
          assert.match(out, new RegExp(`imported ${name}: imported \\(mssql, auth [a-z]+\\)\\n`));
        }
        assert.match(
          out,
          /imported winbox: imported \(mssql, auth windows\), INCOMPLETE: missing user, domain, secret password/,
        );
        assert.match(out, /hecate server edit winbox --user USER --domain DOMAIN --secret-stdin/);
        assert.match(out, /imported certy: .*INCOMPLETE: missing tenantId, clientId, keyFile/);
        assert.match(out, /imported nohost: .*INCOMPLETE: missing host/);
        assert.match(out, /imported app-sql: TOTP carried over/);
        assert.match(out, /skipped +off: TOTP secret disabled in Hecate Pyx/);
        assert.match(out, /Recovery codes for profile "app-sql"/);
        noSecret(r);
      },
    );

    await t.step("server list and show name what is missing", async () => {
      const list = await run(["server", "list"]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /winbox .*INCOMPLETE: missing user, domain, secret password/);
      assert.match(list.stdout, /nohost .*INCOMPLETE: missing host/);
      assert.doesNotMatch(list.stdout, /app-sql .*INCOMPLETE/);
      const show = await run(["server", "show", "certy"]);
      assert.match(show.stdout, /incomplete +missing tenantId, clientId, keyFile/);
      assert.match(
        show.stdout,
        /complete with +hecate server edit certy --tenant-id TENANT_ID --client-id CLIENT_ID --key-file KEY_FILE/,
      );
      const json = JSON.parse((await run(["server", "show", "certy", "--json"])).stdout);
      // Everything Pyx had is kept: the certificate file and (masked) its pass phrase.
      assert.equal(json.params.certFile, "/etc/pyx/client.pem");
      assert.deepEqual(Object.keys(json.secrets), ["keyPassphrase"]);
      assert.deepEqual(json.incomplete.missing, [
        "params.tenantId",
        "params.clientId",
        "params.keyFile",
      ]);
      noSecret(show);
    });

    await t.step(
      "every use of an incomplete profile is refused: exit 17 and the hint",
      async () => {
        const hint =
          /hecate: hint: complete it with 'hecate server edit winbox --user USER --domain DOMAIN --secret-stdin'/;
        for (
          const args of [
            ["query", "winbox", "select 1 as one"],
            ["env", "winbox"],
            ["run", "winbox", "--", "true"],
            ["server", "test", "winbox"],
          ]
        ) {
          const r = await run(args);
          assert.equal(r.code, 17, `${args.join(" ")}: ${r.stderr}`);
          assert.match(
            r.stderr,
            /Profile "winbox" is incomplete: missing user, domain, secret password/,
          );
          assert.match(r.stderr, hint);
        }
        // The library refuses it the same way.
        await using vault = await openVault({ home, password: MASTER });
        await assert.rejects(vault.connect("winbox"), (e) => {
          assert.ok(e instanceof HecateError);
          assert.equal(e.code, "invalid_profile");
          assert.equal(e.exitCode, 17);
          return true;
        });
        assert.equal(db.logins.length, 0, "nothing reached the server");
      },
    );

    await t.step("the hinted 'server edit' completes it; a partial edit does not", async () => {
      const partial = await run(["server", "edit", "winbox", "--user", NTLM.user]);
      assert.equal(partial.code, 0, partial.stderr);
      const still = await run(["query", "winbox", "select 1 as one"]);
      assert.equal(still.code, 17, still.stderr);
      assert.match(still.stderr, /'hecate server edit winbox --domain DOMAIN --secret-stdin'/);
      // Run exactly the hinted command, placeholders filled in (plus the test double's TLS).
      const cmd = still.stderr.match(/complete it with '(hecate server edit [^']+)'/)![1]!;
      const args = cmd.split(" ").slice(1).map((a) => a === "DOMAIN" ? NTLM.domain : a);
      const done = await run([...args, "--tls", "disable"], `${NTLM.password}\n`);
      assert.equal(done.code, 0, done.stderr);
      const show = await run(["server", "show", "winbox", "--json"]);
      assert.equal(JSON.parse(show.stdout).incomplete, undefined);
      assert.doesNotMatch((await run(["server", "list"])).stdout, /winbox .*INCOMPLETE/);
      const q = await run(["query", "winbox", "select 1 as one", "--format", "csv"]);
      assert.equal(q.code, 0, q.stderr);
      assert.equal(q.stdout, "one\n1\n");
      assert.deepEqual(db.logins.map((l) => [l.method, l.user, l.ok]), [
        ["ntlm", `${NTLM.domain}\\${NTLM.user}`, true],
      ]);
      noSecret(q);
    });

    await t.step(
      "the carried-over TOTP guards the profile and accepts the authenticator's code",
      async () => {
        assert.equal((await run(["server", "edit", "app-sql", "--tls", "disable"])).code, 0);
        const none = await run(["query", "app-sql", "select 1 as one"]);
        assert.equal(none.code, 16, none.stderr);
        const wrong = await run(["query", "app-sql", "select 1 as one"], "", {
          HECATE_TOTP: await totpCode(OFF_SECRET, new Date()),
        });
        assert.equal(wrong.code, 16, wrong.stderr);
        const q = await run(["query", "app-sql", "select 1 as one", "--format", "csv"], "", {
          HECATE_TOTP: await totpCode(TOTP_SECRET, new Date()),
        });
        assert.equal(q.code, 0, q.stderr);
        assert.equal(q.stdout, "one\n1\n");
        noSecret(q);
        // The profile whose Pyx TOTP was disabled needs no code.
        assert.equal((await run(["server", "edit", "off", "--tls", "disable"])).code, 0);
        const off = await run(["query", "off", "select 1 as one", "--format", "csv"]);
        assert.equal(off.code, 0, off.stderr);
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("init reads the new password from HECATE_NEW_PASSWORD_FILE, else HECATE_PASSWORD_FILE", async () => {
  const root = await Deno.makeTempDir({ prefix: "hecate-init-file-" });
  try {
    const pw = `${root}/pw`;
    await Deno.writeTextFile(pw, `${MASTER}\n`, { mode: 0o600 });
    // A script that sets HECATE_PASSWORD_FILE and runs init: no terminal needed.
    const a = await runHecate(["init"], { home: `${root}/a`, env: { HECATE_PASSWORD_FILE: pw } });
    assert.equal(a.code, 0, a.stderr);
    await (await openVault({ home: `${root}/a`, password: MASTER }))[Symbol.asyncDispose]();
    // HECATE_NEW_PASSWORD_FILE wins over HECATE_PASSWORD_FILE.
    const other = `${root}/other`;
    await Deno.writeTextFile(other, "another-Passw0rd-for-b", { mode: 0o600 });
    const b = await runHecate(["init"], {
      home: `${root}/b`,
      env: { HECATE_PASSWORD_FILE: pw, HECATE_NEW_PASSWORD_FILE: other },
    });
    assert.equal(b.code, 0, b.stderr);
    await (await openVault({ home: `${root}/b`, password: "another-Passw0rd-for-b" }))
      [Symbol.asyncDispose]();
    // passwd: the current password from HECATE_PASSWORD_FILE, the new one from the other file.
    const c = await runHecate(["passwd"], {
      home: `${root}/a`,
      env: { HECATE_PASSWORD_FILE: pw, HECATE_NEW_PASSWORD_FILE: other },
    });
    assert.equal(c.code, 0, c.stderr);
    await (await openVault({ home: `${root}/a`, password: "another-Passw0rd-for-b" }))
      [Symbol.asyncDispose]();
    // An attacker-readable password file is refused by the private-file check; no vault made.
    await Deno.chmod(pw, 0o644);
    const d = await runHecate(["init"], { home: `${root}/d`, env: { HECATE_PASSWORD_FILE: pw } });
    assert.notEqual(d.code, 0);
    assert.equal(d.stderr.trim().split("\n")[0]!.startsWith("hecate: error:"), true, d.stderr);
    assert.ok(!d.stderr.includes(MASTER));
    await assert.rejects(Deno.stat(`${root}/d/vault.hecate`));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
