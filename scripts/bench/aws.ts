/**
 * The `aws` benchmark: the cron path (`HECATE_API_KEY=... hecate query pg "select 1"`) with the
 * password behind `aws-sm:` (Secrets Manager through the AWS double on loopback, signed with
 * environment keys, and with credentials from IMDSv2 after every earlier chain step found
 * nothing) against the same profile with a stored secret, interleaved; and, in process, what the
 * credential chain costs when every step before IMDS is absent, next to environment keys and a
 * cached result. The stored secret and `aws-sm:` run from source and through the bundle
 * (scripts/bundle.ts, what a cron job installed from the README runs), all in the same rounds.
 * The double speaks plain HTTP on loopback: a real endpoint adds the first TLS connection of the
 * process (docs/PERFORMANCE.md, "Secret sources on the cron path: where the time goes").
 *
 * @module
 */

import { startPostgres } from "../../tests/support/postgres.ts";
import { startAwsDouble } from "../../tests/support/aws_double.ts";
import { awsCredentials, clearAwsCredentialCache } from "../../providers/sources/aws/chain.ts";
import { measure, medianInterleaved, medianMs, report } from "./measure.ts";
import { serverProfile, vaultWith } from "./setup.ts";
import { bundledHecate, bundleEnv } from "./source_runs.ts";

const KEY_ID = "AKIABENCH00000000001";
const SECRET_KEY = "bench/secret/key/not/used/anywhere/else0";
const REGION = "eu-west-1";

/**
 * Runs the section and prints its lines.
 *
 * @param root A scratch directory.
 * @param password The master password to create the vault with.
 * @param hecateCmd Builds a `hecate --home HOME ...` command line.
 * @returns The bundled ratio aws-sm (environment keys) / stored secret.
 */
export async function benchAws(
  root: string,
  password: string,
  hecateCmd: (home: string, ...args: string[]) => string[],
): Promise<number> {
  await using pg = await startPostgres();
  const double = await startAwsDouble({
    region: REGION,
    keys: {
      [KEY_ID]: { secretAccessKey: SECRET_KEY, principal: "arn:aws:iam::123456789012:user/bench" },
    },
    secrets: {
      "bench/pg": {
        secretString: JSON.stringify({ username: pg.user, password: pg.password }),
        versionId: "bench-0000-0000-0000-000000000000",
      },
    },
    instanceRole: "bench-instance",
  });
  try {
    const home = `${root}/home-aws`;
    const stored = serverProfile("stored", "postgres", pg);
    const viaAws = {
      ...serverProfile("viaaws", "postgres", pg),
      secrets: { password: { ref: "aws-sm:bench/pg#password" } },
    };
    // The framework's own cost (resolution, audit record), without AWS: an env: reference.
    const viaEnv = {
      ...serverProfile("viaenv", "postgres", pg),
      secrets: { password: { ref: "env:BENCH_PG_PASSWORD" } },
    };
    const vault = await vaultWith(home, password, [stored, viaAws, viaEnv]);
    const apiKey = await vault.apiKeys.create({
      name: "bench",
      profiles: ["stored", "viaaws", "viaenv"],
      expires: null,
    });
    const empty = `${root}/aws-empty-home`;
    await Deno.mkdir(empty, { recursive: true });
    // DENO_DIR stays Deno's own cache although HOME is empty (./source_runs.ts says why).
    const base = {
      ...await bundleEnv(),
      HECATE_API_KEY: apiKey,
      HOME: empty,
      AWS_REGION: REGION,
      AWS_ENDPOINT_URL: double.url,
    };
    const envKeys = {
      ...base,
      AWS_ACCESS_KEY_ID: KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_KEY,
      AWS_EC2_METADATA_DISABLED: "true",
      BENCH_PG_PASSWORD: pg.password,
    };
    const imds = { ...base, AWS_EC2_METADATA_SERVICE_ENDPOINT: double.url };
    const q = (name: string) => hecateCmd(home, "query", name, "select 1");
    const bundled = await bundledHecate(root);
    const b = (name: string) => bundled(home, "query", name, "select 1");
    // Warm Deno's caches (aws4fetch is loaded lazily, only by aws-sm: profiles).
    await measure(q("stored"), { env: envKeys });
    await measure(q("viaaws"), { env: envKeys });
    await measure(q("viaaws"), { env: imds });
    await measure(b("stored"), { env: envKeys });
    await measure(b("viaaws"), { env: envKeys });
    const m = await medianInterleaved(21, {
      stored: () => measure(q("stored"), { env: envKeys }),
      envRef: () => measure(q("viaenv"), { env: envKeys }),
      awsEnv: () => measure(q("viaaws"), { env: envKeys }),
      awsImds: () => measure(q("viaaws"), { env: imds }),
      bStored: () => measure(b("stored"), { env: envKeys }),
      bAwsEnv: () => measure(b("viaaws"), { env: envKeys }),
      bAwsImds: () => measure(b("viaaws"), { env: imds }),
    });
    report(
      "cron path, aws-sm: via the AWS double, environment keys (median of 21)",
      m.awsEnv,
      m.stored,
      "stored secret",
    );
    report(
      "cron path, env: reference (the source framework alone; median of 21)",
      m.envRef,
      m.stored,
      "stored secret",
    );
    report(
      "cron path, aws-sm: via the AWS double, IMDSv2 credentials (median of 21)",
      m.awsImds,
      m.stored,
      "stored secret",
    );
    report(
      "bundled cron path, aws-sm:, environment keys (median of 21)",
      m.bAwsEnv,
      m.bStored,
      "stored secret",
    );
    report(
      "bundled cron path, aws-sm:, every chain step before IMDSv2 absent (median of 21)",
      m.bAwsImds,
      m.bStored,
      "stored secret",
    );
    // In process: the chain alone.
    const chainEnv = (vars: Record<string, string>) => (n: string) => vars[n];
    const walkToImds = chainEnv({ HOME: empty, AWS_EC2_METADATA_SERVICE_ENDPOINT: double.url });
    const withKeys = chainEnv({
      HOME: empty,
      AWS_ACCESS_KEY_ID: KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    });
    const fresh = (env: (n: string) => string | undefined) => () => {
      clearAwsCredentialCache();
      return awsCredentials({ env });
    };
    await fresh(walkToImds)();
    const imdsMs = await medianMs(51, fresh(walkToImds));
    const envMs = await medianMs(51, fresh(withKeys));
    await awsCredentials({ env: walkToImds });
    const cachedMs = await medianMs(51, () => awsCredentials({ env: walkToImds }));
    console.log(
      `AWS credential chain, in process (median of 51): every step before IMDS absent, IMDSv2 ` +
        `on loopback ${imdsMs.toFixed(2)} ms; environment keys ${envMs.toFixed(3)} ms; cached ` +
        `${cachedMs.toFixed(3)} ms`,
    );
    return m.bAwsEnv.wallS / m.bStored.wallS;
  } finally {
    await double.close();
  }
}
