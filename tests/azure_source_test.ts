/**
 * The `azure-kv:` source and the Azure credential chain against the Azure double
 * (tests/support/azure_double.ts), which checks client secrets, verifies client assertions and
 * federated tokens with `jose` against this test's keys, and accepts only unexpired bearer
 * tokens it issued. Each chain step is exercised; the attacks (a forged assertion signed with
 * another key under the victim's thumbprint, an expired or wrongly addressed or replayed
 * assertion, a federated token from another key or for another audience, a stolen App Service
 * header guess, an expired bearer token) are refused, and Hecate reports exit 18 with no secret
 * or token in the message, the CLI's output or the audit trail.
 */

import assert from "node:assert/strict";
import { generateKeyPair, importPKCS8, SignJWT } from "jose";
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { startAzureDouble } from "./support/azure_double.ts";
import { closedPort, MASTER_PASSWORD, runHecate, tempDir } from "./support/cli.ts";
import { hecateError } from "./support/hecate_error.ts";
import { issueCert, makeCa } from "./support/tls_certs.ts";
import { azureKeyVaultSource } from "../providers/sources/azure/source.ts";
import { azureToken, clearAzureTokenCache } from "../providers/sources/azure/chain.ts";
import { parseRef } from "../providers/sources/registry.ts";
import type { SourceContext } from "../providers/sources/source.ts";
import { initVault } from "../mod.ts";

type JoseKey = Awaited<ReturnType<typeof importPKCS8>>;

const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT = "0b5c4f1e-1111-4222-8333-944455556666";
const CLIENT_SECRET = "canary-client-secret-Zq8~x";
const DB_PASSWORD = "canary-kv-Db-Pa55-91c2";
const V1 = "0123456789abcdef0123456789abcdef";
const V2 = "fedcba9876543210fedcba9876543210";
const REF = "azure-kv:https://billing-kv.vault.azure.net/secrets/db-password";
const FED_ISSUER = "https://oidc.test.example/issuer";
const FED_SUBJECT = "system:serviceaccount:billing:app";

async function setup(o: { imds?: boolean; identityHeader?: string } = {}) {
  clearAzureTokenCache();
  const dir = await tempDir("hecate-azure-");
  const ca = await makeCa(dir.path, "ca");
  const cert = await issueCert(ca, dir.path, "app", { cn: "app", rsa: true });
  const certPem = await Deno.readTextFile(cert.certFile);
  const keyPem = await Deno.readTextFile(cert.keyFile);
  const bundle = `${dir.path}/app.pem`;
  await Deno.writeTextFile(bundle, `${certPem}\n${keyPem}`);
  const fed = await generateKeyPair("ES256");
  const double = startAzureDouble({
    tenant: TENANT,
    clients: {
      [CLIENT]: {
        secret: CLIENT_SECRET,
        certPem,
        federated: { issuer: FED_ISSUER, key: fed.publicKey, subject: FED_SUBJECT },
      },
    },
    secrets: {
      "db-password": [{ value: "old-value", version: V1 }, { value: DB_PASSWORD, version: V2 }],
      "conn": [{
        value: JSON.stringify({ username: "app", password: DB_PASSWORD, port: 5432 }),
        version: V1,
      }],
    },
    ...o,
  });
  // No az on PATH and no IMDS unless a test says so: an empty directory and a closed port.
  const bin = `${dir.path}/bin`;
  await Deno.mkdir(bin);
  const vars: Record<string, string> = {
    HOME: dir.path,
    PATH: bin,
    AZURE_AUTHORITY_HOST: double.url,
    HECATE_AZURE_KEYVAULT_URL: double.url,
    AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${closedPort()}`,
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
    bundle,
    certPem,
    keyPem,
    fed,
    bin,
    async [Symbol.asyncDispose]() {
      await double.close();
      await dir.dispose();
      clearAzureTokenCache();
    },
  };
}

const SECRET_ENV = {
  AZURE_TENANT_ID: TENANT,
  AZURE_CLIENT_ID: CLIENT,
  AZURE_CLIENT_SECRET: CLIENT_SECRET,
};

function noLeak(text: string, ...tokens: string[]) {
  for (const t of [CLIENT_SECRET, DB_PASSWORD, ...tokens]) {
    assert.ok(!text.includes(t), `leaked ${t.slice(0, 12)}...`);
  }
}

Deno.test("azure-kv: references are validated at parse time (exit 2), versions and fields kept", () => {
  const r = parseRef(`${REF}/${V2.toUpperCase()}#password`);
  assert.deepEqual(r.parts, {
    vault: "https://billing-kv.vault.azure.net",
    resource: "https://vault.azure.net",
    name: "db-password",
    version: V2,
  });
  assert.equal(r.field, "password");
  assert.equal(
    parseRef("azure-kv:https://x1z.vault.azure.cn/secrets/a").parts.resource,
    "https://vault.azure.cn",
  );
  for (
    const bad of [
      "azure-kv:http://billing-kv.vault.azure.net/secrets/a",
      "azure-kv:https://billing-kv.evil.example/secrets/a",
      "azure-kv:https://billing-kv.vault.azure.net.evil.example/secrets/a",
      "azure-kv:https://billing-kv.vault.azure.net/keys/a",
      "azure-kv:https://billing-kv.vault.azure.net/secrets/a_b",
      "azure-kv:https://billing-kv.vault.azure.net/secrets/a/123",
      "azure-kv:https://billing-kv.vault.azure.net/secrets/a#",
      "azure-kv:https://billing-kv.vault.azure.net/secrets/a?x=1",
    ]
  ) {
    assert.throws(() => parseRef(bad), (e: Error & { code?: string }) => e.code === "usage", bad);
  }
});

Deno.test("azure-kv: client secret from the environment; current and pinned versions, #FIELD, one token per process", async () => {
  await using s = await setup();
  const ctx = s.ctx(SECRET_ENV);
  const cur = await azureKeyVaultSource.resolve(parseRef(REF), ctx);
  assert.deepEqual(cur, { fields: { value: DB_PASSWORD }, version: V2 });
  const old = await azureKeyVaultSource.resolve(parseRef(`${REF}/${V1}`), ctx);
  assert.deepEqual(old.fields, { value: "old-value" });
  const field = await azureKeyVaultSource.resolve(
    parseRef("azure-kv:https://billing-kv.vault.azure.net/secrets/conn#port"),
    ctx,
  );
  assert.deepEqual(field.fields, { port: "5432" });
  assert.equal(s.double.calls.token, 1, "the token is cached for the process");
  const missing = await hecateError(
    azureKeyVaultSource.resolve(
      parseRef("azure-kv:https://billing-kv.vault.azure.net/secrets/nope"),
      ctx,
    ),
  );
  assert.equal(missing.code, "secret_unresolved");
  assert.match(
    missing.message,
    /Azure Key Vault: ".*nope": not found \(SecretNotFound, HTTP 404\)/,
  );
  const nofield = await hecateError(
    azureKeyVaultSource.resolve(parseRef(`${REF}#password`), ctx),
  );
  assert.match(nofield.message, /field missing/);
  noLeak(missing.message + nofield.message, ...s.double.issued);
});

Deno.test("azure-kv: a wrong client secret is refused by Entra (exit 18, forbidden, nothing leaked)", async () => {
  await using s = await setup();
  const e = await hecateError(
    azureKeyVaultSource.resolve(
      parseRef(REF),
      s.ctx({ ...SECRET_ENV, AZURE_CLIENT_SECRET: "canary-guessed-secret" }),
    ),
  );
  assert.equal(e.code, "secret_unresolved");
  assert.match(
    e.message,
    /Azure credentials: "environment": forbidden \(invalid_client, HTTP 401\)/,
  );
  assert.ok(!e.message.includes("canary-guessed-secret"));
  assert.equal(s.double.calls.secret, undefined, "Key Vault never asked");
});

Deno.test("azure-kv: certificate credential; forged, expired, misaddressed and replayed assertions are refused by the double", async () => {
  await using s = await setup();
  const env = {
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT,
    AZURE_CLIENT_CERTIFICATE_PATH: s.bundle,
  };
  const ok = await azureKeyVaultSource.resolve(parseRef(REF), s.ctx(env));
  assert.equal(ok.fields.value, DB_PASSWORD);

  // The attacker has the public certificate (it is public) but not its key: a PEM with the
  // victim's certificate and the attacker's own key is refused (exit 18), by Hecate's own check
  // or by Entra's signature check.
  clearAzureTokenCache();
  const other = await issueCert(
    await makeCa(s.dir.path, "ca2"),
    s.dir.path,
    "attacker",
    { cn: "x", rsa: true },
  );
  const forgedPem = `${s.dir.path}/forged.pem`;
  await Deno.writeTextFile(forgedPem, `${s.certPem}\n${await Deno.readTextFile(other.keyFile)}`);
  const forged = await hecateError(
    azureKeyVaultSource.resolve(
      parseRef(REF),
      s.ctx({ ...env, AZURE_CLIENT_CERTIFICATE_PATH: forgedPem }),
    ),
  );
  assert.equal(forged.code, "secret_unresolved");

  // The same attacks straight at the token endpoint, as an attacker without Hecate would send them.
  const url = `${s.double.url}/${TENANT}/oauth2/v2.0/token`;
  const x5t = createHash("sha256").update(new X509Certificate(s.certPem).raw).digest("base64url");
  const victimKey = await importPKCS8(
    createPrivateKey(s.keyPem).export({ type: "pkcs8", format: "pem" }).toString(),
    "RS256",
  );
  const attackerKey = (await generateKeyPair("RS256")).privateKey;
  const now = Math.floor(Date.now() / 1000);
  const assertion = (key: JoseKey, claims: { aud?: string; exp?: number; jti?: string } = {}) =>
    new SignJWT({})
      .setProtectedHeader({ alg: "RS256", "x5t#S256": x5t })
      .setIssuer(CLIENT)
      .setSubject(CLIENT)
      .setAudience(claims.aud ?? url)
      .setJti(claims.jti ?? crypto.randomUUID())
      .setIssuedAt(now - 60)
      .setExpirationTime(claims.exp ?? now + 300)
      .sign(key);
  const post = async (a: string) => {
    const r = await fetch(url, {
      method: "POST",
      body: new URLSearchParams({
        client_id: CLIENT,
        scope: "https://vault.azure.net/.default",
        grant_type: "client_credentials",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: a,
      }),
    });
    await r.body?.cancel();
    return r.status;
  };
  assert.equal(await post(await assertion(victimKey)), 200, "the control: the real key works");
  assert.equal(await post(await assertion(attackerKey as JoseKey)), 401, "forged signature");
  assert.equal(await post(await assertion(victimKey, { exp: now - 10 })), 401, "expired");
  assert.equal(
    await post(
      await assertion(victimKey, { aud: "https://login.microsoftonline.com/x/oauth2/v2.0/token" }),
    ),
    401,
    "wrong audience",
  );
  const jti = crypto.randomUUID();
  assert.equal(await post(await assertion(victimKey, { jti })), 200);
  assert.equal(await post(await assertion(victimKey, { jti })), 401, "replayed");
});

Deno.test("azure-kv: workload identity; a federated token from another key or for another audience is refused", async () => {
  await using s = await setup();
  const file = `${s.dir.path}/federated.jwt`;
  const fedToken = (key: JoseKey, aud = "api://AzureADTokenExchange") =>
    new SignJWT({}).setProtectedHeader({ alg: "ES256" }).setIssuer(FED_ISSUER)
      .setSubject(FED_SUBJECT).setAudience(aud).setIssuedAt().setExpirationTime("10m").sign(key);
  const env = {
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT,
    AZURE_FEDERATED_TOKEN_FILE: file,
  };
  await Deno.writeTextFile(file, await fedToken(s.fed.privateKey as JoseKey));
  assert.equal(
    (await azureKeyVaultSource.resolve(parseRef(REF), s.ctx(env))).fields.value,
    DB_PASSWORD,
  );
  for (
    const bad of [
      await fedToken((await generateKeyPair("ES256")).privateKey as JoseKey),
      await fedToken(s.fed.privateKey as JoseKey, "api://other"),
    ]
  ) {
    clearAzureTokenCache();
    await Deno.writeTextFile(file, bad);
    const e = await hecateError(azureKeyVaultSource.resolve(parseRef(REF), s.ctx(env)));
    assert.match(e.message, /"workload identity": forbidden/);
    noLeak(e.message, bad);
  }
});

Deno.test("azure-kv: managed identity through App Service's endpoint and through IMDS; a wrong identity header is refused", async () => {
  await using s = await setup({ identityHeader: "canary-identity-header-1" });
  const app = {
    IDENTITY_ENDPOINT: `${s.double.url}/msi/token`,
    IDENTITY_HEADER: "canary-identity-header-1",
  };
  assert.equal(
    (await azureKeyVaultSource.resolve(parseRef(REF), s.ctx(app))).fields.value,
    DB_PASSWORD,
  );
  assert.equal(s.double.calls.msi, 1);
  clearAzureTokenCache();
  const e = await hecateError(
    azureKeyVaultSource.resolve(parseRef(REF), s.ctx({ ...app, IDENTITY_HEADER: "guess" })),
  );
  assert.match(e.message, /managed identity \(App Service\)": forbidden/);
  clearAzureTokenCache();
  const imds = { AZURE_POD_IDENTITY_AUTHORITY_HOST: s.double.url };
  assert.equal(
    (await azureKeyVaultSource.resolve(parseRef(REF), s.ctx(imds))).fields.value,
    DB_PASSWORD,
  );
  assert.equal(s.double.calls.imds, 1);
});

Deno.test("azure-kv: the Azure CLI step runs `az account get-access-token` when nothing before it is configured", async () => {
  await using s = await setup();
  // A token the double issued, handed out by a stand-in `az` that records its arguments.
  const r = await fetch(
    `${s.double.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net`,
    { headers: { Metadata: "true" } },
  );
  const token = (await r.json()).access_token as string;
  const exp = Math.floor(Date.now() / 1000) + 3600;
  await Deno.writeTextFile(
    `${s.bin}/az`,
    `#!/bin/sh\necho "$@" > "${s.dir.path}/az-args"\nprintf '{"accessToken":"%s","expires_on":${exp},"tokenType":"Bearer"}' '${token}'\n`,
    { mode: 0o755 },
  );
  const got = await azureKeyVaultSource.resolve(parseRef(REF), s.ctx());
  assert.equal(got.fields.value, DB_PASSWORD);
  assert.equal(
    (await Deno.readTextFile(`${s.dir.path}/az-args`)).trim(),
    "account get-access-token --resource https://vault.azure.net -o json",
  );
  // az failing (not logged in) is forbidden, and its output is not echoed.
  clearAzureTokenCache();
  await Deno.writeTextFile(`${s.bin}/az`, `#!/bin/sh\necho "canary-az-stderr" >&2\nexit 1\n`);
  const e = await hecateError(azureKeyVaultSource.resolve(parseRef(REF), s.ctx()));
  assert.match(e.message, /"Azure CLI": forbidden \(az exited with 1\)/);
  assert.ok(!e.message.includes("canary-az-stderr"));
});

Deno.test("azure-kv: nothing configured, no IMDS, no az: exit 18 listing what was tried", async () => {
  await using s = await setup();
  const e = await hecateError(azureKeyVaultSource.resolve(parseRef(REF), s.ctx()));
  assert.equal(e.code, "secret_unresolved");
  assert.match(
    e.message,
    /none found; tried environment, workload identity, managed identity \(IMDS\), Azure CLI/,
  );
});

Deno.test("azure-kv: an expired bearer token is refused by Key Vault with its challenge; a plain-http authority off loopback is refused", async () => {
  await using s = await setup();
  const ctx = s.ctx(SECRET_ENV);
  await azureKeyVaultSource.resolve(parseRef(REF), ctx);
  s.double.expireTokens();
  // Hecate still holds the token (it believes it valid for an hour): the vault refuses it.
  const e = await hecateError(azureKeyVaultSource.resolve(parseRef(REF), ctx));
  assert.match(e.message, /Azure Key Vault: ".*": forbidden \(Unauthorized, HTTP 401\)/);
  noLeak(e.message, ...s.double.issued);
  const direct = await fetch(`${s.double.url}/secrets/db-password?api-version=7.4`, {
    headers: { authorization: `Bearer ${s.double.issued[0]}` },
  });
  await direct.body?.cancel();
  assert.equal(direct.status, 401);
  assert.match(
    direct.headers.get("www-authenticate") ?? "",
    /^Bearer authorization=".*", resource="https:\/\/vault\.azure\.net"$/,
  );
  clearAzureTokenCache();
  const plain = await hecateError(
    azureToken({
      env: s.ctx({ ...SECRET_ENV, AZURE_AUTHORITY_HOST: "http://login.example" }).env,
      resource: "https://vault.azure.net",
    }),
  );
  assert.match(plain.message, /AZURE_AUTHORITY_HOST refused/);
});

Deno.test("azure-kv through the CLI: server add, hecate env, a refused source (exit 18) with no secret in output or audit", async () => {
  await using s = await setup();
  const home = `${s.dir.path}/home`;
  await initVault({ home, password: MASTER_PASSWORD, kdfIterations: 600_000 });
  const env: Record<string, string> = { ...s.vars, ...SECRET_ENV };
  const cli = (args: string[]) =>
    runHecate(["--password-stdin", ...args], { home, env, stdin: `${MASTER_PASSWORD}\n` });
  const PG = ["--engine", "postgres", "--host", "db.internal", "--user", "app"];
  let r = await cli(["server", "add", "kv", ...PG, "--secret-ref", REF]);
  assert.equal(r.code, 0, r.stderr);
  r = await cli([
    "server",
    "add",
    "kv2",
    ...PG,
    "--secret-ref",
    "azure-kv:https://x.evil/secrets/a",
  ]);
  assert.equal(r.code, 2, r.stderr);
  const ok = await cli(["env", "kv"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`PGPASSWORD='?${DB_PASSWORD}`));
  // The client secret was rotated; the attacker's copy is refused.
  env.AZURE_CLIENT_SECRET = "canary-stolen-but-rotated";
  const refused = await cli(["env", "kv"]);
  assert.equal(refused.code, 18, refused.stderr);
  assert.match(refused.stderr, /forbidden/);
  noLeak(refused.stdout + refused.stderr, "canary-stolen-but-rotated", ...s.double.issued);
  const trail = await Deno.readTextFile(`${home}/audit.jsonl`);
  noLeak(trail, "canary-stolen-but-rotated", ...s.double.issued);
  assert.match(trail, /"scheme":"azure-kv"/);
});
