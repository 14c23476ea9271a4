/**
 * `aws-sm:` through the real `hecate` command against a real PostgreSQL: the password (or the
 * whole connection, `--from`) comes from Secrets Manager, here the AWS double on loopback, with
 * the credentials the AWS chain finds in the process environment. A wrong key is refused by the
 * double's own signature check and reported as exit 18; nothing secret reaches the output or the
 * audit trail.
 */

import assert from "node:assert/strict";
import { startAwsDouble } from "./support/aws_double.ts";
import { MASTER_PASSWORD, runHecate, type RunHecateResult, tempDir } from "./support/cli.ts";
import { startPostgres } from "./support/postgres.ts";

const REGION = "eu-west-1";
const KEY_ID = "AKIAHECATETEST000003";
const SECRET_KEY = "c2VjcmV0/aws/key/for/the/cli/test/HECATE3";

Deno.test("hecate query with aws-sm: references and --from aws-sm: against a real PostgreSQL", async () => {
  await using pg = await startPostgres();
  await using dir = await tempDir("hecate-aws-cli-");
  const double = await startAwsDouble({
    region: REGION,
    keys: {
      [KEY_ID]: { secretAccessKey: SECRET_KEY, principal: "arn:aws:iam::123456789012:user/ci" },
    },
    secrets: {
      "prod/pg": {
        secretString: JSON.stringify({
          engine: "postgres",
          host: pg.host,
          port: pg.port,
          dbname: pg.database,
          username: pg.user,
          password: pg.password,
        }),
        versionId: "3f0e1c2a-1111-4222-8333-944445555666",
      },
    },
  });
  const home = `${dir.path}/home`;
  const aws = {
    HOME: dir.path,
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: double.url,
    AWS_ACCESS_KEY_ID: KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    AWS_EC2_METADATA_DISABLED: "true",
  };
  const runs: RunHecateResult[] = [];
  const run = async (args: string[], env: Record<string, string> = aws) => {
    const r = await runHecate(["--password-stdin", ...args], {
      home,
      stdin: `${MASTER_PASSWORD}\n`,
      env,
    });
    runs.push(r);
    return r;
  };
  try {
    assert.equal((await run(["init", "--kdf-iterations", "600000"])).code, 0);
    const fromAdd = await run([
      "server",
      "add",
      "whole",
      "--engine",
      "postgres",
      "--from",
      "aws-sm:prod/pg",
      "--tls",
      "disable",
    ]);
    assert.equal(fromAdd.code, 0, fromAdd.stderr);
    const q1 = await run(["query", "whole", "select current_user as u"]);
    assert.equal(q1.code, 0, q1.stderr);
    assert.equal(q1.stdout, `u\n${pg.user}\n`);

    const refAdd = await run([
      "server",
      "add",
      "field",
      "--engine",
      "postgres",
      "--host",
      pg.host,
      "--port",
      String(pg.port),
      "--user",
      pg.user,
      "--database",
      pg.database,
      "--tls",
      "disable",
      "--secret-ref",
      `${"aws-sm:"}${double.arnOf("prod/pg")}#password`,
    ]);
    assert.equal(refAdd.code, 0, refAdd.stderr);
    const q2 = await run(["query", "field", "select 40 + 2 as n"]);
    assert.equal(q2.code, 0, q2.stderr);
    assert.equal(q2.stdout, "n\n42\n");

    // server test names the source and asks it (GetSecretValue through the double).
    const tested = await run(["server", "test", "field"]);
    assert.equal(tested.code, 0, tested.stderr);
    assert.match(tested.stdout, /aws-sm:\S+ \(AWS Secrets Manager\): ok, .*GetSecretValue ok/);

    // A malformed reference: usage error at add time, nothing stored.
    const before = await Deno.readFile(`${home}/vault.hecate`);
    const bad = await run([
      "server",
      "add",
      "bad",
      "--engine",
      "postgres",
      "--from",
      "aws-sm:prod pg",
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /Malformed AWS Secrets Manager reference/);
    assert.deepEqual(await Deno.readFile(`${home}/vault.hecate`), before);

    // Attack: a guessed secret key. The double's signature check refuses it; exit 18.
    const wrong = await run(["query", "field", "select 1"], {
      ...aws,
      AWS_SECRET_ACCESS_KEY: "guessed/" + SECRET_KEY.slice(8),
    });
    assert.equal(wrong.code, 18, wrong.stderr);
    assert.match(wrong.stderr, /AWS Secrets Manager.*forbidden \(InvalidSignatureException/);
    assert.ok(double.seen.some((s) => s.outcome === "InvalidSignatureException"));

    // No credentials at all: exit 18 listing the chain's steps.
    const none = await run(["query", "field", "select 1"], {
      HOME: dir.path,
      AWS_REGION: REGION,
      AWS_ENDPOINT_URL: double.url,
      AWS_EC2_METADATA_DISABLED: "true",
    });
    assert.equal(none.code, 18, none.stderr);
    assert.match(none.stderr, /AWS credentials: none found; tried environment/);

    // Nothing secret anywhere: outputs, errors, the audit trail.
    const trail = await Deno.readTextFile(`${home}/audit.jsonl`);
    assert.match(trail, /aws-sm:/);
    for (const text of [...runs.flatMap((r) => [r.stdout, r.stderr]), trail]) {
      assert.ok(!text.includes(pg.password), "database password leaked");
      assert.ok(!text.includes(SECRET_KEY.slice(8)), "AWS secret key leaked");
    }
  } finally {
    await double.close();
  }
});
