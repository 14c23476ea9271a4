/**
 * The `cloud` benchmark: the cron path (`HECATE_API_KEY=... hecate query pg "select 1"`) with the
 * password behind `azure-kv:` (client-secret credential, through the Azure double on loopback)
 * and behind `gcp-sm:` (service-account key file, through the Google double), against the same
 * profile with the password stored in the vault, interleaved, as ratios. Each run is a new
 * process, so each pays the whole chain: one token request and one secret read on loopback, plus
 * loading the source's modules. Each profile runs from source and through the bundle
 * (scripts/bundle.ts), in the same rounds. The doubles speak plain HTTP on loopback: real
 * endpoints add the first TLS connection of the process (docs/PERFORMANCE.md).
 *
 * @module
 */

import { exportPKCS8, generateKeyPair } from "jose";
import { startPostgres } from "../../tests/support/postgres.ts";
import { startAzureDouble } from "../../tests/support/azure_double.ts";
import { startGcpDouble } from "../../tests/support/gcp_double.ts";
import { measure, medianInterleaved, report } from "./measure.ts";
import { serverProfile, vaultWith } from "./setup.ts";
import { bundledHecate, bundleEnv } from "./source_runs.ts";

const TENANT = "bench-tenant";
const CLIENT = "bench-client";
const SA = "bench@bench-project.iam.gserviceaccount.com";

/**
 * Runs the section.
 *
 * @param root A scratch directory.
 * @param password The master password.
 * @param hecateCmd The command line of `hecate --home HOME ARGS`.
 */
export async function benchCloud(
  root: string,
  password: string,
  hecateCmd: (home: string, ...args: string[]) => string[],
): Promise<void> {
  await using pg = await startPostgres();
  const sa = await generateKeyPair("RS256", { extractable: true });
  await using azure = startAzureDouble({
    tenant: TENANT,
    clients: { [CLIENT]: { secret: "bench-client-secret" } },
    secrets: { "db-password": [{ value: pg.password, version: "0".repeat(32) }] },
  });
  await using gcp = startGcpDouble({
    serviceAccounts: { [SA]: sa.publicKey },
    secrets: { "projects/bench-project/secrets/db-password": [{ data: pg.password }] },
  });
  const keyFile = `${root}/bench-sa.json`;
  await Deno.writeTextFile(
    keyFile,
    JSON.stringify({
      type: "service_account",
      private_key: await exportPKCS8(sa.privateKey),
      client_email: SA,
      token_uri: `${gcp.url}/token`,
    }),
    { mode: 0o600 },
  );
  const home = `${root}/home-cloud`;
  const stored = serverProfile("stored", "postgres", pg);
  const vault = await vaultWith(home, password, [
    stored,
    {
      ...stored,
      name: "azure",
      secrets: {
        password: { ref: "azure-kv:https://bench-kv.vault.azure.net/secrets/db-password" },
      },
    },
    {
      ...stored,
      name: "gcp",
      secrets: { password: { ref: "gcp-sm:projects/bench-project/secrets/db-password" } },
    },
  ]);
  const apiKey = await vault.apiKeys.create({
    name: "bench",
    profiles: ["stored", "azure", "gcp"],
    expires: null,
  });
  await vault.close();
  const env = {
    ...await bundleEnv(),
    HECATE_API_KEY: apiKey,
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT,
    AZURE_CLIENT_SECRET: "bench-client-secret",
    AZURE_AUTHORITY_HOST: azure.url,
    HECATE_AZURE_KEYVAULT_URL: azure.url,
    GOOGLE_APPLICATION_CREDENTIALS: keyFile,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER: gcp.url,
  };
  const q = (name: string) => () => measure(hecateCmd(home, "query", name, "select 1"), { env });
  const bundled = await bundledHecate(root);
  const b = (name: string) => () => measure(bundled(home, "query", name, "select 1"), { env });
  for (const n of ["stored", "azure", "gcp"]) await q(n)(); // warm the caches
  for (const n of ["stored", "azure", "gcp"]) await b(n)();
  const m = await medianInterleaved(11, {
    stored: q("stored"),
    azure: q("azure"),
    gcp: q("gcp"),
    bStored: b("stored"),
    bAzure: b("azure"),
    bGcp: b("gcp"),
  });
  report(
    "cron path, azure-kv: via the Azure double (median of 11)",
    m.azure,
    m.stored,
    "stored secret",
  );
  report(
    "cron path, gcp-sm: via the Google double (median of 11)",
    m.gcp,
    m.stored,
    "stored secret",
  );
  report("bundled cron path, azure-kv: (median of 11)", m.bAzure, m.bStored, "stored secret");
  report("bundled cron path, gcp-sm: (median of 11)", m.bGcp, m.bStored, "stored secret");
}
