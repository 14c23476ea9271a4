/**
 * Imports and export: a Hecate Pyx directory written by this test in that tool's format
 * (WebCrypto AES-256-CBC + PBKDF2-HMAC-SHA256), including a wrong password and damaged files;
 * `.env` and `.pgpass` files; the sources never change; `export --encrypted` moves a vault to a
 * new home. The CLI runs as a separate process with the task's permissions.
 */

import assert from "node:assert/strict";
import { initVault } from "../mod.ts";
import { totpCode } from "../src/access/totp.ts";
import { runHecate } from "./support/run_hecate.ts";

const MASTER = "import-test-master-password";
const LEGACY = "old pyx password ü";

/** Encrypts like Hecate Pyx: salt(32) || iv(16) || AES-256-CBC(PKCS#7) of the plaintext. */
async function pyxEncrypt(
  plain: Uint8Array<ArrayBuffer>,
  password: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(16));
  const base = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveKey"],
  );
  const key = await crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: 100_000 },
    base,
    { name: "AES-CBC", length: 256 },
    false,
    ["encrypt"],
  );
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv }, key, plain));
  const out = new Uint8Array(48 + ct.length);
  out.set(salt);
  out.set(iv, 32);
  out.set(ct, 48);
  return out;
}

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

async function fingerprint(dir: string): Promise<string> {
  const parts: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    const st = await Deno.stat(p);
    const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(p));
    parts.push(
      `${e.name} ${st.mtime?.getTime()} ${st.mode} ${
        btoa(String.fromCharCode(...new Uint8Array(d)))
      }`,
    );
  }
  return parts.sort().join("\n");
}

const CREDENTIALS = {
  "prod sql": {
    server: "sql1.corp.example",
    database: "billing",
    port: "1444",
    auth_type: "sql_auth",
    username: "billing_app",
    password: "S3cret:pw/€",
  },
  winbox: {
    server: "sql2.corp.example",
    database: "hr",
    port: 1433,
    auth_type: "windows_auth",
    username: "CORP\\alice",
    password: "alice-pw",
  },
  azure: {
    server: "x.database.windows.net",
    database: "db",
    port: 1433,
    auth_type: "jwt_auth",
    access_token: "eyJ.token.value",
  },
  certy: {
    server: "sql3",
    database: "db",
    port: 1433,
    auth_type: "certificate_auth",
    certificate_path: "/etc/certs/client.pfx",
    certificate_password: "cert-pw",
  },
  tunnel: {
    server: "10.0.0.5",
    database: "db",
    port: 1433,
    auth_type: "ssh_tunnel",
    ssh_host: "bastion.example",
    ssh_port: "2222",
    ssh_username: "jump",
    ssh_password: "ssh-pw",
    sql_username: "sa",
    sql_password: "sa-pw",
  },
};

Deno.test("imports and export", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "hecate-import-" });
  const home = `${root}/home`;
  await initVault({ home, password: MASTER, kdfIterations: 600_000 });
  const pwFile = `${root}/master`;
  await Deno.writeTextFile(pwFile, MASTER, { mode: 0o600 });
  const env = { HECATE_HOME: home, HECATE_PASSWORD_FILE: pwFile, HOME: root };
  const pyx = `${root}/.hecate_pyx`;
  await Deno.mkdir(pyx);
  await Deno.writeFile(`${pyx}/credentials.enc`, await pyxEncrypt(json(CREDENTIALS), LEGACY));
  await Deno.writeFile(
    `${pyx}/totp_secrets.enc`,
    await pyxEncrypt(json({ "prod sql": { secret: "JBSWY3DPEHPK3PXP", enabled: true } }), LEGACY),
  );
  await Deno.writeFile(
    `${pyx}/api_keys.enc`,
    await pyxEncrypt(
      json(["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]),
      LEGACY,
    ),
  );
  const fields = async (name: string, extra: Record<string, string> = {}) => {
    const r = await runHecate(["env", name, "--format", "json"], { env: { ...env, ...extra } });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, string>;
  };
  try {
    await t.step("a wrong legacy password is refused and nothing changes", async () => {
      const before = await fingerprint(pyx);
      const r = await runHecate(["import", "hecate-pyx", "--legacy-password-stdin"], {
        env,
        stdin: "not the old password\n",
      });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /wrong Hecate Pyx password, or the file is damaged/);
      assert.equal((await runHecate(["server", "list"], { env })).stdout.trim(), "No profiles");
      assert.equal(await fingerprint(pyx), before);
    });

    await t.step("hecate-pyx: profiles mapped, the rest reported, sources untouched", async () => {
      const before = await fingerprint(pyx);
      // The master password line comes first on stdin, then the legacy password.
      const r = await runHecate(
        ["--password-stdin", "import", "hecate-pyx", pyx, "--legacy-password-stdin"],
        { env: { HECATE_HOME: home, HOME: root }, stdin: `${MASTER}\n${LEGACY}\n` },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await fingerprint(pyx), before);
      const out = r.stdout;
      assert.match(out, /note +prod sql: renamed to "prod-sql"/);
      assert.match(out, /imported prod-sql: imported \(mssql, auth sql\)/);
      assert.match(out, /imported tunnel: imported \(mssql, auth sql\)/);
      assert.match(out, /note +tunnel: through the SSH bastion jump@bastion\.example:2222/);
      assert.match(
        out,
        /imported certy: imported \(mssql, auth token\), INCOMPLETE: missing tenantId, clientId, keyFile/,
      );
      assert.match(
        out,
        /hecate server edit certy --tenant-id TENANT_ID --client-id CLIENT_ID --key-file KEY_FILE/,
      );
      assert.match(out, /imported prod-sql: TOTP carried over/);
      assert.match(out, /Recovery codes for profile "prod-sql"/);
      assert.match(out, /1 API key\(s\) found as unsalted SHA-256 hashes/);
      assert.match(out, /imported winbox: imported \(mssql, auth windows\)/);
      assert.match(out, /imported azure: imported \(mssql, auth token\)/);
      for (const s of ["S3cret", "JBSWY3DP", "eyJ.token", "cert-pw", "ssh-pw", "sa-pw", "9f86d0"]) {
        assert.ok(!out.includes(s) && !r.stderr.includes(s), `${s} printed`);
      }
      // The carried-over TOTP now guards the profile: a code from the Pyx secret opens it.
      const f = await fields("prod-sql", {
        HECATE_TOTP: await totpCode("JBSWY3DPEHPK3PXP", new Date()),
      });
      assert.deepEqual(
        [f.HECATE_ENGINE, f.HECATE_HOST, f.HECATE_PORT, f.HECATE_DATABASE, f.HECATE_USER],
        ["mssql", "sql1.corp.example", "1444", "billing", "billing_app"],
      );
      assert.equal(f.SQLCMDPASSWORD, "S3cret:pw/€");
      const shown = await runHecate(["--password-stdin", "server", "show", "tunnel", "--json"], {
        env: { HECATE_HOME: home, HOME: root },
        stdin: `${MASTER}\n`,
      });
      assert.equal(shown.code, 0, shown.stderr);
      const tunnel = JSON.parse(shown.stdout);
      assert.deepEqual(tunnel.ssh.hops, [
        { host: "bastion.example", port: 2222, user: "jump", auth: "password" },
      ]);
      assert.deepEqual(Object.keys(tunnel.secrets).sort(), ["password", "ssh.0.password"]);
      assert.ok(!shown.stdout.includes("ssh-pw"));
      const backups = [...Deno.readDirSync(`${home}/backups`)].map((e) => e.name);
      assert.ok(backups.some((n) => /^auto-.*-import\.hecate-backup$/.test(n)), backups.join());
      // A second run adds nothing and replaces nothing.
      const again = await runHecate(
        ["--password-stdin", "import", "hecate-pyx", pyx, "--legacy-password-stdin"],
        { env: { HECATE_HOME: home, HOME: root }, stdin: `${MASTER}\n${LEGACY}\n` },
      );
      assert.match(again.stdout, /skipped +prod-sql: a profile of that name exists already/);
    });

    await t.step("damaged Pyx files are told apart from a wrong password", async () => {
      const bad = `${root}/bad_pyx`;
      await Deno.mkdir(bad);
      const good = await Deno.readFile(`${pyx}/credentials.enc`);
      const cases: [
        string,
        Uint8Array<ArrayBuffer>,
        Uint8Array<ArrayBuffer> | undefined,
        RegExp,
      ][] = [
        // Not salt + iv + whole blocks.
        ["cut", good.slice(0, good.length - 3), undefined, /its length is not/],
        // Decrypts with valid padding, but the plaintext is not UTF-8 JSON (past its first block:
        // a first block that is not UTF-8 reads as a wrong password, see tests/pyx_test.ts).
        [
          "garbage",
          await pyxEncrypt(
            new Uint8Array([
              ...new TextEncoder().encode(`{"${"a".repeat(14)}":"`),
              0xff,
              0xfe,
              0x22,
              0x7d,
            ]),
            LEGACY,
          ),
          undefined,
          /decrypts, but not to UTF-8 JSON/,
        ],
        // credentials.enc opens; totp_secrets.enc has a flipped last block: padding fails there.
        [
          "flipped",
          good,
          (() => {
            const x = good.slice();
            x[x.length - 20]! ^= 0x55;
            return x;
          })(),
          /totp_secrets\.enc is damaged/,
        ],
      ];
      for (const [label, cred, totp, message] of cases) {
        await Deno.writeFile(`${bad}/credentials.enc`, cred);
        if (totp) await Deno.writeFile(`${bad}/totp_secrets.enc`, totp);
        else await Deno.remove(`${bad}/totp_secrets.enc`).catch(() => {});
        const r = await runHecate(["import", "hecate-pyx", bad, "--legacy-password-stdin"], {
          env,
          stdin: `${LEGACY}\n`,
        });
        assert.equal(r.code, 4, `${label}: ${r.stderr}`);
        assert.match(r.stderr, message, label);
      }
    });

    await t.step(".env files: DATABASE_URL, PG* variables", async () => {
      const file = `${root}/app.env`;
      await Deno.writeTextFile(
        file,
        "# app settings\nexport DATABASE_URL='postgresql://u%40x:p%3Aw%20d@db.example:5433/app?sslmode=require'\n",
      );
      const pgFile = `${root}/pg.env`;
      await Deno.writeTextFile(
        pgFile,
        'PGHOST=pg.internal\nPGUSER=reporter\nPGPASSWORD="pw with # hash"\nPGDATABASE=stats\n',
      );
      const before = [await Deno.readTextFile(file), await Deno.readTextFile(pgFile)];
      const a = await runHecate(["import", "dotenv", file, "--name", "app"], { env });
      assert.equal(a.code, 0, a.stderr);
      const f = await fields("app");
      assert.deepEqual(
        [
          f.HECATE_HOST,
          f.HECATE_PORT,
          f.HECATE_USER,
          f.HECATE_PASSWORD,
          f.HECATE_DATABASE,
          f.PGSSLMODE,
        ],
        ["db.example", "5433", "u@x", "p:w d", "app", "require"],
      );
      const b = await runHecate(["import", "dotenv", pgFile, "--name", "stats"], { env });
      assert.equal(b.code, 0, b.stderr);
      const g = await fields("stats");
      assert.deepEqual([g.PGHOST, g.PGUSER, g.PGPASSWORD], [
        "pg.internal",
        "reporter",
        "pw with # hash",
      ]);
      assert.deepEqual([await Deno.readTextFile(file), await Deno.readTextFile(pgFile)], before);
      const none = `${root}/none.env`;
      await Deno.writeTextFile(none, "FOO=1\n");
      assert.equal((await runHecate(["import", "dotenv", none, "--name", "x"], { env })).code, 2);
    });

    await t.step(".pgpass: one profile per line, escapes, wildcards", async () => {
      const file = `${root}/.pgpass`;
      const text = "# comment\n" +
        "db.example:5432:app:alice:pa\\:ss\\\\word\n" +
        "*:*:*:bob:x\n" +
        "localhost:*:*:carol:pw3\n" +
        "bad line\n";
      await Deno.writeTextFile(file, text);
      const r = await runHecate(["import", "pgpass"], { env }); // default: $HOME/.pgpass
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /skipped +line 3: a wildcard host or user/);
      assert.match(r.stdout, /skipped +line 5: not five/);
      const a = await fields("pg-db.example-app");
      assert.deepEqual([a.PGUSER, a.PGPASSWORD, a.PGPORT], ["alice", "pa:ss\\word", "5432"]);
      const c = await fields("pg-localhost-carol");
      assert.deepEqual([c.PGUSER, c.PGPASSWORD, c.PGDATABASE], ["carol", "pw3", undefined]);
      assert.equal(await Deno.readTextFile(file), text);
    });

    await t.step("export --encrypted moves the vault to a new home", async () => {
      const bundle = `${root}/moved.hecate-backup`;
      const e = await runHecate(["export", "--encrypted", bundle], { env });
      assert.equal(e.code, 0, e.stderr);
      const other = `${root}/other-home`;
      const r = await runHecate(["backup", "restore", bundle], {
        env: { ...env, HECATE_HOME: other },
      });
      assert.equal(r.code, 0, r.stderr);
      const list = await runHecate(["server", "list"], { env: { ...env, HECATE_HOME: other } });
      assert.match(list.stdout, /prod-sql/);
      assert.match(list.stdout, /pg-db\.example-app/);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
