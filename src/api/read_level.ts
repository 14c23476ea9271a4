/**
 * The `read` access level of an API key: every database connection a vault opened with such a key
 * makes is made read-only before anything else runs on it (the gateway, `hecate query`, the
 * library alike). This is a guard against mistakes, not a boundary on every engine: a statement
 * can change the session setting back on PostgreSQL and MySQL (docs/SECURITY.md, "HTTP gateway",
 * "Access level"); a read-only database login is the real enforcement.
 *
 * @module
 */

import type { DbConnection } from "../db/driver.ts";
import { HecateError } from "../errors.ts";
import type { ScopedVault } from "../vault/scoped.ts";
import type { UnlockedVault } from "../vault/vault.ts";

/** The statement that makes a session read-only, per engine. */
const READ_ONLY: Readonly<Record<string, string>> = {
  postgres: "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
  mysql: "SET SESSION TRANSACTION READ ONLY",
  sqlite: "PRAGMA query_only = ON",
};

/**
 * SQL Server has no session setting: the login asks ApplicationIntent=ReadOnly (a readable
 * secondary of an availability group is then chosen, where writes fail), and this check refuses
 * a session where the server would still take writes: a database that is not read-only AND a login
 * holding a database-wide write permission (INSERT, UPDATE, DELETE, ALTER, EXECUTE; sysadmin and
 * db_owner have them all). Grants on single objects are not seen (docs/SECURITY.md).
 */
export const MSSQL_READ_CHECK = "SELECT CAST(DATABASEPROPERTYEX(DB_NAME(), 'Updateability') " +
  "AS nvarchar(20)) AS updateability, HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'INSERT') " +
  "+ HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'UPDATE') " +
  "+ HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'DELETE') " +
  "+ HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'ALTER') " +
  "+ HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'EXECUTE') AS write_perms";

/**
 * Whether a vault state is an API key's with the `read` level (keys made before levels: write).
 *
 * @param state The open vault's state.
 * @returns True when its connections must be read-only.
 */
export function isReadLevel(state: UnlockedVault | ScopedVault): boolean {
  return "keyId" in state && state.policy?.level === "read";
}

async function firstRow(conn: DbConnection, sql: string): Promise<unknown[] | undefined> {
  let first: unknown[] | undefined;
  for await (const set of conn.query(sql, [], { mode: "text" })) {
    for await (const row of set.rows) first ??= row;
  }
  return first;
}

/**
 * Makes a fresh connection's session read-only (PostgreSQL, MySQL/MariaDB, SQLite), or checks
 * that a SQL Server session opened with ApplicationIntent=ReadOnly cannot write.
 *
 * @param conn The driver connection, before any statement of the caller.
 * @param engine Its engine.
 * @throws {HecateError} `key_not_allowed` when the session cannot be made or shown read-only.
 */
export async function makeReadOnly(conn: DbConnection, engine: string): Promise<void> {
  if (engine === "mssql") {
    const row = await firstRow(conn, MSSQL_READ_CHECK);
    const updateability = String(row?.[0] ?? "");
    const writePerms = Number(row?.[1] ?? 1);
    if (updateability !== "READ_ONLY" && writePerms !== 0) {
      throw new HecateError(
        "key_not_allowed",
        "A read-level key needs a SQL Server login without write permissions here (or a read-only database)",
        {
          hint: "give the profile a login with only db_datareader, or use a key with --level write",
        },
      );
    }
    return;
  }
  const sql = READ_ONLY[engine];
  if (!sql) {
    throw new HecateError(
      "key_not_allowed",
      `A read-level key cannot open a ${engine} profile: no read-only session setting`,
      { hint: "use a key with --level write and a read-only database login" },
    );
  }
  await firstRow(conn, sql);
}
