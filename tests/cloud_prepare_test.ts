/**
 * A connect lets the `aws-sm:`, `gcp-sm:` and `azure-kv:` sources start their set-up (modules,
 * credential chain, for AWS the GetSecretValue request signed ahead) while the `profile.read`
 * record is written (SecretSource.prepare, providers/sources/resolve.ts `prepareProfile`). These
 * tests hold it to its limits: when that record cannot be written (a full disk under the audit
 * trail, through the CLI; a record that fails only after the chains had time to run, in process),
 * the secret managers receive no secret request; a request prepared under another environment is
 * never sent; the prepared request is sent once; and the cron path with these sources loads no
 * module of Deno's Node layer.
 */

import assert from "node:assert/strict";
import { exportPKCS8, generateKeyPair } from "jose";
import { type AwsDouble, startAwsDouble } from "./support/aws_double.ts";
import { type GcpDouble, startGcpDouble } from "./support/gcp_double.ts";
import { runHecate, tempDir } from "./support/cli.ts";
import { startPostgres } from "./support/postgres.ts";
import { initVault, openVault } from "../mod.ts";
import { type AuditSink, FileAuditLog } from "../src/audit/log.ts";
import { HecateError } from "../src/errors.ts";
import { clearGoogleTokenCache } from "../providers/sources/gcp/adc.ts";
import { parseRef } from "../providers/sources/registry.ts";
import { clearAwsCredentialCache } from "../providers/sources/aws/chain.ts";
import { prepareSecretValue } from "../providers/sources/aws/secrets_manager.ts";
import type { SourceContext } from "../providers/sources/source.ts";

const REGION = "eu-west-1";
const KEY_ID = "AKIAHECATETEST000009";
const SECRET_KEY = "prepared/secret/key/for/the/test/HECATE9";
const SA = "prepare-test@billing-prod.iam.gserviceaccount.com";
const GCP_SECRET = "projects/billing-prod/secrets/db-password";
const PASSWORD = "prepare test: amber kettle lantern";

/** Started doubles, a database, a vault with an `aws-sm:` and a `gcp-sm:` profile, an API key. */
async function setup() {
  const pg = await startPostgres();
  const dir = await tempDir("hecate-prepare-");
  const aws = await startAwsDouble({
    region: REGION,
    keys: {
      [KEY_ID]: { secretAccessKey: SECRET_KEY, principal: "arn:aws:iam::123456789012:user/ci" },
    },
    secrets: {
      "prod/pg": { secretString: JSON.stringify({ password: pg.password }), versionId: "v-0001" },
    },
    instanceRole: "db-reader",
  });
  const sa = await generateKeyPair("RS256", { extractable: true });
  const gcp = startGcpDouble({
    serviceAccounts: { [SA]: sa.publicKey },
    secrets: { [GCP_SECRET]: [{ data: pg.password }] },
  });
  const keyFile = `${dir.path}/sa.json`;
  await Deno.writeTextFile(
    keyFile,
    JSON.stringify({
      type: "service_account",
      private_key: await exportPKCS8(sa.privateKey),
      client_email: SA,
      token_uri: `${gcp.url}/token`,
    }),
  );
  const home = `${dir.path}/home`;
  await initVault({ home, password: PASSWORD, kdfIterations: 600_000 });
  const vault = await openVault({ home, password: PASSWORD, lockout: "off" });
  const base = {
    engine: "postgres" as const,
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user: pg.user,
    tls: { mode: "disable" as const },
  };
  await vault.profiles.add({
    ...base,
    name: "viaaws",
    secrets: { password: { ref: "aws-sm:prod/pg#password" } },
  });
  await vault.profiles.add({
    ...base,
    name: "viagcp",
    secrets: { password: { ref: `gcp-sm:${GCP_SECRET}` } },
  });
  const apiKey = await vault.apiKeys.create({
    name: "cron",
    profiles: ["viaaws", "viagcp"],
    expires: null,
  });
  await vault.close();
  const env = {
    HOME: dir.path,
    HECATE_API_KEY: apiKey,
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: aws.url,
    AWS_ACCESS_KEY_ID: KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    AWS_EC2_METADATA_DISABLED: "true",
    GOOGLE_APPLICATION_CREDENTIALS: keyFile,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER: gcp.url,
  };
  return {
    home,
    env,
    aws: aws as AwsDouble,
    gcp: gcp as GcpDouble,
    async [Symbol.asyncDispose]() {
      await aws.close();
      await gcp.close();
      await dir.dispose();
      await pg[Symbol.asyncDispose]();
    },
  };
}

const getSecretValues = (aws: AwsDouble) => aws.seen.filter((s) => s.api === "GetSecretValue");

Deno.test("attack: a full disk under the audit trail: the cron run exits 12 and no secret request reaches AWS or Google", async () => {
  await using t = await setup();
  // The attacker (or a full disk) makes the trail unwritable, hoping a secret is fetched
  // without its record: the active segment becomes /dev/full.
  const log = new FileAuditLog(t.home);
  await Deno.remove(log.path);
  await Deno.symlink("/dev/full", log.path);
  for (const name of ["viaaws", "viagcp"]) {
    const r = await runHecate(["query", name, "select 1"], { home: t.home, env: t.env });
    assert.equal(r.code, 12, r.stderr);
    assert.match(r.stderr, /audit/i);
    assert.equal(r.stdout, "");
  }
  assert.deepEqual(getSecretValues(t.aws), [], "GetSecretValue was sent without its record");
  assert.equal(t.gcp.calls.access ?? 0, 0, "Secret Manager was read without its record");
});

Deno.test("attack: a profile.read record that fails slowly: the chains ran meanwhile, no secret request was sent", async () => {
  // The record's write takes 300 ms and then fails (a dying disk): long enough for the prepared
  // work (IMDS credentials, the signed request; the Google token) to finish, so a source that
  // sent its secret request early would be caught here.
  await using t = await setup();
  const vars: Record<string, string> = {
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: t.aws.url,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: t.aws.url,
    AWS_CONFIG_FILE: `${t.home}/no-aws-config`,
    AWS_SHARED_CREDENTIALS_FILE: `${t.home}/no-aws-credentials`,
    GOOGLE_APPLICATION_CREDENTIALS: t.env.GOOGLE_APPLICATION_CREDENTIALS,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER: t.gcp.url,
  };
  const saved = Object.keys(vars).concat(
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
  )
    .map((k) => [k, Deno.env.get(k)] as const);
  for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"]) Deno.env.delete(k);
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  clearAwsCredentialCache();
  clearGoogleTokenCache();
  try {
    // A fake sink (named as such): the real file sink, but failing profile.read records late.
    const real = new FileAuditLog(t.home);
    const fakeSlowFailingRead: AuditSink = {
      append: async (e) => {
        if (e.event !== "profile.read") return await real.append(e);
        await new Promise((r) => setTimeout(r, 300));
        throw new HecateError("audit_failed", "Cannot write the audit record");
      },
    };
    const vault = await openVault({
      home: t.home,
      password: PASSWORD,
      audit: fakeSlowFailingRead,
      lockout: "off",
    });
    try {
      for (const name of ["viaaws", "viagcp"]) {
        await assert.rejects(() => vault.connect(name), (e: unknown) => {
          assert.ok(e instanceof HecateError);
          assert.equal(e.code, "audit_failed");
          return true;
        });
      }
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await vault.close();
    }
    // The preparation did run (the chains' requests), and stopped short of the secrets.
    assert.ok(t.aws.seen.some((s) => s.api === "imds-credentials"), JSON.stringify(t.aws.seen));
    assert.equal(t.gcp.calls.token, 1);
    assert.deepEqual(getSecretValues(t.aws), [], "GetSecretValue was sent without its record");
    assert.equal(t.gcp.calls.access ?? 0, 0, "Secret Manager was read without its record");
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    clearAwsCredentialCache();
    clearGoogleTokenCache();
  }
});

Deno.test("the prepared GetSecretValue is sent once, after the record; a cron run with aws-sm: or gcp-sm: loads no module of Deno's Node layer", async () => {
  await using t = await setup();
  for (const name of ["viaaws", "viagcp"]) {
    const r = await runHecate(["query", name, "select 40 + 2 as answer"], {
      home: t.home,
      env: t.env,
      denoFlags: ["--log-level=debug"],
    });
    const lines = r.stderr.split("\n");
    assert.equal(r.code, 0, lines.filter((l) => !l.startsWith("DEBUG")).join("\n"));
    assert.equal(r.stdout, "answer\n42\n");
    assert.deepEqual(lines.filter((l) => l.includes("ext:deno_node/")), [], name);
    assert.ok(lines.some((l) => l.startsWith("DEBUG") && l.includes("main.ts")));
  }
  assert.deepEqual(getSecretValues(t.aws).map((s) => s.outcome), ["ok"]);
  assert.equal(t.gcp.calls.access, 1);
  assert.equal(t.gcp.calls.token, 1);
  // The audit trail has the read before the resolution for each.
  const events = (await Deno.readTextFile(new FileAuditLog(t.home).path)).trim().split("\n")
    .map((l) => JSON.parse(l) as { event: string; profile?: string });
  for (const name of ["viaaws", "viagcp"]) {
    const mine = events.filter((e) => e.profile === name).map((e) => e.event);
    assert.ok(mine.indexOf("profile.read") < mine.indexOf("secret.resolve"), mine.join(","));
  }
});

Deno.test("a GetSecretValue request prepared under another environment (other keys) is not sent", async () => {
  clearAwsCredentialCache();
  const aws = await startAwsDouble({
    region: REGION,
    keys: { [KEY_ID]: { secretAccessKey: SECRET_KEY, principal: "arn:aws:iam::1:user/ci" } },
    secrets: { "plain": { secretString: "canary-prepared-value", versionId: "v-0002" } },
  });
  try {
    const vars: Record<string, string> = {
      HOME: "/nonexistent",
      AWS_REGION: REGION,
      AWS_ENDPOINT_URL: aws.url,
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_ACCESS_KEY_ID: KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    };
    const ref = parseRef("aws-sm:plain");
    // Prepared with a wrong secret key: were it sent, the double's signature check would refuse.
    const wrong: Record<string, string> = {
      ...vars,
      AWS_SECRET_ACCESS_KEY: "not/the/key/that/was/issued/HECATE00000",
    };
    prepareSecretValue(ref, (n) => wrong[n]);
    const ctx: SourceContext = {
      signal: AbortSignal.timeout(20_000),
      credentials: {},
      env: (n) => vars[n],
    };
    const { awsSecretsManagerSource } = await import("../providers/sources/aws/source.ts");
    const got = await awsSecretsManagerSource.resolve(ref, ctx);
    assert.deepEqual(got.fields, { value: "canary-prepared-value" });
    assert.deepEqual(getSecretValues(aws).map((s) => s.outcome), ["ok"]);
    // Prepared under the right environment: that request is the one sent, once; a second
    // resolution signs its own.
    prepareSecretValue(ref, (n) => vars[n]);
    await awsSecretsManagerSource.resolve(ref, ctx);
    await awsSecretsManagerSource.resolve(ref, ctx);
    assert.deepEqual(getSecretValues(aws).map((s) => s.outcome), ["ok", "ok", "ok"]);
  } finally {
    await aws.close();
    clearAwsCredentialCache();
  }
});
