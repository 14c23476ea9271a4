/**
 * Fuzz: `aws-sm:` references and the AWS double's answers. Any reference text is either parsed
 * (into a name or an ARN, an optional version and field) or refused as a usage error; any body a
 * hostile Secrets Manager endpoint returns is either a value or an exit-18 error, never a crash,
 * and a canary in the body never reaches an error message.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { awsSecretsManagerSource } from "../providers/sources/aws/source.ts";
import { parseAwsSmRef } from "../providers/sources/aws/sm_ref.ts";
import { clearAwsCredentialCache } from "../providers/sources/aws/chain.ts";
import { readBody } from "../providers/sources/aws/net.ts";

const CANARY = "canary-7d1f-LEAK";

/**
 * Resolves an `aws-sm:` reference against the server on `port` and expects the answer to be
 * cut off at the size limit (exit 18, "too large"), not parsed or held whole.
 */
async function assertCutOff(port: number): Promise<void> {
  const env: Record<string, string> = {
    AWS_ACCESS_KEY_ID: "AKIAFUZZ000000000000",
    AWS_SECRET_ACCESS_KEY: "fuzz-secret-key",
    AWS_REGION: "eu-west-1",
    AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
    HOME: "/nonexistent",
  };
  clearAwsCredentialCache();
  await assert.rejects(
    awsSecretsManagerSource.resolve(parseAwsSmRef("aws-sm", "x"), {
      signal: AbortSignal.timeout(10_000),
      credentials: {},
      env: (n) => env[n],
    }),
    (e: Error) => {
      assert.ok(e instanceof HecateError && e.exitCode === 18);
      assert.match(e.message, /malformed/);
      assert.match((e as HecateError).hint ?? "", /too large/);
      return true;
    },
  );
}

Deno.test("fuzz: aws-sm reference parsing accepts or refuses with a usage error", () => {
  const piece = fc.constantFrom(
    "prod/db",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf",
    "#",
    "?",
    "&",
    "=",
    "version-stage",
    "version-id",
    "AWSCURRENT",
    "0123456789abcdef0123456789abcdef",
    " ",
    "\n",
    "password",
    "é",
    "..",
  );
  const text = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.array(piece, { maxLength: 8 }).map((a) => a.join("")),
  );
  fc.assert(
    fc.property(text, (t) => {
      try {
        const r = parseAwsSmRef("aws-sm", t);
        assert.ok(r.parts.secretId && r.parts.secretId.length > 0);
        assert.ok(!/[#?\s]/.test(r.parts.secretId));
        if (r.field !== undefined) assert.match(r.field, /^[A-Za-z0-9_.-]+$/);
      } catch (e) {
        assert.ok(e instanceof HecateError && e.code === "usage", String(e));
        assert.ok(!e.message.includes("\n"));
      }
    }),
    { numRuns: 400 },
  );
});

Deno.test("fuzz: hostile Secrets Manager answers give a value or exit 18, never a crash or a leak", async () => {
  let next: { status: number; body: string } = { status: 200, body: "{}" };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    return new Response(next.body, { status: next.status });
  });
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  const env: Record<string, string> = {
    AWS_ACCESS_KEY_ID: "AKIAFUZZ000000000000",
    AWS_SECRET_ACCESS_KEY: "fuzz-secret-key",
    AWS_REGION: "eu-west-1",
    AWS_ENDPOINT_URL: url,
    HOME: "/nonexistent",
  };
  const json = fc.oneof(
    fc.record({
      SecretString: fc.oneof(
        fc.string(),
        fc.constant(`{"password":"${CANARY}"}`),
        fc.jsonValue().map((v) => JSON.stringify(v)),
      ),
      VersionId: fc.oneof(fc.string(), fc.integer()),
    }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
    fc.record({
      __type: fc.oneof(fc.string(), fc.constant(`x#${CANARY}`)),
      message: fc.constant(CANARY),
    })
      .map((o) => JSON.stringify(o)),
    fc.string({ maxLength: 200 }),
  );
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(200, 400, 403, 500),
        json,
        fc.constantFrom("x", "x#password"),
        async (status, body, ref) => {
          next = { status, body };
          clearAwsCredentialCache();
          try {
            const r = await awsSecretsManagerSource.resolve(parseAwsSmRef("aws-sm", ref), {
              signal: AbortSignal.timeout(5000),
              credentials: {},
              env: (n) => env[n],
            });
            assert.equal(status, 200);
            for (const v of Object.values(r.fields)) assert.equal(typeof v, "string");
          } catch (e) {
            assert.ok(e instanceof HecateError, String(e));
            assert.equal(e.exitCode, 18);
            assert.ok(!e.message.includes(CANARY), e.message);
            assert.ok(!(e.hint ?? "").includes(CANARY));
            assert.ok(!e.message.includes("fuzz-secret-key"));
          }
        },
      ),
      { numRuns: 250 },
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("an endpoint that streams an endless answer is cut off at 1 MiB: exit 18, bounded memory", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    let sent = 0;
    return new Response(
      new ReadableStream({
        pull(c) {
          // 64 MiB at most, so a broken limit ends the test instead of hanging it.
          if ((sent += chunk.byteLength) > 64 << 20) c.close();
          else c.enqueue(chunk);
        },
      }),
    );
  });
  try {
    await assertCutOff((server.addr as Deno.NetAddr).port);
  } finally {
    await server.shutdown();
  }
});

Deno.test("attack: a compressed answer that declares a small length is counted as it inflates, not read whole: exit 18", async () => {
  // Through fetch: 16 KiB of gzip declared as such inflates to 16 MiB.
  const gz = new Uint8Array(
    await new Response(
      new Blob([new Uint8Array(16 << 20).fill(0x61)]).stream()
        .pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  assert.ok(gz.byteLength < 1 << 20, "the bomb must declare less than the limit");
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    return new Response(gz, {
      headers: { "content-encoding": "gzip", "content-length": String(gz.byteLength) },
    });
  });
  try {
    await assertCutOff((server.addr as Deno.NetAddr).port);
  } finally {
    await server.shutdown();
  }
  // What fetch hands over after inflating: the body is pulled only up to the limit (a bomb of
  // gigabytes would otherwise be held in memory whole before its size is checked).
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  let pulled = 0;
  const inflated = new Response(
    new ReadableStream({
      pull(c) {
        if ((pulled += chunk.byteLength) > 64 << 20) c.close();
        else c.enqueue(chunk);
      },
    }),
    { headers: { "content-encoding": "gzip", "content-length": "16384" } },
  );
  await assert.rejects(readBody("AWS test", inflated), /malformed/);
  assert.ok(pulled < 2 << 20, `pulled ${pulled} bytes past a 1 MiB limit`);
});

Deno.test("an answer that declares its length within the limit is read whole; one declared above it is refused", async () => {
  const body = JSON.stringify({ SecretString: "declared-length-value", VersionId: "v1" });
  let declare: string | undefined;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    if (declare === undefined) return new Response(body);
    // A length above the limit, streamed in full: read as a stream and cut at 1 MiB.
    return new Response(new Uint8Array(Number(declare)).fill(0x20), {
      headers: { "content-length": declare },
    });
  });
  const env: Record<string, string> = {
    AWS_ACCESS_KEY_ID: "AKIAFUZZ000000000000",
    AWS_SECRET_ACCESS_KEY: "fuzz-secret-key",
    AWS_REGION: "eu-west-1",
    AWS_ENDPOINT_URL: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    HOME: "/nonexistent",
  };
  const resolve = () =>
    awsSecretsManagerSource.resolve(parseAwsSmRef("aws-sm", "x"), {
      signal: AbortSignal.timeout(10_000),
      credentials: {},
      env: (n) => env[n],
    });
  try {
    clearAwsCredentialCache();
    assert.deepEqual((await resolve()).fields, { value: "declared-length-value" });
    declare = String((1 << 20) + 1);
    await assert.rejects(resolve(), (e: Error) => {
      assert.ok(e instanceof HecateError && e.exitCode === 18);
      assert.match((e as HecateError).hint ?? "", /too large/);
      return true;
    });
  } finally {
    await server.shutdown();
  }
});
