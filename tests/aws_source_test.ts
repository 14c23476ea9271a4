/**
 * The AWS Secrets Manager source and the AWS credential chain, against the AWS double
 * (tests/support/aws_double.ts), which recomputes every SigV4 signature with AWS's own signer
 * package. Each chain step is exercised on its own; the attacks (a wrong secret key, a wrong
 * region, a tampered body, an old signed request replayed, an unknown key, a stolen temporary key
 * without its session token) are performed against the double and must be refused, and Hecate
 * must report exit 18 without any key in the message.
 */

import assert from "node:assert/strict";
import { startAwsDouble } from "./support/aws_double.ts";
import { closedPort, tempDir } from "./support/cli.ts";
import { hecateError } from "./support/hecate_error.ts";
import { awsSecretsManagerSource } from "../providers/sources/aws/source.ts";
import { parseAwsSmRef } from "../providers/sources/aws/sm_ref.ts";
import { awsCredentials, clearAwsCredentialCache } from "../providers/sources/aws/chain.ts";
import { signRequest } from "../providers/sources/aws/sign.ts";
import type { SourceContext } from "../providers/sources/source.ts";

const REGION = "eu-west-1";
const KEY_ID = "AKIAHECATETEST000001";
const SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYHECATEKEY1";
const USER_ARN = "arn:aws:iam::123456789012:user/app";
const ROLE_ARN = "arn:aws:iam::123456789012:role/db-reader";
const DB_PASSWORD = "canary-Db-Pa55word-7f3a";
const RDS_SECRET = JSON.stringify({
  engine: "postgres",
  host: "db.example.internal",
  port: 5432,
  dbname: "billing",
  username: "app",
  password: DB_PASSWORD,
  dbInstanceIdentifier: "billing-db",
});

async function setup(
  extra: Parameters<typeof startAwsDouble>[0] extends infer O ? Partial<O> : never = {},
) {
  clearAwsCredentialCache();
  const dir = await tempDir("hecate-aws-");
  const double = await startAwsDouble({
    region: REGION,
    keys: { [KEY_ID]: { secretAccessKey: SECRET_KEY, principal: USER_ARN } },
    secrets: {
      "prod/billing": {
        secretString: RDS_SECRET,
        versionId: "a1b2c3d4-0000-4000-8000-00000000000a",
      },
      "plain": { secretString: DB_PASSWORD, versionId: "a1b2c3d4-0000-4000-8000-00000000000b" },
      "binary": { secretBinary: "AAEC", versionId: "a1b2c3d4-0000-4000-8000-00000000000c" },
    },
    roles: { [ROLE_ARN]: [USER_ARN] },
    ...extra,
  });
  const vars: Record<string, string> = {
    HOME: dir.path,
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: double.url,
    AWS_EC2_METADATA_DISABLED: "true",
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
    async [Symbol.asyncDispose]() {
      await double.close();
      await dir.dispose();
      clearAwsCredentialCache();
    },
  };
}

const ENV_KEYS = { AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET_KEY };

function assertNoKeys(text: string, ...secrets: string[]) {
  for (const s of [SECRET_KEY, DB_PASSWORD, ...secrets]) assert.ok(!text.includes(s), text);
}

Deno.test("aws-sm references: names, ARNs, versions and fields parse; malformed ones are usage errors", () => {
  const r = parseAwsSmRef("aws-sm", "prod/billing?version-stage=AWSPREVIOUS#password");
  assert.deepEqual(r.parts, { versionStage: "AWSPREVIOUS", secretId: "prod/billing" });
  assert.equal(r.field, "password");
  const arn = "arn:aws:secretsmanager:us-east-2:123456789012:secret:prod/db-AbCdEf";
  assert.equal(parseAwsSmRef("aws-sm", arn).parts.region, "us-east-2");
  for (
    const bad of [
      "",
      "a b",
      "x#",
      "x?version-stage=A&version-id=0123456789abcdef0123456789abcdef",
      "x?version=3",
      "arn:aws:s3:::bucket",
      "x#pass word",
    ]
  ) {
    assert.throws(() => parseAwsSmRef("aws-sm", bad), (e: Error & { code?: string }) => {
      assert.equal(e.code, "usage", bad);
      return true;
    });
  }
});

Deno.test("environment keys: a JSON field, a whole RDS secret, a plain secret, a version, an ARN", async () => {
  await using t = await setup();
  const ctx = t.ctx(ENV_KEYS);
  const field = await awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "prod/billing#password"),
    ctx,
  );
  assert.deepEqual(field.fields, { password: DB_PASSWORD });
  assert.equal(field.version, "a1b2c3d4-0000-4000-8000-00000000000a");
  const whole = await awsSecretsManagerSource.resolve(parseAwsSmRef("aws-sm", "prod/billing"), ctx);
  assert.equal(whole.fields.port, "5432");
  assert.equal(whole.fields.username, "app");
  assert.equal(whole.fields.engine, "postgres");
  const plain = await awsSecretsManagerSource.resolve(parseAwsSmRef("aws-sm", "plain"), ctx);
  assert.deepEqual(plain.fields, { value: DB_PASSWORD });
  const byArn = await awsSecretsManagerSource.resolve(
    parseAwsSmRef(
      "aws-sm",
      `${t.double.arnOf("plain")}?version-id=a1b2c3d4-0000-4000-8000-00000000000b`,
    ),
    ctx,
  );
  assert.deepEqual(byArn.fields, { value: DB_PASSWORD });
  assert.deepEqual(t.double.seen.map((s) => s.outcome), ["ok", "ok", "ok", "ok"]);
  assert.ok(t.double.seen.every((s) => s.principal === USER_ARN));
});

Deno.test("not found, field missing, binary secret, no region: exit 18 naming the source and status", async () => {
  await using t = await setup();
  const ctx = t.ctx(ENV_KEYS);
  const cases: [string, RegExp][] = [
    ["missing", /not found \(ResourceNotFoundException, HTTP 400\)/],
    ["prod/billing#nope", /field missing/],
    ["binary", /malformed answer/],
    ["plain?version-stage=AWSPREVIOUS", /not found/],
  ];
  for (const [ref, re] of cases) {
    const e = await hecateError(awsSecretsManagerSource.resolve(parseAwsSmRef("aws-sm", ref), ctx));
    assert.equal(e.exitCode, 18);
    assert.match(e.message, /^Secret source AWS Secrets Manager: "aws-sm:/);
    assert.match(e.message, re, ref);
    assertNoKeys(e.message + (e.hint ?? ""));
  }
  const noRegion = await hecateError(
    awsSecretsManagerSource.resolve(
      parseAwsSmRef("aws-sm", "plain"),
      t.ctx({ ...ENV_KEYS, AWS_REGION: undefined }),
    ),
  );
  assert.match(noRegion.message, /no region/);
});

Deno.test("attack: a wrong secret key is refused by the double's own SigV4 check", async () => {
  await using t = await setup();
  const e = await hecateError(awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "plain"),
    t.ctx({ ...ENV_KEYS, AWS_SECRET_ACCESS_KEY: "guessed/" + SECRET_KEY.slice(8) }),
  ));
  assert.equal(e.exitCode, 18);
  assert.match(e.message, /forbidden \(InvalidSignatureException, HTTP 400\)/);
  assertNoKeys(e.message + e.hint, SECRET_KEY.slice(8));
  assert.deepEqual(t.double.seen.map((s) => s.outcome), ["InvalidSignatureException"]);
});

Deno.test("attack: a request signed for another region is refused", async () => {
  await using t = await setup();
  const e = await hecateError(awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "plain"),
    t.ctx({ ...ENV_KEYS, AWS_REGION: "us-east-1" }),
  ));
  assert.match(e.message, /forbidden \(InvalidSignatureException/);
  assert.deepEqual(t.double.seen.map((s) => s.outcome), ["InvalidSignatureException"]);
});

Deno.test("attack: an unknown access key, and a stolen temporary key without its session token", async () => {
  await using t = await setup({ containerAuthToken: "Bearer ok" });
  const e = await hecateError(awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "plain"),
    t.ctx({ AWS_ACCESS_KEY_ID: "AKIAUNKNOWN000000000", AWS_SECRET_ACCESS_KEY: SECRET_KEY }),
  ));
  assert.match(e.message, /forbidden \(UnrecognizedClientException, HTTP 400\)/);
  // Temporary credentials from the container endpoint, used without their session token.
  const res = await fetch(`${t.double.url}/container-credentials`, {
    headers: { Authorization: "Bearer ok" },
  });
  const temp = await res.json();
  clearAwsCredentialCache();
  const e2 = await hecateError(awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "plain"),
    t.ctx({ AWS_ACCESS_KEY_ID: temp.AccessKeyId, AWS_SECRET_ACCESS_KEY: temp.SecretAccessKey }),
  ));
  assert.match(e2.message, /UnrecognizedClientException/);
  assertNoKeys(e2.message, temp.SecretAccessKey);
  // With the token it works: the refusal was the missing token.
  clearAwsCredentialCache();
  const ok = await awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "plain"),
    t.ctx({
      AWS_ACCESS_KEY_ID: temp.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: temp.SecretAccessKey,
      AWS_SESSION_TOKEN: temp.Token,
    }),
  );
  assert.deepEqual(ok.fields, { value: DB_PASSWORD });
});

function signedGet(url: string, secretId: string, datetime?: string) {
  return signRequest(
    { accessKeyId: KEY_ID, secretAccessKey: SECRET_KEY, origin: "test" },
    {
      method: "POST",
      url: new URL(url),
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "secretsmanager.GetSecretValue",
      },
      body: JSON.stringify({ SecretId: secretId }),
      service: "secretsmanager",
      region: REGION,
      ...(datetime ? { datetime } : {}),
    },
  );
}

Deno.test("attack: a signed request whose body is changed in transit is refused", async () => {
  await using t = await setup();
  const good = await signedGet(t.double.url, "plain");
  // An attacker on the path swaps the secret id, keeping the signature headers.
  const tampered = new Request(good.url, {
    method: "POST",
    headers: good.headers,
    body: JSON.stringify({ SecretId: "prod/billing" }),
  });
  const res = await fetch(tampered);
  const body = await res.json();
  assert.equal(res.status, 400);
  assert.equal(body.__type, "InvalidSignatureException");
  assert.match(body.message, /does not match/);
  // Shifting the signed date by a second (to dodge a replay check) breaks the signature too.
  const shifted = new Headers(good.headers);
  const d = shifted.get("x-amz-date")!;
  shifted.set(
    "x-amz-date",
    d.replace(/(\d{2})Z$/, (_, s) => `${String((+s + 1) % 60).padStart(2, "0")}Z`),
  );
  const res2 = await fetch(
    new Request(good.url, {
      method: "POST",
      headers: shifted,
      body: JSON.stringify({ SecretId: "plain" }),
    }),
  );
  assert.equal((await res2.json()).__type, "InvalidSignatureException");
  // The untouched request passes: the refusal was the tampering.
  const ok = await fetch(await signedGet(t.double.url, "plain"));
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).SecretString, DB_PASSWORD);
});

Deno.test("attack: replaying a signed request more than 5 minutes old is refused", async () => {
  await using t = await setup();
  const old = new Date(Date.now() - 6 * 60_000).toISOString().replace(/[-:]|\.\d{3}/g, "");
  const res = await fetch(await signedGet(t.double.url, "plain", old));
  const body = await res.json();
  assert.equal(res.status, 400);
  assert.equal(body.__type, "InvalidSignatureException");
  assert.match(body.message, /Signature expired/);
  const recent = new Date(Date.now() - 2 * 60_000).toISOString().replace(/[-:]|\.\d{3}/g, "");
  assert.equal((await fetch(await signedGet(t.double.url, "plain", recent))).status, 200);
});

Deno.test("chain: static keys of AWS_PROFILE in the shared credentials file; region from config", async () => {
  await using t = await setup();
  await Deno.mkdir(`${t.dir.path}/.aws`);
  await Deno.writeTextFile(
    `${t.dir.path}/.aws/credentials`,
    `[default]\naws_access_key_id = AKIAWRONGDEFAULT0000\naws_secret_access_key = x\n\n` +
      `# the app's keys\n[app]\naws_access_key_id = ${KEY_ID}\naws_secret_access_key = ${SECRET_KEY}\n`,
  );
  await Deno.writeTextFile(`${t.dir.path}/.aws/config`, `[profile app]\nregion = ${REGION}\n`);
  const r = await awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "plain"),
    t.ctx({ AWS_PROFILE: "app", AWS_REGION: undefined }),
  );
  assert.deepEqual(r.fields, { value: DB_PASSWORD });
  const e = await hecateError(awsCredentials({ env: t.ctx({ AWS_PROFILE: "nosuch" }).env }));
  assert.match(e.message, /profile "nosuch": not found/);
  await Deno.writeTextFile(
    `${t.dir.path}/.aws/config`,
    `[profile app]\nregion = ${REGION}\n[profile sso]\nsso_session = corp\nsso_account_id = 1\n`,
  );
  const sso = await hecateError(awsCredentials({ env: t.ctx({ AWS_PROFILE: "sso" }).env }));
  assert.match(sso.message, /profile "sso": not supported \(SSO profile\)/);
  assert.match(sso.hint ?? "", /export-credentials --profile sso --format process/);
});

Deno.test("chain: role_arn with source_profile goes through STS AssumeRole (signed, trusted)", async () => {
  await using t = await setup({
    secrets: {
      "role-only": {
        secretString: DB_PASSWORD,
        versionId: "v1-00000000000000000000000000000000",
        readers: [ROLE_ARN],
      },
    },
  });
  await Deno.mkdir(`${t.dir.path}/.aws`);
  await Deno.writeTextFile(
    `${t.dir.path}/.aws/credentials`,
    `[base]\naws_access_key_id = ${KEY_ID}\naws_secret_access_key = ${SECRET_KEY}\n`,
  );
  await Deno.writeTextFile(
    `${t.dir.path}/.aws/config`,
    `[profile reader]\nrole_arn = ${ROLE_ARN}\nsource_profile = base\nrole_session_name = hecate-test\n` +
      `[profile stranger]\nrole_arn = arn:aws:iam::123456789012:role/admin\nsource_profile = base\n` +
      `[profile loop1]\nrole_arn = ${ROLE_ARN}\nsource_profile = loop2\n` +
      `[profile loop2]\nrole_arn = ${ROLE_ARN}\nsource_profile = loop1\n`,
  );
  const r = await awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "role-only"),
    t.ctx({ AWS_PROFILE: "reader" }),
  );
  assert.deepEqual(r.fields, { value: DB_PASSWORD });
  assert.deepEqual(t.double.seen.map((s) => `${s.api}:${s.outcome}`), [
    "AssumeRole:ok",
    "GetSecretValue:ok",
  ]);
  // The base user itself may not read it: the role's identity was used.
  const direct = await hecateError(awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "role-only"),
    t.ctx(ENV_KEYS),
  ));
  assert.match(direct.message, /forbidden \(AccessDeniedException/);
  const untrusted = await hecateError(
    awsCredentials({ env: t.ctx({ AWS_PROFILE: "stranger" }).env }),
  );
  assert.match(untrusted.message, /AWS STS AssumeRole: forbidden \(AccessDenied\)/);
  const loop = await hecateError(awsCredentials({ env: t.ctx({ AWS_PROFILE: "loop1" }).env }));
  assert.match(loop.message, /loop/);
});

Deno.test("chain: credential_process output (Version 1) is used; a bad Version is refused", async () => {
  await using t = await setup();
  await Deno.mkdir(`${t.dir.path}/.aws`);
  const script = `${t.dir.path}/creds.sh`;
  await Deno.writeTextFile(
    script,
    `#!/bin/sh\necho '{"Version": 1, "AccessKeyId": "${KEY_ID}", "SecretAccessKey": "${SECRET_KEY}"}'\n`,
  );
  await Deno.chmod(script, 0o700);
  const bad = `${t.dir.path}/bad.sh`;
  await Deno.writeTextFile(
    bad,
    `#!/bin/sh\necho '{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "B"}'\n`,
  );
  await Deno.chmod(bad, 0o700);
  await Deno.writeTextFile(
    `${t.dir.path}/.aws/config`,
    `[profile proc]\ncredential_process = ${script}\n[profile badproc]\ncredential_process = ${bad}\n`,
  );
  const r = await awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "plain"),
    t.ctx({ AWS_PROFILE: "proc" }),
  );
  assert.deepEqual(r.fields, { value: DB_PASSWORD });
  const e = await hecateError(awsCredentials({ env: t.ctx({ AWS_PROFILE: "badproc" }).env }));
  assert.match(e.message, /credential_process of profile "badproc": malformed answer/);
});

Deno.test("chain: web identity token file + AWS_ROLE_ARN through AssumeRoleWithWebIdentity", async () => {
  await using t = await setup({ webIdentityTokens: { "eyJ.oidc.token": ROLE_ARN } });
  const tokenFile = `${t.dir.path}/token`;
  await Deno.writeTextFile(tokenFile, "eyJ.oidc.token\n");
  const env = { AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_ARN: ROLE_ARN };
  const r = await awsSecretsManagerSource.resolve(parseAwsSmRef("aws-sm", "plain"), t.ctx(env));
  assert.deepEqual(r.fields, { value: DB_PASSWORD });
  assert.equal(t.double.seen.at(-1)?.principal, ROLE_ARN);
  clearAwsCredentialCache();
  await Deno.writeTextFile(tokenFile, "eyJ.forged.token\n");
  const e = await hecateError(awsCredentials({ env: t.ctx(env).env }));
  assert.match(e.message, /AssumeRoleWithWebIdentity: refused \(InvalidIdentityToken\)/);
  assertNoKeys(e.message, "eyJ.forged.token");
});

Deno.test("chain: container credentials with the authorization token file; non-loopback http refused", async () => {
  await using t = await setup({ containerAuthToken: "Bearer pod-token-1" });
  const tokenFile = `${t.dir.path}/pod-token`;
  await Deno.writeTextFile(tokenFile, "Bearer pod-token-1\n");
  const env = {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: `${t.double.url}/container-credentials`,
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
  };
  const r = await awsSecretsManagerSource.resolve(parseAwsSmRef("aws-sm", "plain"), t.ctx(env));
  assert.deepEqual(r.fields, { value: DB_PASSWORD });
  clearAwsCredentialCache();
  await Deno.writeTextFile(tokenFile, "Bearer stolen\n");
  const e = await hecateError(awsCredentials({ env: t.ctx(env).env }));
  assert.match(e.message, /container credentials: forbidden \(HTTP 401\)/);
  assertNoKeys(e.message, "stolen", "pod-token-1");
  clearAwsCredentialCache();
  const far = await hecateError(awsCredentials({
    env: t.ctx({ AWS_CONTAINER_CREDENTIALS_FULL_URI: "http://203.0.113.9/creds" }).env,
  }));
  assert.match(far.message, /refused/);
});

Deno.test("chain: IMDSv2 (token, role, credentials), cached for the process until expiry", async () => {
  await using t = await setup({ instanceRole: "web-server" });
  t.double.putSecret("plain", {
    secretString: DB_PASSWORD,
    versionId: "v1-00000000000000000000000000000000",
  });
  const env = {
    AWS_EC2_METADATA_DISABLED: undefined,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: t.double.url,
  };
  for (let i = 0; i < 3; i++) {
    const r = await awsSecretsManagerSource.resolve(parseAwsSmRef("aws-sm", "plain"), t.ctx(env));
    assert.deepEqual(r.fields, { value: DB_PASSWORD });
  }
  // One chain resolution for three reads.
  assert.deepEqual(t.double.seen.filter((s) => s.api.startsWith("imds")).map((s) => s.api), [
    "imds-token",
    "imds-role",
    "imds-credentials",
  ]);
  // Without the session token, the metadata service answers nothing (IMDSv1 is off).
  const v1 = await fetch(`${t.double.url}/latest/meta-data/iam/security-credentials/`);
  assert.equal(v1.status, 401);
  await v1.body?.cancel();
});

Deno.test("chain: nothing configured lists every step tried; IMDS disabled is honoured", async () => {
  await using t = await setup();
  const silent = `http://127.0.0.1:${closedPort()}`;
  const e = await hecateError(awsCredentials({
    env: t.ctx({ AWS_EC2_METADATA_DISABLED: undefined, AWS_EC2_METADATA_SERVICE_ENDPOINT: silent })
      .env,
  }));
  assert.equal(e.exitCode, 18);
  assert.match(
    e.message,
    /none found \(tried environment, shared files \(profile "default"\), web identity, container, EC2 instance metadata\)/,
  );
  // A metadata address that accepts and never answers costs one short timeout, then the same.
  const hang = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of hang) held.push(c);
  })();
  try {
    const started = performance.now();
    const slow = await hecateError(awsCredentials({
      env: t.ctx({
        AWS_EC2_METADATA_DISABLED: undefined,
        AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://127.0.0.1:${(hang.addr as Deno.NetAddr).port}`,
      }).env,
      imdsTimeoutMs: 300,
    }));
    assert.match(slow.message, /none found/);
    assert.ok(performance.now() - started < 10_000);
  } finally {
    hang.close();
    for (const c of held) c.close();
    await accepting.catch(() => {});
  }
  const off = await hecateError(awsCredentials({ env: t.ctx().env }));
  assert.match(off.message, /EC2 instance metadata \(disabled\)/);
  const half = await hecateError(awsCredentials({ env: t.ctx({ AWS_ACCESS_KEY_ID: KEY_ID }).env }));
  assert.match(half.message, /incomplete/);
});

Deno.test("an http endpoint override off loopback is refused before any request", async () => {
  await using t = await setup();
  const e = await hecateError(awsSecretsManagerSource.resolve(
    parseAwsSmRef("aws-sm", "plain"),
    t.ctx({ ...ENV_KEYS, AWS_ENDPOINT_URL_SECRETS_MANAGER: "http://198.51.100.7:8080" }),
  ));
  assert.match(e.message, /AWS_ENDPOINT_URL_SECRETS_MANAGER: refused/);
  assert.equal(t.double.seen.length, 0);
});

Deno.test("chain order: environment keys before the default profile; AWS_PROFILE over them; credential_source", async () => {
  await using t = await setup();
  await Deno.mkdir(`${t.dir.path}/.aws`);
  await Deno.writeTextFile(
    `${t.dir.path}/.aws/config`,
    `[default]\naws_access_key_id = AKIACONFIGDEFAULT000\naws_secret_access_key = from-config\n` +
      `[profile envrole]\nrole_arn = ${ROLE_ARN}\ncredential_source = Environment\n`,
  );
  await Deno.writeTextFile(
    `${t.dir.path}/.aws/credentials`,
    `[default]\naws_access_key_id = ${KEY_ID}\naws_secret_access_key = ${SECRET_KEY}\n`,
  );
  const fromFiles = await awsCredentials({ env: t.ctx().env });
  assert.equal(fromFiles.accessKeyId, KEY_ID);
  assert.equal(fromFiles.origin, 'profile "default"');
  clearAwsCredentialCache();
  const fromEnv = await awsCredentials({
    env: t.ctx({ AWS_ACCESS_KEY_ID: "AKIAENVFIRST00000000", AWS_SECRET_ACCESS_KEY: "x" }).env,
  });
  assert.equal(fromEnv.origin, "environment");
  clearAwsCredentialCache();
  // A profile named in AWS_PROFILE wins over environment keys (as in the JS SDK v3); its
  // credential_source = Environment then takes those keys to AssumeRole.
  const viaRole = await awsCredentials({ env: t.ctx({ AWS_PROFILE: "envrole", ...ENV_KEYS }).env });
  assert.equal(viaRole.origin, 'profile "envrole" role');
  assert.ok(viaRole.sessionToken);
  assert.deepEqual(t.double.seen.map((s) => `${s.api}:${s.outcome}:${s.principal}`), [
    `AssumeRole:ok:${USER_ARN}`,
  ]);
  const files = await import("../providers/sources/aws/config_files.ts");
  const ini = files.parseIni("[a]\nx = 1\ns3 =\n  max = 2\ny = 3\n; c\n# d\n");
  assert.deepEqual(ini.get("a"), { x: "1", y: "3" });
});
