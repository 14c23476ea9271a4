/**
 * The native MySQL driver's logins: every authentication plugin the servers here offer
 * (`mysql_native_password` and `client_ed25519` on the real MariaDB, `caching_sha2_password` on
 * the protocol double of tests/support/mysql_double.ts, which verifies the scramble with its own
 * computation), TLS verification and CA pinning, and the refusals that keep a password from
 * going where it could be read.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/mysql_auth_test.ts
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { mysqlDriver } from "../src/db/mysql.ts";
import { ed25519Answer, nativePasswordAnswer } from "../src/db/mysql/auth.ts";
import type { ConnectSettings, DbConnection } from "../src/db/driver.ts";
import { type MariadbServer, startMariadb } from "./support/mariadb.ts";
import { startMysqlDouble } from "./support/mysql_double.ts";
import { issueCert, makeCa } from "./support/tls_certs.ts";
import { hecateError } from "./support/hecate_error.ts";
import { MASTER_PASSWORD, runHecate, tempDir } from "./support/cli.ts";

function settings(over: Partial<ConnectSettings>): ConnectSettings {
  return {
    engine: "mysql",
    host: "127.0.0.1",
    tls: { mode: "disable" },
    connectTimeoutMs: 5000,
    ...over,
  };
}

async function one(conn: DbConnection, sql: string): Promise<unknown[]> {
  for await (const set of conn.query(sql, [])) {
    for await (const row of set.rows) return row;
  }
  throw new Error("no row");
}

Deno.test("auth answers match independent computations", async () => {
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  // With a 32-byte password, MariaDB's ed25519 is RFC 8032 Ed25519 with the password as seed.
  const pw32 = "0123456789abcdef0123456789abcdef";
  const ours = await ed25519Answer(pw32, nonce);
  const theirs = ed25519.sign(nonce, new TextEncoder().encode(pw32));
  assert.deepEqual(ours, theirs);
  // Any other length: still a valid signature under the public key MariaDB stores.
  const { ed25519PublicKey } = await import("../src/db/mysql/auth.ts");
  for (const pw of ["", "short", "ünïcødé 🔑 pass phrase longer than thirty-two bytes"]) {
    const sig = await ed25519Answer(pw, nonce);
    assert.ok(ed25519.verify(sig, nonce, await ed25519PublicKey(pw)), pw);
  }
  const n20 = nonce.subarray(0, 20);
  const h1 = createHash("sha1").update("secret").digest();
  const h2 = createHash("sha1").update(h1).digest();
  const mask = createHash("sha1").update(n20).update(h2).digest();
  assert.deepEqual(
    await nativePasswordAnswer("secret", n20),
    new Uint8Array(h1.map((b, i) => b ^ mask[i]!)),
  );
});

Deno.test("logins against MariaDB: native password, ed25519, TLS verify and pinning", async (t) => {
  const db: MariadbServer = await startMariadb({ tls: true });
  await using dir = await tempDir("hecate-mysql-auth-");
  const base = (over: Partial<ConnectSettings> = {}) =>
    settings({
      port: db.port,
      user: db.user,
      password: db.password,
      database: db.database,
      ...over,
    });
  try {
    await db.sql(
      "INSTALL SONAME 'auth_ed25519';\n" +
        "CREATE USER 'ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pässword 🔑');\n" +
        "CREATE USER 'nat'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('nat-pw');\n" +
        `GRANT ALL ON ${db.database}.* TO 'ed'@'%', 'nat'@'%';`,
    );
    assert.equal(
      (await db.sql(
        "select plugin from mysql.global_priv join mysql.user using (user, host) " +
          "where user = 'ed'",
      )).trim(),
      "ed25519",
    );

    await t.step("client_ed25519 logs in; a wrong password is auth_failed", async () => {
      const c = await mysqlDriver.connect(base({ user: "ed", password: "ed-pässword 🔑" }));
      assert.deepEqual(await one(c, "select current_user()"), ["ed@%"]);
      await c.close();
      const e = await hecateError(
        mysqlDriver.connect(base({ user: "ed", password: "ed-password" })),
      );
      assert.equal(e.code, "auth_failed");
      assert.match(e.message, /error 1045, SQLSTATE 28000/);
      assert.ok(!e.message.includes("ed-password"));
    });

    await t.step("mysql_native_password logs in; a wrong password is auth_failed", async () => {
      const c = await mysqlDriver.connect(base({ user: "nat", password: "nat-pw" }));
      assert.deepEqual(await one(c, "select current_user()"), ["nat@%"]);
      await c.close();
      const e = await hecateError(mysqlDriver.connect(base({ user: "nat", password: "nat-px" })));
      assert.equal(e.code, "auth_failed");
    });

    await t.step("TLS verify with the profile's CA pinned", async () => {
      for (const user of [db.user, "ed"]) {
        const c = await mysqlDriver.connect(base({
          user,
          password: user === "ed" ? "ed-pässword 🔑" : db.password,
          tls: { mode: "verify", caFile: db.caFile! },
        }));
        const [cipher] = await one(
          c,
          "select variable_value from information_schema.session_status " +
            "where variable_name = 'Ssl_cipher'",
        );
        assert.ok(typeof cipher === "string" && cipher.length > 0, String(cipher));
        await c.close();
      }
    });

    await t.step("TLS verify refuses a server the CA did not sign, or another name", async () => {
      const rogue = await makeCa(dir.path, "rogue");
      const defaultStore = await hecateError(
        mysqlDriver.connect(base({ tls: { mode: "verify" } })),
      );
      assert.equal(defaultStore.code, "connection_failed");
      assert.match(defaultStore.message, /TLS/);
      const pinnedOther = await hecateError(
        mysqlDriver.connect(base({ tls: { mode: "verify", caFile: rogue.certFile } })),
      );
      assert.equal(pinnedOther.code, "connection_failed");
      assert.match(pinnedOther.message, /TLS/);
      const wrongName = await hecateError(mysqlDriver.connect(base({
        tls: { mode: "verify", caFile: db.caFile!, serverName: "db.example.org" },
      })));
      assert.equal(wrongName.code, "connection_failed");
      for (const e of [defaultStore, pinnedOther, wrongName]) {
        assert.ok(!e.message.includes(db.password));
      }
    });

    await t.step("TLS insecure encrypts without verifying", async () => {
      const c = await mysqlDriver.connect(base({ tls: { mode: "insecure" } }));
      const [cipher] = await one(
        c,
        "select variable_value from information_schema.session_status " +
          "where variable_name = 'Ssl_cipher'",
      );
      assert.ok(typeof cipher === "string" && cipher.length > 0);
      await c.close();
    });
  } finally {
    await db.stop();
  }
});

/** Whether any payload the double received holds the text. */
function sawText(payloads: Uint8Array[], text: string): boolean {
  const needle = new TextEncoder().encode(text);
  return payloads.some((p) => {
    outer: for (let i = 0; i + needle.length <= p.length; i++) {
      for (let j = 0; j < needle.length; j++) if (p[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  });
}

Deno.test("caching_sha2_password against the protocol double", async (t) => {
  const password = "sha2-Secret-pw";
  const s = (port: number, over: Partial<ConnectSettings> = {}) =>
    settings({ port, user: "u", password, ...over });

  await t.step("fast path: the scramble is verified by the double", async () => {
    await using d = await startMysqlDouble({ password });
    const c = await mysqlDriver.connect(s(d.port));
    await c.ping();
    await c.close();
    assert.equal(d.log.accepted, 1);
    assert.ok(!sawText(d.log.payloads, password));
  });

  await t.step("fast path with a wrong password is auth_failed", async () => {
    await using d = await startMysqlDouble({ password });
    const e = await hecateError(mysqlDriver.connect(s(d.port, { password: "not-it" })));
    assert.equal(e.code, "auth_failed");
    assert.equal(d.log.refused, 1);
  });

  await t.step(
    "full path without TLS and without a pinned key: refused, nothing sent",
    async () => {
      await using d = await startMysqlDouble({ password, cached: false });
      const e = await hecateError(mysqlDriver.connect(s(d.port)));
      assert.equal(e.code, "auth_failed");
      assert.match(e.message, /refused by Hecate: .*the password was not sent/);
      assert.equal(d.log.keyRequests, 0);
      assert.ok(!sawText(d.log.payloads, password));
    },
  );

  await t.step("full path with the server's RSA key pinned", async () => {
    await using d = await startMysqlDouble({ password, cached: false });
    const c = await mysqlDriver.connect(s(d.port, { extra: { serverPublicKey: d.publicKeyPem } }));
    await c.ping();
    await c.close();
    assert.equal(d.log.accepted, 1);
    assert.equal(d.log.keyRequests, 0);
    assert.ok(!sawText(d.log.payloads, password));
  });

  await t.step("full path asking for the key only when allowed", async () => {
    await using d = await startMysqlDouble({ password, cached: false });
    const c = await mysqlDriver.connect(s(d.port, {
      tls: { mode: "disable", allowPlainAuth: true },
    }));
    await c.close();
    assert.equal(d.log.keyRequests, 1);
    assert.equal(d.log.accepted, 1);
    assert.ok(!sawText(d.log.payloads, password));
  });

  await t.step("full path over verified TLS sends the password inside TLS", async () => {
    await using dir = await tempDir("hecate-mysql-double-");
    const ca = await makeCa(dir.path, "ca");
    const cert = await issueCert(ca, dir.path, "server", { cn: "127.0.0.1", server: true });
    await using d = await startMysqlDouble({
      password,
      cached: false,
      tls: {
        certPem: await Deno.readTextFile(cert.certFile),
        keyPem: await Deno.readTextFile(cert.keyFile),
      },
    });
    const c = await mysqlDriver.connect(
      s(d.port, { tls: { mode: "verify", caFile: ca.certFile } }),
    );
    await c.close();
    assert.ok(d.log.tls);
    assert.equal(d.log.accepted, 1);
    assert.ok(sawText(d.log.payloads, password)); // what the double read inside TLS
    // Unverified TLS: whoever answers could read it, so it is refused without the allow flag.
    await using d2 = await startMysqlDouble({
      password,
      cached: false,
      tls: {
        certPem: await Deno.readTextFile(cert.certFile),
        keyPem: await Deno.readTextFile(cert.keyFile),
      },
    });
    const e = await hecateError(mysqlDriver.connect(s(d2.port, { tls: { mode: "insecure" } })));
    assert.equal(e.code, "auth_failed");
    assert.equal(d2.log.accepted, 0);
  });

  await t.step("mysql_clear_password without TLS: refused unless allowed", async () => {
    await using d = await startMysqlDouble({
      password,
      plugin: "mysql_native_password",
      clearPassword: true,
    });
    const e = await hecateError(mysqlDriver.connect(s(d.port)));
    assert.equal(e.code, "auth_failed");
    assert.match(e.message, /cleartext.*the password was not sent/);
    assert.ok(!sawText(d.log.payloads, password));
    const c = await mysqlDriver.connect(s(d.port, {
      tls: { mode: "disable", allowPlainAuth: true },
    }));
    await c.close();
    assert.equal(d.log.accepted, 1);
  });
});

Deno.test("hecate query: a server asking for the password in clear gets nothing (exit 3)", async () => {
  const password = "cli-Secret-pw-41";
  await using dir = await tempDir("hecate-mysql-clear-");
  const home = `${dir.path}/home`;
  const run = (stdin: string, ...args: string[]) =>
    runHecate(["--password-stdin", ...args], { home, stdin: `${MASTER_PASSWORD}\n${stdin}` });
  assert.equal(
    (await runHecate(["--password-stdin", "init", "--kdf-iterations", "600000"], {
      home,
      stdin: `${MASTER_PASSWORD}\n`,
    })).code,
    0,
  );
  for (
    const [name, options] of [
      ["clear", { clearPassword: true, plugin: "mysql_native_password" as const }],
      ["sha2full", { cached: false }],
    ] as const
  ) {
    await using d = await startMysqlDouble({ password, ...options });
    const add = await run(
      `${password}\n`,
      ...["server", "add", name, "--engine", "mysql", "--host", "127.0.0.1", "--port"],
      ...[String(d.port), "--user", "u", "--tls", "disable", "--secret-stdin"],
    );
    assert.equal(add.code, 0, add.stderr);
    const r = await run("", "query", name, "select 1");
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /refused by Hecate: .*the password was not sent/);
    assert.ok(!r.stderr.includes(password));
    assert.ok(!sawText(d.log.payloads, password), `${name}: the password reached the server`);
    assert.equal(d.log.accepted, 0);
    // Allowed explicitly, the same server gets it (cleartext, or RSA-encrypted with its key).
    const edit = await run("", "server", "edit", name, "--allow-plain-auth");
    assert.equal(edit.code, 0, edit.stderr);
    const ok = await run("", "query", name, "select 1");
    assert.equal(d.log.accepted, 1, ok.stderr);
  }
});
