/**
 * The `read` access level of an API key at the gateway: the query's database session is made
 * read-only before the statement runs. This is a guard against mistakes, not a boundary: a
 * statement can change session settings back on some engines (docs/SECURITY.md, "HTTP gateway");
 * a read-only database login is the real enforcement.
 *
 * @module
 */

import type { Connection } from "../hecate.ts";
import { HecateError } from "../errors.ts";

/** The statement that makes a session read-only, per engine. */
const READ_ONLY: Readonly<Record<string, string>> = {
  postgres: "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
  mysql: "SET SESSION TRANSACTION READ ONLY",
  sqlite: "PRAGMA query_only = ON",
};

/**
 * Makes `conn`'s session read-only.
 *
 * @param conn A fresh connection.
 * @throws {HecateError} `key_not_allowed` for an engine without a session setting here (SQL
 * Server: ApplicationIntent=ReadOnly is a connect option, not yet passed by the gateway).
 */
export async function readOnlySession(conn: Connection): Promise<void> {
  const sql = READ_ONLY[conn.engine];
  if (!sql) {
    throw new HecateError(
      "key_not_allowed",
      `A read-level key cannot query a ${conn.engine} profile through the gateway yet`,
      { hint: "use a key with --level write and a read-only database login" },
    );
  }
  await conn.query(sql).toArray();
}
