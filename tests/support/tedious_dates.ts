/**
 * A bare tedious client that sends `date` and `datetime` parameters, the only tedious paths that
 * use `@js-joda/core`, which the bundle (scripts/bundle.ts, `deferJsJoda`) loads on first use.
 * tests/mssql_bundle_test.ts bundles it like Hecate and runs it against the TDS test double.
 * Environment: MSSQL_PORT, MSSQL_USER, MSSQL_PASSWORD. Prints `ok` when the statement ran.
 */

import { Connection, Request, TYPES } from "tedious";

const conn = new Connection({
  server: "127.0.0.1",
  authentication: {
    type: "default",
    options: {
      userName: Deno.env.get("MSSQL_USER") ?? "",
      password: Deno.env.get("MSSQL_PASSWORD") ?? "",
    },
  },
  options: { port: Number(Deno.env.get("MSSQL_PORT")), encrypt: false, useUTC: true },
});
await new Promise<void>((resolve, reject) => conn.connect((e) => e ? reject(e) : resolve()));
await new Promise<void>((resolve, reject) => {
  const request = new Request("select @d as d, @t as t", (e) => e ? reject(e) : resolve());
  request.addParameter("d", TYPES.Date, new Date(Date.UTC(2024, 0, 2)));
  request.addParameter("t", TYPES.DateTime, new Date(Date.UTC(2023, 11, 31, 23, 59, 58, 500)));
  conn.execSql(request);
});
conn.close();
console.log("ok");
