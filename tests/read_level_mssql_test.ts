/**
 * The `read` access level on SQL Server, through `hecate query` against the TDS double: a
 * read-level key's login asks ApplicationIntent=ReadOnly (the double sees fReadOnlyIntent in the
 * LOGIN7 TypeFlags), then the session is checked; where the login can write and the database is
 * not read-only, the holder's statement is never sent (exit 28, key_not_allowed). A login without
 * write permissions, or a read-only database, passes; a write-level key logs in as before and is
 * not checked.
 */

import assert from "node:assert/strict";
import { MSSQL_READ_CHECK } from "../src/api/read_level.ts";
import { type CliRun, runHecate, vaultWith, withHome } from "./support/access.ts";
import { startTdsDouble, type TdsDouble } from "./support/tds_double.ts";

const KEY_NOT_ALLOWED = 28;
const PASSWORD = "Tds-double-pw-1";
const INSERT = "insert into t values (1)";

function check(db: TdsDouble, updateability: string, writePerms: number): void {
  db.answer(MSSQL_READ_CHECK, {
    sets: [{
      columns: [{ name: "updateability", type: "nvarchar" }, { name: "write_perms", type: "int" }],
      rows: [[updateability, writePerms]],
    }],
  });
}

Deno.test("hecate query with a read-level key on SQL Server: read-only intent at login, then a check", async () => {
  await using db = await startTdsDouble({ logins: { app: PASSWORD } });
  db.answer(INSERT, { rowCounts: [1] });
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.profiles.add({
      name: "db",
      engine: "mssql",
      host: db.host,
      port: db.port,
      user: "app",
      tls: { mode: "disable" },
      secrets: { password: { value: PASSWORD } },
    });
    const reader = await vault.apiKeys.create({
      name: "reader",
      profiles: ["db"],
      expires: null,
      policy: { level: "read" },
    });
    const writer = await vault.apiKeys.create({
      name: "writer",
      profiles: ["db"],
      expires: null,
      policy: { level: "write" },
    });
    await vault.close();
    const query = (key: string, sql: string): Promise<CliRun> =>
      runHecate(["--home", home, "query", "db", sql], { env: { HECATE_API_KEY: key } });
    const sent = (sql: string) => db.requests.filter((r) => r.sql === sql).length;

    // The attack: a read key's holder writes on a login that can write, on a primary.
    check(db, "READ_WRITE", 3);
    const refused = await query(reader, INSERT);
    assert.equal(refused.code, KEY_NOT_ALLOWED, refused.stderr);
    assert.match(refused.stderr, /read-level key needs a SQL Server login without write/);
    assert.equal(db.logins.at(-1)?.readOnlyIntent, true, "ApplicationIntent=ReadOnly at login");
    assert.equal(sent(INSERT), 0, "the statement never reached the server");
    assert.equal(sent(MSSQL_READ_CHECK), 1);

    // A login without write permissions passes the check; so does a read-only database.
    check(db, "READ_WRITE", 0);
    const allowed = await query(reader, "select 1");
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(db.logins.at(-1)?.readOnlyIntent, true);
    check(db, "READ_ONLY", 3);
    assert.equal((await query(reader, "select 1")).code, 0);

    // A write-level key: no intent, no check, the statement runs.
    check(db, "READ_WRITE", 3);
    const checks = sent(MSSQL_READ_CHECK);
    const wrote = await query(writer, INSERT);
    assert.equal(wrote.code, 0, wrote.stderr);
    assert.equal(db.logins.at(-1)?.readOnlyIntent, false);
    assert.equal(sent(MSSQL_READ_CHECK), checks);
    assert.equal(sent(INSERT), 1);
  });
});
