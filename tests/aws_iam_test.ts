/**
 * `--auth aws-iam`: the RDS IAM token is exactly the presigned URL AWS's signer documents
 * (recomputed here with `@smithy/signature-v4`, not with Hecate's signer), it is minted by the
 * CLI from the AWS credential chain for each use, and a profile that would send it over TLS
 * without verification is refused.
 */

import assert from "node:assert/strict";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";
import { rdsAuthToken, regionOfRdsHost } from "../providers/sources/aws/rds_token.ts";
import { MASTER_PASSWORD, runHecate, tempDir } from "./support/cli.ts";

const KEY_ID = "AKIAHECATETEST000002";
const SECRET_KEY = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbHECATEKEY2";
const HOST = "billing.c9akciq32.eu-central-1.rds.amazonaws.com";

/** Recomputes the token's query with AWS's signer for the same inputs and date. */
async function expectedQuery(
  host: string,
  port: number,
  user: string,
  region: string,
  date: Date,
  sessionToken?: string,
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: KEY_ID,
      secretAccessKey: SECRET_KEY,
      ...(sessionToken ? { sessionToken } : {}),
    },
    region,
    service: "rds-db",
    sha256: Sha256,
  });
  const presigned = await signer.presign({
    method: "GET",
    protocol: "https:",
    hostname: host,
    port,
    path: "/",
    query: { Action: "connect", DBUser: user },
    headers: { host: `${host}:${port}` },
  }, { expiresIn: 900, signingDate: date });
  return Object.fromEntries(
    Object.entries(presigned.query ?? {}).map(([k, v]) => [k, String(v)]),
  );
}

function parseToken(token: string) {
  const m = /^([^/?]+):(\d+)\/\?(.+)$/.exec(token);
  assert.ok(m, `not HOST:PORT/?QUERY: ${token.slice(0, 60)}`);
  const params = new URLSearchParams(m[3]!);
  const query: Record<string, string> = {};
  for (const [k, v] of params) {
    assert.equal(query[k], undefined, `duplicate ${k}`);
    query[k] = v;
  }
  return { host: m[1]!, port: Number(m[2]), query };
}

function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]|\.\d{3}/g, "");
}

Deno.test("the RDS token is the presigned connect URL, parameter for parameter, as AWS's signer makes it", async () => {
  const date = new Date(Date.UTC(2026, 11, 3, 9, 15, 30));
  for (
    const [user, session] of [
      ["app_user", undefined],
      ["iam+user@corp", "FwoGZXIvYXdzEJr//////////wEaDHECATESESSIONTOKEN="],
    ] as const
  ) {
    const token = await rdsAuthToken(
      { accessKeyId: KEY_ID, secretAccessKey: SECRET_KEY, sessionToken: session, origin: "test" },
      { host: HOST, port: 5432, user, region: "eu-central-1", datetime: amzDate(date) },
    );
    const t = parseToken(token);
    assert.equal(t.host, HOST);
    assert.equal(t.port, 5432);
    const expected = await expectedQuery(HOST, 5432, user, "eu-central-1", date, session);
    // Every parameter, no more, no fewer.
    assert.deepEqual(t.query, expected);
    assert.equal(t.query.Action, "connect");
    assert.equal(t.query.DBUser, user);
    assert.equal(t.query["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert.equal(
      t.query["X-Amz-Credential"],
      `${KEY_ID}/20261203/eu-central-1/rds-db/aws4_request`,
    );
    assert.equal(t.query["X-Amz-Date"], "20261203T091530Z");
    assert.equal(t.query["X-Amz-Expires"], "900");
    assert.equal(t.query["X-Amz-SignedHeaders"], "host");
    assert.match(t.query["X-Amz-Signature"]!, /^[0-9a-f]{64}$/);
    assert.equal(t.query["X-Amz-Security-Token"], session);
    // Bound to host, port, user and region: change one and the signature differs.
    const other = await expectedQuery(HOST, 5433, user, "eu-central-1", date, session);
    assert.notEqual(other["X-Amz-Signature"], t.query["X-Amz-Signature"]);
  }
  assert.equal(regionOfRdsHost(HOST), "eu-central-1");
  assert.equal(regionOfRdsHost("db.example.com"), undefined);
});

Deno.test("hecate mints a fresh token from the chain for each use, and refuses aws-iam without verified TLS", async () => {
  await using dir = await tempDir("hecate-aws-iam-");
  const home = `${dir.path}/home`;
  const awsEnv = {
    AWS_ACCESS_KEY_ID: KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    AWS_EC2_METADATA_DISABLED: "true",
    HOME: dir.path,
  };
  const run = (args: string[]) =>
    runHecate(["--password-stdin", ...args], {
      home,
      stdin: `${MASTER_PASSWORD}\n`,
      env: awsEnv,
    });
  const init = await run(["init", "--kdf-iterations", "600000"]);
  assert.equal(init.code, 0, init.stderr);
  const add = (name: string, tls: string[]) =>
    run([
      "server",
      "add",
      name,
      "--engine",
      "postgres",
      "--auth",
      "aws-iam",
      "--host",
      HOST,
      "--user",
      "app_user",
      "--database",
      "billing",
      ...tls,
    ]);
  for (const mode of ["insecure", "disable"]) {
    const r = await add(`weak-${mode}`, ["--tls", mode]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /auth aws-iam needs --tls verify/);
  }
  const listed = await run(["server", "list"]);
  assert.doesNotMatch(listed.stdout, /weak-/);
  const added = await add("billing", []);
  assert.equal(added.code, 0, added.stderr);
  // `hecate run` hands the token to the child as PGPASSWORD: recompute it from its own date.
  const tokens: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await run(["run", "billing", "--", "/bin/sh", "-c", 'printf %s "$PGPASSWORD"']);
    assert.equal(r.code, 0, r.stderr);
    const t = parseToken(r.stdout);
    const date = new Date(
      t.query["X-Amz-Date"]!.replace(
        /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
        "$1-$2-$3T$4:$5:$6Z",
      ),
    );
    assert.ok(Math.abs(Date.now() - date.getTime()) < 120_000, "minted now");
    assert.deepEqual(t.query, await expectedQuery(HOST, 5432, "app_user", "eu-central-1", date));
    tokens.push(r.stdout);
    assert.ok(!r.stderr.includes(SECRET_KEY));
    if (i === 0) await new Promise((ok) => setTimeout(ok, 1100));
  }
  assert.notEqual(tokens[0], tokens[1], "each use mints its own token");
  // No credentials anywhere: exit 18 naming what was tried.
  const none = await runHecate(["--password-stdin", "run", "billing", "--", "/bin/true"], {
    home,
    stdin: `${MASTER_PASSWORD}\n`,
    env: { AWS_EC2_METADATA_DISABLED: "true", HOME: dir.path },
  });
  assert.equal(none.code, 18, none.stderr);
  assert.match(none.stderr, /AWS credentials: none found \(tried environment/);
});

Deno.test("against a real PostgreSQL with TLS: the token goes out only over verified TLS", async () => {
  const { startPostgres } = await import("./support/postgres.ts");
  await using pg = await startPostgres({ tls: true });
  await using dir = await tempDir("hecate-aws-iam-pg-");
  const home = `${dir.path}/home`;
  const env = {
    AWS_ACCESS_KEY_ID: KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    AWS_EC2_METADATA_DISABLED: "true",
    HOME: dir.path,
  };
  const run = (args: string[]) =>
    runHecate(["--password-stdin", ...args], { home, stdin: `${MASTER_PASSWORD}\n`, env });
  assert.equal((await run(["init", "--kdf-iterations", "600000"])).code, 0);
  const user = pg.logins.cleartext.user;
  const add = (name: string, more: string[]) =>
    run([
      "server",
      "add",
      name,
      "--engine",
      "postgres",
      "--auth",
      "aws-iam",
      "--host",
      pg.host,
      "--port",
      String(pg.port),
      "--user",
      user,
      "--database",
      pg.database,
      "--aws-region",
      "eu-west-1",
      ...more,
    ]);
  assert.equal((await add("trusted", ["--ca-file", pg.caFile!])).code, 0);
  assert.equal((await add("untrusted", [])).code, 0);
  // Unverified certificate: refused before any login is sent.
  const refused = await run(["query", "untrusted", "select 1"]);
  assert.equal(refused.code, 6, refused.stderr);
  assert.match(refused.stderr, /certificate/i);
  // Verified: the server asks for the password in cleartext (as RDS does) and gets the token,
  // which this server's own password check refuses: the login was attempted, over TLS.
  const tried = await run(["query", "trusted", "select 1"]);
  assert.equal(tried.code, 3, tried.stderr);
  assert.ok(!tried.stderr.includes("X-Amz-Signature"), "the token is never printed");
  // Editing the profile down to unverified TLS is refused too.
  const weakened = await run(["server", "edit", "trusted", "--tls", "insecure"]);
  assert.equal(weakened.code, 2, weakened.stderr);
  assert.match(weakened.stderr, /aws-iam needs --tls verify/);
});

Deno.test("aws-iam is offered for PostgreSQL and MySQL only", async () => {
  const { providerByType } = await import("../providers/mod.ts");
  assert.deepEqual(providerByType("aws-iam")?.engines, ["postgres", "mysql"]);
  assert.deepEqual(providerByType("aws-iam")?.secretFields, []);
});
