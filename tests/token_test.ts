/**
 * The `token` provider's OAuth2 client-credentials flow against a local token endpoint
 * (tests/support/token_server.ts), and end to end through the SQL Server test double.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/token_test.ts
 */

import assert from "node:assert/strict";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { initVault, openVault } from "../src/hecate.ts";
import { requestToken, TokenCache } from "../providers/token/oauth.ts";
import { clientAssertion } from "../providers/token/assertion.ts";
import { tokenCache } from "../providers/token.ts";
import { startTokenServer } from "./support/token_server.ts";
import { startTdsDouble } from "./support/tds_double.ts";
import { makeTestCerts } from "./support/tds/certs.ts";
import { runHecate } from "./support/cli.ts";
import { hecateError as rejects } from "./support/hecate_error.ts";

const CLIENT_ID = "11111111-2222-3333-4444-555555555555";
const CLIENT_SECRET = "client-secret-value-Zq8~xY";
const MASTER = "master password for token tests";

Deno.test("TokenCache reuses a token until shortly before expiry, then refreshes", async () => {
  let now = 1_000_000;
  const cache = new TokenCache({ now: () => now });
  let fetched = 0;
  const fetch = (t: number) => Promise.resolve({ token: `t${++fetched}`, expiresAt: t + 3600_000 });
  assert.equal(await cache.get("k", fetch), "t1");
  now += 3000_000; // 50 minutes: 10 minutes left, more than the 5-minute margin
  assert.equal(await cache.get("k", fetch), "t1");
  now += 301_000; // less than 5 minutes left
  assert.equal(await cache.get("k", fetch), "t2");
  assert.equal(await cache.get("other", fetch), "t3");
  // A short-lived token is reused for nine tenths of its life.
  const short = (t: number) => Promise.resolve({ token: `s${++fetched}`, expiresAt: t + 10_000 });
  const first = await cache.get("short", short);
  now += 8_900;
  assert.equal(await cache.get("short", short), first);
  now += 200;
  assert.notEqual(await cache.get("short", short), first);
});

Deno.test("client-credentials requests against a local endpoint", async (t) => {
  const certs = await makeTestCerts();
  await using server = startTokenServer({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    certPem: certs.clientCertPem,
    expiresIn: 120,
  });
  const url = server.url("tenant-a");
  const base = { tokenUrl: url, clientId: CLIENT_ID, scope: "api://x/.default", timeoutMs: 2000 };
  try {
    await t.step("a client secret gets a token with its expiry", async () => {
      const before = Date.now();
      const tok = await requestToken({ ...base, clientSecret: CLIENT_SECRET }, before);
      assert.equal(tok.token, server.issued.at(-1));
      assert.equal(tok.expiresAt, before + 120_000);
      assert.deepEqual(server.requests.at(-1), {
        grant_type: "client_credentials",
        client_id: CLIENT_ID,
        scope: "api://x/.default",
        client_secret: CLIENT_SECRET,
      });
    });

    await t.step(
      "a certificate-signed assertion is accepted; its header names the cert",
      async () => {
        const assertion = () =>
          clientAssertion({
            clientId: CLIENT_ID,
            audience: url,
            certPem: certs.clientCertPem,
            keyPem: Deno.readTextFileSync(certs.clientKeyFile),
            passphrase: certs.passphrase,
          });
        const tok = await requestToken({ ...base, assertion });
        assert.equal(tok.token, server.issued.at(-1));
        const sent = server.requests.at(-1)!;
        assert.equal(sent.client_secret, undefined);
        const header = decodeProtectedHeader(sent.client_assertion!);
        assert.equal(header.alg, "RS256");
        assert.ok(header.x5t && header["x5t#S256"]);
        const claims = decodeJwt(sent.client_assertion!);
        assert.equal(claims.aud, url);
        assert.equal(claims.iss, CLIENT_ID);
        assert.ok(claims.exp! - claims.iat! <= 600);
      },
    );

    await t.step("a wrong secret or an unrelated key is refused: auth_failed", async () => {
      const wrong = await rejects(requestToken({ ...base, clientSecret: "wrong-secret-42" }));
      assert.equal(wrong.code, "auth_failed");
      assert.equal(
        wrong.message,
        "The token endpoint refused the client credentials: HTTP 401 (invalid_client)",
      );
      const other = await makeTestCerts();
      try {
        const e = await rejects(requestToken({
          ...base,
          assertion: () =>
            clientAssertion({
              clientId: CLIENT_ID,
              audience: url,
              certPem: other.clientCertPem,
              keyPem: Deno.readTextFileSync(other.clientPlainKeyFile),
            }),
        }));
        assert.equal(e.code, "auth_failed");
      } finally {
        await Deno.remove(other.dir, { recursive: true });
      }
    });

    await t.step("a wrong key passphrase is a clear profile error", async () => {
      const e = await rejects(clientAssertion({
        clientId: CLIENT_ID,
        audience: url,
        certPem: certs.clientCertPem,
        keyPem: Deno.readTextFileSync(certs.clientKeyFile),
        passphrase: "not-it",
      }));
      assert.equal(e.code, "invalid_profile");
      assert.match(e.message, /wrong or missing key passphrase/);
    });

    await t.step("a redirect is not followed: the secret never reaches its target", async () => {
      // Another listener, standing for the attacker's server the redirect points to.
      const received: string[] = [];
      const thief = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
        received.push(`${req.method} ${await req.text()}`);
        return new Response(JSON.stringify({ access_token: "stolen", expires_in: 3600 }), {
          headers: { "content-type": "application/json" },
        });
      });
      try {
        const location = `http://127.0.0.1:${thief.addr.port}/collect`;
        for (const status of [301, 302, 303, 307, 308]) {
          server.fail({ kind: "redirect", status, location });
          for (
            const how of [{ clientSecret: CLIENT_SECRET }, {
              assertion: () => Promise.resolve("assertion-canary"),
            }]
          ) {
            const e = await rejects(requestToken({ ...base, ...how }));
            assert.equal(e.code, "connection_failed");
            assert.match(e.message, new RegExp(`redirect \\(HTTP ${status}\\)`));
            assert.ok(!e.message.includes(CLIENT_SECRET) && !e.message.includes("\n"));
          }
        }
        assert.deepEqual(received, []);
      } finally {
        server.fail(undefined);
        await thief.shutdown();
      }
    });

    await t.step("a failing endpoint gives one clear line and never the secret", async () => {
      const cases: [Parameters<typeof server.fail>[0], string, RegExp][] = [
        [{ kind: "status", status: 500, body: CLIENT_SECRET }, "connection_failed", /HTTP 500$/],
        [
          { kind: "status", status: 400, body: '{"error":"invalid_scope"}' },
          "auth_failed",
          /HTTP 400 \(invalid_scope\)$/,
        ],
        [{ kind: "bad-json" }, "connection_failed", /not a token response$/],
        [{ kind: "hang" }, "connection_failed", /no answer within 300 ms$/],
      ];
      for (const [failure, code, message] of cases) {
        server.fail(failure);
        const e = await rejects(
          requestToken({ ...base, clientSecret: CLIENT_SECRET, timeoutMs: 300 }),
        );
        assert.equal(e.code, code);
        assert.match(e.message, message);
        assert.ok(!e.message.includes(CLIENT_SECRET));
        assert.ok(!e.message.includes("\n"));
      }
      server.fail(undefined);
      const gone = await rejects(requestToken({
        ...base,
        tokenUrl: "http://127.0.0.1:1/t/oauth2/v2.0/token",
        clientSecret: CLIENT_SECRET,
      }));
      assert.equal(gone.code, "connection_failed");
      assert.match(
        gone.message,
        /^Cannot get an access token from the token endpoint http:\/\/127\.0\.0\.1:1: cannot connect$/,
      );
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("token profiles connect to the SQL Server double with fetched tokens", async (t) => {
  const certs = await makeTestCerts();
  await using db = await startTdsDouble({ tokens: [] });
  const valid = new Set<string>();
  await using server = startTokenServer({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    certPem: certs.clientCertPem,
    expiresIn: 2,
    onIssue: (tok) => {
      valid.add(tok);
      db.setTokens([...valid]);
    },
  });
  db.answer("select 1 as one", {
    sets: [{ columns: [{ name: "one", type: "int" }], rows: [[1]] }],
  });
  const dir = await Deno.makeTempDir({ prefix: "hecate-token-" });
  const home = `${dir}/home`;
  const pwFile = `${dir}/pw`;
  await Deno.writeTextFile(pwFile, MASTER, { mode: 0o600 });
  await initVault({ home, password: MASTER, kdfIterations: 600_000 });
  const run = (args: string[], stdin = "") =>
    runHecate(args, { home, stdin, env: { HECATE_PASSWORD_FILE: pwFile } });
  const common = [
    "--engine",
    "mssql",
    "--host",
    "127.0.0.1",
    "--port",
    String(db.port),
    "--tls",
    "disable",
    "--auth",
    "token",
    "--tenant-id",
    "tenant-b",
    "--client-id",
    CLIENT_ID,
    "--token-url",
    server.url("tenant-b"),
  ];
  try {
    await t.step("client-secret: the CLI fetches a token and logs in with it", async () => {
      const add = await run(
        ["server", "add", "az", ...common, "--token-mode", "client-secret", "--secret-stdin"],
        `${CLIENT_SECRET}\n`,
      );
      assert.equal(add.code, 0, add.stderr);
      const show = await run(["server", "show", "az", "--json"]);
      assert.ok(!show.stdout.includes(CLIENT_SECRET));
      const q = await run(["query", "az", "select 1 as one", "--format", "json"]);
      assert.equal(q.code, 0, q.stderr);
      assert.equal(q.stdout, '[{"one":1}]\n');
      assert.equal(server.issued.length, 1);
      assert.deepEqual(db.logins.map((l) => [l.method, l.ok]), [["token", true]]);
    });

    await t.step("client-certificate with an encrypted key: assertion, token, login", async () => {
      const add = await run(
        [
          "server",
          "add",
          "az-cert",
          ...common,
          "--token-mode",
          "client-certificate",
          "--cert-file",
          certs.clientCertFile,
          "--key-file",
          certs.clientKeyFile,
          "--secret-stdin",
        ],
        `${certs.passphrase}\n`,
      );
      assert.equal(add.code, 0, add.stderr);
      const q = await run(["query", "az-cert", "select 1 as one", "--format", "csv"]);
      assert.equal(q.code, 0, q.stderr);
      assert.equal(q.stdout, "one\n1\n");
      assert.ok(server.requests.at(-1)!.client_assertion);
      assert.ok(!q.stderr.includes(certs.passphrase));
      // The passphrase may also be a reference, resolved at connect time.
      const ref = await run([
        "server",
        "add",
        "az-cert-ref",
        ...common,
        "--token-mode",
        "client-certificate",
        "--cert-file",
        certs.clientCertFile,
        "--key-file",
        certs.clientKeyFile,
        "--secret-ref",
        "env:TEST_KEY_PASSPHRASE",
      ]);
      assert.equal(ref.code, 0, ref.stderr);
      const shown = await run(["server", "show", "az-cert-ref", "--json"]);
      assert.equal(JSON.parse(shown.stdout).secrets.keyPassphrase, "env:TEST_KEY_PASSPHRASE");
      const viaRef = await runHecate(
        ["query", "az-cert-ref", "select 1 as one", "--format", "csv"],
        {
          home,
          env: { HECATE_PASSWORD_FILE: pwFile, TEST_KEY_PASSPHRASE: certs.passphrase },
        },
      );
      assert.equal(viaRef.code, 0, viaRef.stderr);
      assert.equal(viaRef.stdout, "one\n1\n");
    });

    await t.step("in one process the token is cached, then refreshed after expiry", async () => {
      tokenCache.clear();
      const vault = await openVault({ home, password: MASTER });
      const before = server.issued.length;
      for (let i = 0; i < 2; i++) {
        const conn = await vault.connect("az");
        await conn.close();
      }
      assert.equal(server.issued.length, before + 1);
      await new Promise((r) => setTimeout(r, 2100));
      // The old token has expired at the server too: only the refreshed one logs in.
      valid.clear();
      const conn = await vault.connect("az");
      await conn.close();
      assert.equal(server.issued.length, before + 2);
      assert.equal(db.logins.at(-1)?.ok, true);
    });

    await t.step(
      "a failing endpoint: exit 3 for refused, 6 for unreachable; no secret",
      async () => {
        server.fail({ kind: "status", status: 401, body: '{"error":"invalid_client"}' });
        const refused = await run(["query", "az", "select 1 as one"]);
        assert.equal(refused.code, 3, refused.stderr);
        assert.equal(
          refused.stderr,
          "hecate: error: The token endpoint refused the client credentials: HTTP 401 (invalid_client)\n",
        );
        server.fail({ kind: "status", status: 503 });
        const down = await run(["query", "az", "select 1 as one"]);
        assert.equal(down.code, 6, down.stderr);
        assert.match(down.stderr, /^hecate: error: Cannot get an access token from .*HTTP 503\n$/);
        for (const r of [refused, down]) {
          assert.ok(!r.stderr.includes(CLIENT_SECRET) && !r.stdout.includes(CLIENT_SECRET));
        }
        server.fail(undefined);
      },
    );

    await t.step("token URLs must be https except on this machine (exit 17)", async () => {
      const r = await run(
        [
          "server",
          "add",
          "plain",
          ...common.slice(0, -1),
          "http://login.example.com/t/oauth2/v2.0/token",
          "--token-mode",
          "client-secret",
          "--secret-stdin",
        ],
        `${CLIENT_SECRET}\n`,
      );
      assert.equal(r.code, 17, r.stderr);
      assert.match(r.stderr, /must be an https URL/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(certs.dir, { recursive: true });
  }
});
