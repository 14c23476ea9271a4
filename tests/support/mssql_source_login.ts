/**
 * Logs in to the TDS test double through Hecate's SQL Server driver, from source, and reports
 * which modules of the Azure identity packages the Node layer's module cache holds afterwards:
 * tests/mssql_bundle_test.ts runs it in a fresh process. Environment: MSSQL_PORT, and MSSQL_USER
 * + MSSQL_PASSWORD (SQL login) or MSSQL_TOKEN (access token). Prints one JSON line.
 */

import { createRequire } from "node:module";
import { mssqlDriver } from "../../src/db/mssql.ts";

const env = (name: string) => Deno.env.get(name);
const token = env("MSSQL_TOKEN");
const conn = await mssqlDriver.connect({
  engine: "mssql",
  host: "127.0.0.1",
  port: Number(env("MSSQL_PORT")),
  ...(token ? { extra: { accessToken: token } } : {
    user: env("MSSQL_USER") ?? "",
    password: env("MSSQL_PASSWORD") ?? "",
  }),
  tls: { mode: "disable" },
  connectTimeoutMs: 5000,
});
const rows: unknown[][] = [];
for await (const set of conn.query("select 6 * 7 as answer", [], { mode: "text" })) {
  for await (const r of set.rows) rows.push(r);
}
await conn.close();
const require = createRequire(import.meta.url);
const cache = require.cache as Record<string, { exports?: unknown }>;
const azure = Object.keys(cache).filter((k) => /@azure\+(identity|msal-|core-auth)/.test(k));
// What tedious's require() of the package now returns, called.
const tedious = createRequire(require.resolve("tedious"));
let call: string;
try {
  (tedious("@azure/identity") as { DefaultAzureCredential: () => unknown })
    .DefaultAzureCredential();
  call = "no error";
} catch (e) {
  call = (e as Error).message;
}
console.log(JSON.stringify({ rows, azure, call }));
