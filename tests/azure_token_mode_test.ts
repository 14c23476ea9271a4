/**
 * Azure SQL logins with `--auth token --token-mode default|managed-identity`: the token comes from
 * the Azure credential chain (resource https://database.windows.net) issued by the Azure double,
 * and the SQL Server double accepts only tokens that double issued. A managed-identity profile
 * does not fall back to the environment's client secret, and with no identity it fails with exit
 * 18 and nothing secret in the output.
 */

import assert from "node:assert/strict";
import { initVault } from "../src/hecate.ts";
import { startAzureDouble } from "./support/azure_double.ts";
import { startTdsDouble } from "./support/tds_double.ts";
import { closedPort, runHecate } from "./support/cli.ts";

const MASTER = "master password for azure token modes";
const TENANT = "tenant-a";
const CLIENT = "client-a";
const CLIENT_SECRET = "canary-azure-sql-client-secret";
const SQL = "https://database.windows.net";

Deno.test("token modes default and managed-identity log in to the SQL Server double with chain tokens", async () => {
  await using db = await startTdsDouble({ tokens: [] });
  const valid: string[] = [];
  await using azure = startAzureDouble({
    tenant: TENANT,
    clients: { [CLIENT]: { secret: CLIENT_SECRET } },
    secrets: {},
    resources: [SQL],
    onIssue: (tok, resource) => {
      if (resource === SQL) valid.push(tok);
      db.setTokens([...valid]);
    },
  });
  db.answer("select 1 as one", {
    sets: [{ columns: [{ name: "one", type: "int" }], rows: [[1]] }],
  });
  const dir = await Deno.makeTempDir({ prefix: "hecate-aztok-" });
  const home = `${dir}/home`;
  const pwFile = `${dir}/pw`;
  await Deno.writeTextFile(pwFile, MASTER, { mode: 0o600 });
  await initVault({ home, password: MASTER, kdfIterations: 600_000 });
  const base = { HECATE_PASSWORD_FILE: pwFile, HOME: dir, PATH: `${dir}/nobin` };
  const run = (args: string[], env: Record<string, string>) =>
    runHecate(args, { home, env: { ...base, ...env } });
  const common = [
    "--engine",
    "mssql",
    "--host",
    "127.0.0.1",
    "--port",
    String(db.port),
    "--tls",
    "disable",
    "--auth",
    "token",
  ];
  try {
    for (const mode of ["default", "managed-identity"]) {
      const add = await run(["server", "add", mode, ...common, "--token-mode", mode], {});
      assert.equal(add.code, 0, add.stderr);
    }
    const secretEnv = {
      AZURE_TENANT_ID: TENANT,
      AZURE_CLIENT_ID: CLIENT,
      AZURE_CLIENT_SECRET: CLIENT_SECRET,
      AZURE_AUTHORITY_HOST: azure.url,
      AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${closedPort()}`,
    };
    const q = await run(["query", "default", "select 1 as one", "--format", "csv"], secretEnv);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout, "one\n1\n");
    assert.equal(azure.calls.token, 1);
    // managed-identity ignores the client secret: no IMDS here, so exit 18, nothing leaked.
    const none = await run(["query", "managed-identity", "select 1 as one"], secretEnv);
    assert.equal(none.code, 18, none.stderr);
    assert.match(none.stderr, /managed identity": not found/);
    for (const t of [CLIENT_SECRET, ...azure.issued]) {
      assert.ok(!none.stderr.includes(t) && !none.stdout.includes(t));
    }
    assert.equal(azure.calls.token, 1, "the client secret was not used");
    const mi = await run(["query", "managed-identity", "select 1 as one", "--format", "csv"], {
      AZURE_POD_IDENTITY_AUTHORITY_HOST: azure.url,
    });
    assert.equal(mi.code, 0, mi.stderr);
    assert.equal(mi.stdout, "one\n1\n");
    assert.equal(azure.calls.imds, 1);
    assert.deepEqual(db.logins.map((l) => [l.method, l.ok]), [["token", true], ["token", true]]);
    const trail = await Deno.readTextFile(`${home}/audit.jsonl`);
    for (const t of [CLIENT_SECRET, ...azure.issued]) assert.ok(!trail.includes(t));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
