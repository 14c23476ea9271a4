/**
 * A source's own hint reaches the user when it fails with status `failed`: through the real
 * `hecate` command, an AWS `credential_process` that exits 3 is reported with its exit code and
 * the source's hint, and an `AZURE_AUTHORITY_HOST` on plain HTTP off loopback is reported as
 * refused with what to use instead, where the framework used to put a generic "check the source".
 */

import assert from "node:assert/strict";
import { MASTER_PASSWORD, runHecate, tempDir } from "./support/cli.ts";

const PG = ["--engine", "postgres", "--host", "db.internal", "--user", "app", "--tls", "disable"];

async function failingEnv(ref: string, env: Record<string, string>) {
  await using dir = await tempDir("hecate-source-hint-");
  const home = `${dir.path}/home`;
  const run = (args: string[]) =>
    runHecate(["--password-stdin", ...args], {
      home,
      stdin: `${MASTER_PASSWORD}\n`,
      env: { HOME: dir.path, ...env },
    });
  assert.equal((await run(["init", "--kdf-iterations", "600000"])).code, 0);
  const add = await run(["server", "add", "p", ...PG, "--secret-ref", ref]);
  assert.equal(add.code, 0, add.stderr);
  const r = await run(["env", "p"]);
  // The trail records the failure's class, never the source's free text.
  const trail = await Deno.readTextFile(`${home}/audit.jsonl`);
  return { ...r, trail };
}

Deno.test("a failing AWS credential_process: exit 18 with its exit code and the source's hint", async () => {
  await using dir = await tempDir("hecate-source-hint-aws-");
  const script = `${dir.path}/creds.sh`;
  await Deno.writeTextFile(script, "#!/bin/sh\nexit 3\n", { mode: 0o700 });
  const config = `${dir.path}/config`;
  await Deno.writeTextFile(config, `[profile proc]\ncredential_process = ${script}\n`);
  const r = await failingEnv("aws-sm:prod/pg#password", {
    AWS_PROFILE: "proc",
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: `${dir.path}/none`,
    AWS_REGION: "eu-west-1",
    AWS_EC2_METADATA_DISABLED: "true",
  });
  assert.equal(r.code, 18, r.stderr);
  assert.match(r.stderr, /exit 3/);
  assert.match(r.stderr, /run the command by hand/);
  assert.doesNotMatch(r.stderr, /check the source\b/);
  assert.match(r.trail, /"reason":"failed"/);
});

Deno.test("AZURE_AUTHORITY_HOST on plain HTTP off loopback: refused, with the source's hint", async () => {
  const r = await failingEnv("azure-kv:https://hint-kv.vault.azure.net/secrets/db", {
    AZURE_TENANT_ID: "hint-tenant",
    AZURE_CLIENT_ID: "hint-client",
    AZURE_CLIENT_SECRET: "hint-client-secret-not-shown",
    AZURE_AUTHORITY_HOST: "http://login.example.com",
  });
  assert.equal(r.code, 18, r.stderr);
  assert.match(r.stderr, /AZURE_AUTHORITY_HOST refused/);
  assert.match(r.stderr, /use https:\/\//);
  assert.doesNotMatch(r.stderr, /check the source\b/);
  assert.ok(!r.stderr.includes("hint-client-secret-not-shown"));
  assert.ok(!r.trail.includes("hint-client-secret-not-shown"));
});
