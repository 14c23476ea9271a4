/**
 * The `gcp-sm:` source and Application Default Credentials against the Google double
 * (tests/support/gcp_double.ts), which verifies service-account assertions with `jose` against
 * this test's public keys, checks refresh tokens, answers as the metadata server, and accepts
 * only unexpired bearer tokens it issued. The attacks (a key file with a forged key, an assertion
 * addressed elsewhere or too long-lived, a stolen-and-revoked refresh token, an expired bearer
 * token, a corrupted payload under its CRC32C, an impostor metadata server) are refused, with
 * exit 18 and no secret or token in any message, output or audit record.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c as referenceCrc32c } from "@aws-crypto/crc32c";
import { crc32c } from "../providers/sources/gcp/crc32c.ts";
import { exportPKCS8, generateKeyPair, importPKCS8, SignJWT } from "jose";
import { doubleCrc32c, startGcpDouble } from "./support/gcp_double.ts";
import { closedPort, MASTER_PASSWORD, runHecate, tempDir } from "./support/cli.ts";
import { hecateError } from "./support/hecate_error.ts";
import { gcpSecretManagerSource } from "../providers/sources/gcp/source.ts";
import { clearGoogleTokenCache } from "../providers/sources/gcp/adc.ts";
import { parseRef } from "../providers/sources/registry.ts";
import type { SourceContext } from "../providers/sources/source.ts";
import { initVault } from "../mod.ts";

const SA = "hecate-reader@billing-prod.iam.gserviceaccount.com";
const DB_PASSWORD = "canary-gsm-Db-Pa55-4e1d";
const REFRESH = "canary-refresh-token-1//0g";
const USER_SECRET = "canary-user-client-secret";
const SECRET = "projects/billing-prod/secrets/db-password";
const REF = `gcp-sm:${SECRET}`;

async function setup(o: { metadata?: boolean } = {}) {
  clearGoogleTokenCache();
  const dir = await tempDir("hecate-gcp-");
  const sa = await generateKeyPair("RS256", { extractable: true });
  const double = startGcpDouble({
    serviceAccounts: { [SA]: sa.publicKey },
    users: [{
      clientId: "764086051850.apps.googleusercontent.com",
      clientSecret: USER_SECRET,
      refreshToken: REFRESH,
    }],
    metadata: o.metadata ?? false,
    secrets: {
      [SECRET]: [{ data: "old-value" }, { data: DB_PASSWORD }],
      "projects/billing-prod/secrets/conn": [{
        data: JSON.stringify({ username: "app", password: DB_PASSWORD }),
      }],
      "projects/billing-prod/secrets/tampered": [{ data: DB_PASSWORD, corrupt: true }],
      "projects/billing-prod/secrets/nosum": [{ data: "plain", noChecksum: true }],
    },
  });
  const keyFile = `${dir.path}/sa.json`;
  const writeKey = async (pem: string, tokenUri = `${double.url}/token`) =>
    await Deno.writeTextFile(
      keyFile,
      JSON.stringify({
        type: "service_account",
        project_id: "billing-prod",
        private_key_id: "k1",
        private_key: pem,
        client_email: SA,
        token_uri: tokenUri,
      }),
    );
  await writeKey(await exportPKCS8(sa.privateKey));
  const vars: Record<string, string> = {
    HOME: dir.path,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER: `${double.url}/`,
    GCE_METADATA_HOST: `127.0.0.1:${closedPort()}`,
  };
  const ctx = (more: Record<string, string | undefined> = {}): SourceContext => ({
    signal: AbortSignal.timeout(20_000),
    credentials: {},
    env: (n) => (n in more ? more[n] : vars[n]),
  });
  return {
    dir,
    double,
    vars,
    ctx,
    keyFile,
    writeKey,
    sa,
    async [Symbol.asyncDispose]() {
      await double.close();
      await dir.dispose();
      clearGoogleTokenCache();
    },
  };
}

function noLeak(text: string, ...more: string[]) {
  for (const t of [DB_PASSWORD, REFRESH, USER_SECRET, ...more]) {
    assert.ok(!text.includes(t), `leaked ${t.slice(0, 12)}...`);
  }
}

Deno.test("gcp-sm: references are validated at parse time (exit 2); the version defaults to latest", () => {
  assert.deepEqual(parseRef(REF).parts, {
    project: "billing-prod",
    secret: "db-password",
    version: "latest",
  });
  const pinned = parseRef(`${REF}/versions/7#password`);
  assert.equal(pinned.parts.version, "7");
  assert.equal(pinned.field, "password");
  for (
    const bad of [
      "gcp-sm:projects/billing-prod/secrets/",
      "gcp-sm:projects/Billing/secrets/x",
      "gcp-sm:projects/billing-prod/secrets/a/versions/0",
      "gcp-sm:projects/billing-prod/secrets/a/versions/../../x",
      "gcp-sm:projects/billing-prod/secrets/a.b",
      "gcp-sm:billing-prod/db",
      `${REF}#`,
    ]
  ) {
    assert.throws(() => parseRef(bad), (e: Error & { code?: string }) => e.code === "usage", bad);
  }
});

Deno.test("gcp-sm: Hecate's CRC32C agrees with @aws-crypto/crc32c, the double's table and the standard check value", () => {
  const enc = new TextEncoder();
  assert.equal(crc32c(enc.encode("123456789")), 0xe3069283);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const want = referenceCrc32c(bytes);
      assert.equal(crc32c(bytes), want);
      assert.equal(doubleCrc32c(bytes), want);
    }),
    { numRuns: 300 },
  );
});

Deno.test("gcp-sm: a service-account key file; latest and pinned versions, #FIELD, one token per process", async () => {
  await using s = await setup();
  const ctx = s.ctx({ GOOGLE_APPLICATION_CREDENTIALS: s.keyFile });
  assert.deepEqual(await gcpSecretManagerSource.resolve(parseRef(REF), ctx), {
    fields: { value: DB_PASSWORD },
    version: "2",
  });
  assert.deepEqual(
    (await gcpSecretManagerSource.resolve(parseRef(`${REF}/versions/1`), ctx)).fields,
    { value: "old-value" },
  );
  assert.deepEqual(
    (await gcpSecretManagerSource.resolve(
      parseRef("gcp-sm:projects/billing-prod/secrets/conn#username"),
      ctx,
    )).fields,
    { username: "app" },
  );
  assert.equal(s.double.calls.token, 1, "the token is cached for the process");
  const nf = await hecateError(
    gcpSecretManagerSource.resolve(parseRef(`${REF}/versions/9`), ctx),
  );
  assert.match(nf.message, /Google Secret Manager: ".*": not found \(NOT_FOUND, HTTP 404\)/);
  noLeak(nf.message, ...s.double.issued);
});

Deno.test("gcp-sm: a payload that does not match its CRC32C is refused (exit 18), and its bytes are not shown", async () => {
  await using s = await setup();
  const ctx = s.ctx({ GOOGLE_APPLICATION_CREDENTIALS: s.keyFile });
  const e = await hecateError(
    gcpSecretManagerSource.resolve(parseRef("gcp-sm:projects/billing-prod/secrets/tampered"), ctx),
  );
  assert.equal(e.code, "secret_unresolved");
  assert.match(e.message, /malformed answer \(CRC32C mismatch\)/);
  // The served bytes differ from the secret in one bit: neither appears.
  noLeak(e.message, "banary");
  // A version stored without a checksum is served as is (documented).
  assert.deepEqual(
    (await gcpSecretManagerSource.resolve(
      parseRef("gcp-sm:projects/billing-prod/secrets/nosum"),
      ctx,
    ))
      .fields,
    { value: "plain" },
  );
});

Deno.test("gcp-sm: a key file with another private key, a misaddressed or too long-lived assertion, are refused by the token endpoint", async () => {
  await using s = await setup();
  const ctx = s.ctx({ GOOGLE_APPLICATION_CREDENTIALS: s.keyFile });
  // The attacker knows the account's email (it is not secret) and signs with a key of their own.
  await s.writeKey(
    await exportPKCS8((await generateKeyPair("RS256", { extractable: true })).privateKey),
  );
  const e = await hecateError(gcpSecretManagerSource.resolve(parseRef(REF), ctx));
  assert.match(
    e.message,
    /Google credentials: "GOOGLE_APPLICATION_CREDENTIALS": forbidden \(invalid_grant, HTTP 400\)/,
  );
  assert.equal(s.double.calls.access, undefined, "Secret Manager never asked");
  // Straight at the endpoint: the real key, but the wrong audience or a day-long lifetime.
  const key = await importPKCS8(await exportPKCS8(s.sa.privateKey), "RS256");
  const now = Math.floor(Date.now() / 1000);
  const grant = async (aud: string, exp: number) => {
    const jwt = await new SignJWT({ scope: "https://www.googleapis.com/auth/cloud-platform" })
      .setProtectedHeader({ alg: "RS256" }).setIssuer(SA).setAudience(aud).setIssuedAt(now)
      .setExpirationTime(exp).sign(key);
    const r = await fetch(`${s.double.url}/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion: jwt,
      }),
    });
    await r.body?.cancel();
    return r.status;
  };
  assert.equal(await grant(`${s.double.url}/token`, now + 600), 200, "the control");
  assert.equal(await grant("https://oauth2.googleapis.com/token", now + 600), 400, "audience");
  assert.equal(await grant(`${s.double.url}/token`, now + 86_400), 400, "lifetime");
  assert.equal(await grant(`${s.double.url}/token`, now - 60), 400, "expired");
  // A key file whose token_uri is plain http off loopback is refused before anything is sent.
  clearGoogleTokenCache();
  await s.writeKey(await exportPKCS8(s.sa.privateKey), "http://oauth2.example/token");
  const plain = await hecateError(gcpSecretManagerSource.resolve(parseRef(REF), ctx));
  assert.match(plain.message, /token_uri refused/);
});

Deno.test("gcp-sm: gcloud's ADC file (authorized user) under CLOUDSDK_CONFIG; a revoked refresh token is refused", async () => {
  await using s = await setup();
  const conf = `${s.dir.path}/gcloud`;
  await Deno.mkdir(conf);
  const write = (refresh: string) =>
    Deno.writeTextFile(
      `${conf}/application_default_credentials.json`,
      JSON.stringify({
        type: "authorized_user",
        client_id: "764086051850.apps.googleusercontent.com",
        client_secret: USER_SECRET,
        refresh_token: refresh,
        token_uri: `${s.double.url}/token`,
      }),
    );
  await write(REFRESH);
  const ctx = s.ctx({ CLOUDSDK_CONFIG: conf });
  assert.equal(
    (await gcpSecretManagerSource.resolve(parseRef(REF), ctx)).fields.value,
    DB_PASSWORD,
  );
  clearGoogleTokenCache();
  await write("canary-old-refresh-token");
  const e = await hecateError(gcpSecretManagerSource.resolve(parseRef(REF), ctx));
  assert.match(e.message, /"gcloud ADC file": forbidden \(invalid_grant, HTTP 400\)/);
  noLeak(e.message, "canary-old-refresh-token");
});

Deno.test("gcp-sm: the metadata server gives the token; a server without Metadata-Flavor is not believed; none at all: exit 18", async () => {
  await using s = await setup({ metadata: true });
  const ctx = s.ctx({ GCE_METADATA_HOST: s.double.host });
  assert.equal(
    (await gcpSecretManagerSource.resolve(parseRef(REF), ctx)).fields.value,
    DB_PASSWORD,
  );
  assert.equal(s.double.calls.metadata, 1);
  // An impostor on the metadata address that answers a token without the flavor header.
  clearGoogleTokenCache();
  const impostor = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.json({ access_token: s.double.issued[0], expires_in: 3600 }),
  );
  try {
    const e = await hecateError(
      gcpSecretManagerSource.resolve(
        parseRef(REF),
        s.ctx({ GCE_METADATA_HOST: `127.0.0.1:${impostor.addr.port}` }),
      ),
    );
    assert.match(
      e.message,
      /none found; tried GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server/,
    );
  } finally {
    await impostor.shutdown();
  }
  clearGoogleTokenCache();
  const none = await hecateError(gcpSecretManagerSource.resolve(parseRef(REF), s.ctx()));
  assert.equal(none.code, "secret_unresolved");
  assert.match(none.message, /not found \(none found/);
});

Deno.test("gcp-sm: an expired bearer token is refused by Secret Manager (UNAUTHENTICATED), nothing leaked", async () => {
  await using s = await setup();
  const ctx = s.ctx({ GOOGLE_APPLICATION_CREDENTIALS: s.keyFile });
  await gcpSecretManagerSource.resolve(parseRef(REF), ctx);
  s.double.expireTokens();
  const e = await hecateError(gcpSecretManagerSource.resolve(parseRef(REF), ctx));
  assert.match(e.message, /forbidden \(UNAUTHENTICATED, HTTP 401\)/);
  noLeak(e.message, ...s.double.issued);
});

Deno.test("gcp-sm through the CLI: server add, hecate env, a corrupted payload refused (exit 18) with no secret in output or audit", async () => {
  await using s = await setup();
  const home = `${s.dir.path}/home`;
  await initVault({ home, password: MASTER_PASSWORD, kdfIterations: 600_000 });
  const env = { ...s.vars, GOOGLE_APPLICATION_CREDENTIALS: s.keyFile };
  const cli = (args: string[]) =>
    runHecate(["--password-stdin", ...args], { home, env, stdin: `${MASTER_PASSWORD}\n` });
  const PG = ["--engine", "postgres", "--host", "db.internal", "--user", "app"];
  assert.equal((await cli(["server", "add", "g", ...PG, "--secret-ref", REF])).code, 0);
  assert.equal(
    (await cli([
      "server",
      "add",
      "t",
      ...PG,
      "--secret-ref",
      "gcp-sm:projects/billing-prod/secrets/tampered",
    ])).code,
    0,
  );
  const bad = await cli(["server", "add", "b", ...PG, "--secret-ref", "gcp-sm:projects/x/y"]);
  assert.equal(bad.code, 2, bad.stderr);
  const ok = await cli(["env", "g"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`PGPASSWORD='?${DB_PASSWORD}`));
  const refused = await cli(["env", "t"]);
  assert.equal(refused.code, 18, refused.stderr);
  assert.match(refused.stderr, /malformed/);
  noLeak(refused.stdout + refused.stderr, ...s.double.issued);
  const trail = await Deno.readTextFile(`${home}/audit.jsonl`);
  noLeak(trail, ...s.double.issued);
  assert.match(trail, /"scheme":"gcp-sm"/);
});
