/**
 * TLS and client-certificate authentication against real PostgreSQL and MariaDB servers with
 * certificates made by openssl: the library path (profile → provider → driver) and the CLI end to
 * end. Run: NO_COLOR=1 scripts/deno.sh test -A tests/tls_cert_test.ts
 */

import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { connectSettings, providerFor } from "../providers/mod.ts";
import { tlsWarnings } from "../src/api/connection.ts";
import { openDbConnection } from "../src/connect.ts";
import type { DbConnection, Engine } from "../src/db/driver.ts";
import { HecateError } from "../src/errors.ts";
import type { Profile, SecretValue } from "../src/profile.ts";
import { runHecate, stackLines } from "./support/cli.ts";
import { type MariadbServer, startMariadb } from "./support/mariadb.ts";
import { type PgServer, startPostgres } from "./support/postgres.ts";
import { encryptKey, issueCert, makeCa, makePfx } from "./support/tls_certs.ts";
import { hecateError } from "./support/hecate_error.ts";

const PASSPHRASE = "k3y-Passphrase-xyzzy";
const MASTER = "master password for tls tests";

/** Client-certificate files for one server. */
interface CertFiles {
  certFile: string;
  keyFile: string;
  encKeyFile: string;
  pfxFile: string;
}

/** A server under test with what the profiles need. */
interface Target {
  engine: Engine;
  port: number;
  database: string;
  caFile: string;
  certUser: string;
  files: CertFiles;
  /** SQL that returns the session's user name and whether TLS is on (true or 1). */
  whoAmI: string;
}

async function certFiles(dir: string, name: string, certFile: string, keyFile: string) {
  const encKeyFile = `${dir}/${name}-enc.key`, pfxFile = `${dir}/${name}.p12`;
  await encryptKey(keyFile, encKeyFile, PASSPHRASE);
  await makePfx({ certFile, keyFile }, pfxFile, PASSPHRASE);
  return { certFile, keyFile, encKeyFile, pfxFile };
}

function profileFor(
  t: Target,
  over: Partial<Profile> & { secrets?: Record<string, SecretValue> } = {},
): Profile {
  return {
    name: `${t.engine}-cert`,
    engine: t.engine,
    host: "127.0.0.1",
    port: t.port,
    database: t.database,
    user: t.certUser,
    auth: "certificate",
    params: { certFile: t.files.certFile, keyFile: t.files.keyFile },
    tls: { mode: "verify", caFile: t.caFile },
    secrets: {},
    created: "",
    updated: "",
    ...over,
  };
}

async function rows(conn: DbConnection, sql: string): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for await (const set of conn.query(sql, [])) for await (const r of set.rows) out.push(r);
  return out;
}

/** Connects with a profile, checks the user and TLS, closes. */
async function loginAs(t: Target, p: Profile): Promise<void> {
  const conn = await openDbConnection(p);
  try {
    const got = await rows(conn, t.whoAmI);
    // PostgreSQL says true, MySQL 1.
    assert.deepEqual(got.map(([u, tls]) => [u, tls === true || tls === 1]), [[t.certUser, true]]);
  } finally {
    await conn.close();
  }
}

/** Runs `hecate --home HOME ...args` with text on stdin (tests/support/cli.ts). */
function hecate(home: string, stdin: string, ...args: string[]) {
  return runHecate(args, { home, stdin, cwd: "/" });
}

/** {@link hecate} in a working directory. */
function hecateIn(cwd: string, home: string, stdin: string, ...args: string[]) {
  return runHecate(args, { home, stdin, cwd });
}

Deno.test("TLS and client certificates against PostgreSQL and MariaDB", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "hecate-tls-test-" });
  let pg: PgServer | undefined;
  let maria: MariadbServer | undefined;
  try {
    [pg, maria] = await Promise.all([startPostgres({ tls: true }), startMariadb({ tls: true })]);
    // A CA nobody trusts, with a client certificate for the same user name and a server
    // certificate for 127.0.0.1.
    const rogue = await makeCa(dir, "rogue");
    const rogueClient = await issueCert(rogue, dir, "rogue-client", { cn: "hecate_cert" });

    const pgCert = `${dir}/pg-client.crt`, pgKey = `${dir}/pg-client.key`;
    await Deno.writeTextFile(pgCert, pg.clientCert!.certPem);
    await Deno.writeTextFile(pgKey, pg.clientCert!.keyPem, { mode: 0o600 });
    const targets: Target[] = [
      {
        engine: "postgres",
        port: pg.port,
        database: pg.database,
        caFile: pg.caFile!,
        certUser: pg.clientCert!.user,
        files: await certFiles(dir, "pg", pgCert, pgKey),
        whoAmI: "select current_user::text, ssl from pg_stat_ssl where pid = pg_backend_pid()",
      },
      {
        engine: "mysql",
        port: maria.port,
        database: maria.database,
        caFile: maria.caFile!,
        certUser: maria.clientCert!.user,
        files: await certFiles(
          dir,
          "maria",
          maria.clientCert!.certFile,
          maria.clientCert!.keyFile,
        ),
        whoAmI: "select substring_index(current_user(), '@', 1), " +
          "(select variable_value like 'TLS%' from information_schema.session_status " +
          "where variable_name = 'Ssl_version') = 1",
      },
    ];

    for (const tg of targets) {
      const E = tg.engine;

      await t.step(`${E}: PEM certificate and key log in, over verified TLS`, async () => {
        await loginAs(tg, profileFor(tg));
      });

      await t.step(`${E}: encrypted key with its passphrase logs in`, async () => {
        await loginAs(
          tg,
          profileFor(tg, {
            params: { certFile: tg.files.certFile, keyFile: tg.files.encKeyFile },
            secrets: { keyPassphrase: { value: PASSPHRASE } },
          }),
        );
      });

      await t.step(`${E}: PKCS#12 bundle logs in (passphrase as env: reference)`, async () => {
        Deno.env.set("HECATE_TEST_PFX_PASS", PASSPHRASE);
        try {
          await loginAs(
            tg,
            profileFor(tg, {
              params: { pfxFile: tg.files.pfxFile },
              secrets: { keyPassphrase: { ref: "env:HECATE_TEST_PFX_PASS" } },
            }),
          );
        } finally {
          Deno.env.delete("HECATE_TEST_PFX_PASS");
        }
      });

      await t.step(`${E}: an RSA certificate in a PKCS#12 bundle logs in`, async () => {
        const caDir = tg.caFile.slice(0, tg.caFile.lastIndexOf("/"));
        const ca = { certFile: tg.caFile, keyFile: `${caDir}/ca.key` };
        const rsa = await issueCert(ca, dir, `${E}-rsa`, { cn: tg.certUser, rsa: true });
        const keyText = await Deno.readTextFile(rsa.keyFile);
        assert.equal(createPrivateKey(keyText).asymmetricKeyType, "rsa");
        await makePfx(rsa, `${dir}/${E}-rsa.p12`, PASSPHRASE);
        await loginAs(
          tg,
          profileFor(tg, {
            params: { pfxFile: `${dir}/${E}-rsa.p12` },
            secrets: { keyPassphrase: { value: PASSPHRASE } },
          }),
        );
      });

      await t.step(`${E}: no client certificate is auth_failed`, async () => {
        const e = await hecateError(
          openDbConnection(
            profileFor(tg, {
              auth: "sql",
              params: {},
              secrets: { password: { value: "x-not-it" } },
            }),
          ),
        );
        assert.equal(e.code, "auth_failed", e.message);
        assert.ok(!e.message.includes("x-not-it"));
      });

      await t.step(`${E}: a certificate from an unknown CA is auth_failed`, async () => {
        const e = await hecateError(
          openDbConnection(
            profileFor(tg, {
              params: { certFile: rogueClient.certFile, keyFile: rogueClient.keyFile },
            }),
          ),
        );
        assert.equal(e.code, "auth_failed", e.message);
        assert.match(e.message, /refused the client certificate/);
      });

      await t.step(`${E}: a key that does not belong to the certificate is refused`, async () => {
        const e = await hecateError(
          openDbConnection(
            profileFor(tg, {
              params: { certFile: tg.files.certFile, keyFile: rogueClient.keyFile },
            }),
          ),
        );
        assert.equal(e.code, "invalid_profile");
        assert.match(e.message, /do not match/);
      });

      await t.step(`${E}: encrypted key without or with a wrong passphrase`, async () => {
        const params = { certFile: tg.files.certFile, keyFile: tg.files.encKeyFile };
        const none = await hecateError(openDbConnection(profileFor(tg, { params })));
        assert.equal(none.code, "invalid_profile");
        assert.match(none.message, /is encrypted and the profile has no secret 'keyPassphrase'/);
        const wrong = "wrong-Passphrase-123";
        const bad = await hecateError(
          openDbConnection(
            profileFor(tg, { params, secrets: { keyPassphrase: { value: wrong } } }),
          ),
        );
        assert.equal(bad.code, "auth_failed");
        assert.match(bad.message, /wrong passphrase/);
        assert.ok(!bad.message.includes(wrong));
        const pfx = await hecateError(
          openDbConnection(
            profileFor(tg, {
              params: { pfxFile: tg.files.pfxFile },
              secrets: { keyPassphrase: { value: wrong } },
            }),
          ),
        );
        assert.equal(pfx.code, "auth_failed");
        assert.ok(!pfx.message.includes(wrong));
      });

      await t.step(`${E}: a missing certificate file names the field`, async () => {
        const e = await hecateError(
          openDbConnection(
            profileFor(tg, { params: { certFile: `${dir}/nope.crt`, keyFile: tg.files.keyFile } }),
          ),
        );
        assert.equal(e.code, "invalid_profile");
        assert.match(e.message, /cannot read certFile ".*nope\.crt": file not found/);
      });

      await t.step(`${E}: a server certificate from an unknown CA fails verification`, async () => {
        const e = await hecateError(
          openDbConnection(profileFor(tg, { tls: { mode: "verify", caFile: rogue.certFile } })),
        );
        assert.equal(e.code, "connection_failed");
        assert.match(e.message, /TLS/);
        assert.ok(!e.message.includes("\n"));
        // Without a CA file the system store is used, which does not know the test CA either.
        const noCa = await hecateError(
          openDbConnection(profileFor(tg, { tls: { mode: "verify" } })),
        );
        assert.equal(noCa.code, "connection_failed");
      });

      await t.step(`${E}: verification explicitly off connects, with a warning`, async () => {
        const p = profileFor(tg, { tls: { mode: "insecure", caFile: rogue.certFile } });
        await loginAs(tg, p);
        assert.deepEqual(tlsWarnings(p), [
          `TLS certificate verification is off for profile "${p.name}" (--tls insecure)`,
        ]);
      });

      await t.step(`${E}: profile validation names what is missing`, () => {
        const check = (p: Profile, re: RegExp) => {
          try {
            providerFor(p);
          } catch (e) {
            assert.ok(e instanceof HecateError);
            assert.equal(e.code, "invalid_profile");
            assert.equal(e.exitCode, 17);
            assert.match(e.message, re);
            return;
          }
          assert.fail("expected invalid_profile");
        };
        check(profileFor(tg, { params: {} }), /missing field 'certFile' \(or 'pfxFile'\)/);
        check(profileFor(tg, { params: { certFile: "/c" } }), /missing field 'keyFile'/);
        check(profileFor(tg, { params: { pfxFile: "/p", certFile: "/c" } }), /not both/);
        check(profileFor(tg, { tls: { mode: "disable" } }), /needs TLS/);
        const { user: _, ...noUser } = profileFor(tg);
        check(noUser as Profile, /missing field 'user'/);
      });
    }

    await t.step("mysql: the host name or address must be in the server certificate", async () => {
      // Swap the server certificate (same CA) and reload it: FLUSH SSL.
      const tlsDir = `${maria!.root}/tls`;
      const ca = { certFile: `${tlsDir}/ca.crt`, keyFile: `${tlsDir}/ca.key` };
      const swap = async (san: string) => {
        const c = await issueCert(ca, dir, `srv-${san.replace(/\W/g, "")}`, {
          cn: "db.example",
          server: true,
          san,
        });
        await Deno.copyFile(c.certFile, `${tlsDir}/server.crt`);
        await Deno.copyFile(c.keyFile, `${tlsDir}/server.key`);
        await maria!.sql("flush ssl");
      };
      const mysql = targets[1]!;
      try {
        await swap("DNS:db.example");
        const e = await hecateError(openDbConnection(profileFor(mysql)));
        assert.equal(e.code, "connection_failed");
        assert.match(e.message, /does not match|altnames/);
        await loginAs(mysql, profileFor(mysql, { tls: { mode: "insecure" } }));
        // An IP address is checked as that address (not as "localhost").
        await swap("DNS:localhost");
        assert.equal(
          (await hecateError(openDbConnection(profileFor(mysql)))).code,
          "connection_failed",
        );
        await loginAs(mysql, profileFor(mysql, { host: "localhost" }));
        await swap("IP:127.0.0.1");
        await loginAs(mysql, profileFor(mysql));
      } finally {
        await swap("IP:127.0.0.1,DNS:localhost");
      }
    });

    await t.step("CLI: certificate profiles end to end", async () => {
      const home = `${dir}/home`;
      const [pgT, myT] = targets as [Target, Target];
      const init = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "init",
        "--kdf-iterations",
        "600000",
      );
      assert.equal(init.code, 0, init.stderr);

      // MariaDB with an encrypted PEM key: the passphrase is the second stdin line.
      const add = await hecate(
        home,
        `${MASTER}\n${PASSPHRASE}\n`,
        "--password-stdin",
        "server",
        "add",
        "maria-cert",
        "--engine",
        "mysql",
        "--host",
        "127.0.0.1",
        "--port",
        String(myT.port),
        "--user",
        myT.certUser,
        "--database",
        myT.database,
        "--auth",
        "certificate",
        "--cert-file",
        myT.files.certFile,
        "--key-file",
        myT.files.encKeyFile,
        "--ca-file",
        myT.caFile,
        "--secret-stdin",
      );
      assert.equal(add.code, 0, add.stderr);
      const q = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "query",
        "maria-cert",
        "select current_user() as who, ? as echo",
        "--param",
        "it's me",
        "--format",
        "csv",
      );
      assert.equal(q.code, 0, q.stderr);
      assert.equal(q.stdout, `who,echo\n${myT.certUser}@%,it's me\n`);
      assert.equal(q.stderr, "");

      // PostgreSQL with PKCS#12 from a relative path; the passphrase is asked for because the
      // bundle is protected.
      const rel = await hecateIn(
        dir,
        home,
        `${MASTER}\n${PASSPHRASE}\n`,
        "--password-stdin",
        "server",
        "add",
        "pg-cert",
        "--engine",
        "postgres",
        "--host",
        "127.0.0.1",
        "--port",
        String(pgT.port),
        "--user",
        pgT.certUser,
        "--database",
        pgT.database,
        "--auth",
        "certificate",
        "--pfx-file",
        pgT.files.pfxFile.slice(dir.length + 1), // relative to the working directory
        "--ca-file",
        pgT.caFile,
        "--secret-stdin",
      );
      assert.equal(rel.code, 0, rel.stderr);
      const pq = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "query",
        "pg-cert",
        "select current_user",
        "--format",
        "csv",
      );
      assert.equal(pq.code, 0, pq.stderr);
      assert.equal(pq.stdout, `current_user\n${pgT.certUser}\n`);

      const shown = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "server",
        "show",
        "maria-cert",
        "--json",
      );
      assert.equal(shown.code, 0, shown.stderr);
      assert.ok(!shown.stdout.includes(PASSPHRASE));
      const profile = JSON.parse(shown.stdout);
      assert.deepEqual(profile.secrets, { keyPassphrase: "********" });
      assert.deepEqual(profile.params, {
        certFile: myT.files.certFile,
        keyFile: myT.files.encKeyFile,
      });

      const pgShown = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "server",
        "show",
        "pg-cert",
        "--json",
      );
      assert.equal(JSON.parse(pgShown.stdout).params.pfxFile, pgT.files.pfxFile); // stored absolute

      // An encrypted key needs its passphrase: without a terminal and without --secret-stdin the
      // profile is not added.
      const noPass = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "server",
        "add",
        "nopass",
        "--engine",
        "mysql",
        "--host",
        "127.0.0.1",
        "--user",
        "u",
        "--auth",
        "certificate",
        "--cert-file",
        myT.files.certFile,
        "--key-file",
        myT.files.encKeyFile,
      );
      assert.equal(noPass.code, 19, noPass.stderr);
      assert.match(noPass.stderr, /No secret given for the profile and no terminal to ask on/);

      // A missing key file is named, exit 17, and nothing is added.
      const missing = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "server",
        "add",
        "half",
        "--engine",
        "mysql",
        "--host",
        "127.0.0.1",
        "--user",
        "u",
        "--auth",
        "certificate",
        "--cert-file",
        myT.files.certFile,
      );
      assert.equal(missing.code, 17, missing.stderr);
      assert.match(missing.stderr, /^hecate: error: .*missing field 'keyFile'/);
      const list = await hecate(home, `${MASTER}\n`, "--password-stdin", "server", "list");
      assert.ok(!list.stdout.includes("half") && !list.stdout.includes("nopass"));

      // A client certificate from an unknown CA: refused login, exit 3, one line, no passphrase.
      const rogueAdd = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "server",
        "add",
        "maria-rogue",
        "--engine",
        "mysql",
        "--host",
        "127.0.0.1",
        "--port",
        String(myT.port),
        "--user",
        myT.certUser,
        "--auth",
        "certificate",
        "--cert-file",
        rogueClient.certFile,
        "--key-file",
        rogueClient.keyFile,
        "--ca-file",
        myT.caFile,
      );
      assert.equal(rogueAdd.code, 0, rogueAdd.stderr);
      const refused = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "query",
        "maria-rogue",
        "select 1",
      );
      assert.equal(refused.code, 3, refused.stderr);
      assert.match(
        refused.stderr,
        /^hecate: error: Login to MySQL at .* refused: TLS: the server refused the client certificate\n/,
      );
      assert.deepEqual(stackLines(refused.stderr), []);

      // Verification off: works, and says so on every use.
      const edit = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "server",
        "edit",
        "maria-cert",
        "--tls",
        "insecure",
      );
      assert.equal(edit.code, 0, edit.stderr);
      for (let i = 0; i < 2; i++) {
        const w = await hecate(
          home,
          `${MASTER}\n`,
          "--password-stdin",
          "query",
          "maria-cert",
          "select 1 as one",
          "--format",
          "csv",
        );
        assert.equal(w.code, 0, w.stderr);
        assert.equal(w.stdout, "one\n1\n");
        assert.equal(
          w.stderr,
          'hecate: warning: TLS certificate verification is off for profile "maria-cert" (--tls insecure)\n',
        );
      }
      // Back to verify, but against a CA that did not sign the server: connection_failed, exit 6.
      const bad = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "server",
        "edit",
        "maria-cert",
        "--tls",
        "verify",
        "--ca-file",
        rogue.certFile,
      );
      assert.equal(bad.code, 0, bad.stderr);
      const unknownCa = await hecate(
        home,
        `${MASTER}\n`,
        "--password-stdin",
        "query",
        "maria-cert",
        "select 1",
      );
      assert.equal(unknownCa.code, 6, unknownCa.stderr);
      assert.match(unknownCa.stderr, /TLS/);
      for (const r of [add, q, rel, pq, shown, missing, refused, unknownCa]) {
        assert.ok(!r.stdout.includes(PASSPHRASE) && !r.stderr.includes(PASSPHRASE));
      }
    });
  } finally {
    await Promise.all([pg?.stop(), maria?.stop()]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connectSettings gives the driver the client certificate in memory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hecate-tls-unit-" });
  try {
    const ca = await makeCa(dir, "ca");
    const c = await issueCert(ca, dir, "client", { cn: "someone" });
    const s = await connectSettings({
      name: "x",
      engine: "mysql",
      host: "db.example",
      user: "someone",
      auth: "certificate",
      params: { certFile: c.certFile, keyFile: c.keyFile },
      tls: { mode: "verify", caFile: ca.certFile },
      secrets: {},
      created: "",
      updated: "",
    });
    assert.equal(s.user, "someone");
    assert.equal(s.password, undefined);
    assert.equal(s.tls.mode, "verify");
    assert.equal(s.tls.caFile, ca.certFile);
    assert.equal(s.tls.certPem, await Deno.readTextFile(c.certFile));
    assert.equal(s.tls.keyPem, await Deno.readTextFile(c.keyFile));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
