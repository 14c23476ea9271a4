/**
 * The `read` access level outside the gateway: `hecate query` run with a key made by
 * `hecate apikey create --level read` gets a read-only session on the real server, so a write
 * through the CLI is refused by PostgreSQL, MariaDB and SQLite (exit 7, query_failed) while a read
 * runs and a `--level write` key's write lands. The server's own tables are the evidence.
 */

import assert from "node:assert/strict";
import { type CliRun, passwordFile, runHecate, vaultWith, withHome } from "./support/access.ts";
import { startMariadb } from "./support/mariadb.ts";
import { pgProfile, startPostgres } from "./support/postgres.ts";

const QUERY_FAILED = 7;

/** Creates keys with the CLI, as the owner would; returns the key text printed once. */
async function createKey(home: string, env: Record<string, string>, name: string, level: string) {
  const r = await runHecate(
    ["--home", home, "apikey", "create", name, "--server", "db", "--level", level],
    { env },
  );
  assert.equal(r.code, 0, r.stderr);
  const key = r.stdout.match(/hcx_[A-Za-z0-9_-]+/)?.[0];
  assert.ok(key, "the key is printed");
  return key;
}

function query(home: string, key: string, sql: string): Promise<CliRun> {
  return runHecate(["--home", home, "query", "db", sql], { env: { HECATE_API_KEY: key } });
}

async function attack(home: string, insert: (n: number) => string, count: string): Promise<void> {
  const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
  const reader = await createKey(home, env, "reader", "read");
  const writer = await createKey(home, env, "writer", "write");
  // The holder of a read key tries to write through the CLI.
  const refused = await query(home, reader, insert(1));
  assert.equal(refused.code, QUERY_FAILED, refused.stderr);
  assert.match(refused.stderr, /read[- ]?only/i);
  assert.equal(refused.stderr.trim().split("\n").length, 1, "one line: " + refused.stderr);
  const read = await query(home, reader, count);
  assert.equal(read.code, 0, read.stderr);
  const wrote = await query(home, writer, insert(2));
  assert.equal(wrote.code, 0, wrote.stderr);
}

Deno.test("hecate query with a read-level key: PostgreSQL refuses the INSERT", async () => {
  await using pg = await startPostgres();
  await pg.psql(`create table t (n int); grant all on t to ${pg.user};`);
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.profiles.add(pgProfile(pg, "db"));
    await vault.close();
    await attack(home, (n) => `insert into t values (${n})`, "select count(*) from t");
  });
  assert.equal((await pg.psql("select coalesce(string_agg(n::text, ','), '') from t")).trim(), "2");
});

Deno.test("hecate query with a read-level key: MariaDB refuses the INSERT", async () => {
  await using db = await startMariadb();
  await db.sql("create table t (n int)");
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.profiles.add({
      name: "db",
      engine: "mysql",
      host: db.host,
      port: db.port,
      database: db.database,
      user: db.user,
      tls: { mode: "disable" },
      secrets: { password: { value: db.password } },
    });
    await vault.close();
    await attack(home, (n) => `insert into t values (${n})`, "select count(*) from t");
  });
  assert.equal((await db.sql("select group_concat(n) from t")).trim(), "2");
});

Deno.test("hecate query with a read-level key: SQLite refuses the write (query_only)", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["db"]);
    await vault.close();
    await attack(home, (n) => `create table t${n} (n int)`, "select 1");
    const tables = await runHecate(
      ["--home", home, "query", "db", "select name from sqlite_master order by name"],
      { env: { HECATE_PASSWORD_FILE: await passwordFile(home) } },
    );
    assert.equal(tables.code, 0, tables.stderr);
    assert.match(tables.stdout, /t2/);
    assert.doesNotMatch(tables.stdout, /t1/);
  });
});
