/**
 * `hecate` end to end against a private MariaDB server (password login, no TLS on loopback):
 * every result set of a procedure in each output format, parameters, and the exit codes of the
 * failures a person meets first. Run: NO_COLOR=1 scripts/deno.sh test -A tests/cli_mysql_test.ts
 */

import assert from "node:assert/strict";
import { closedPort, MASTER_PASSWORD, runHecate, stackLines, tempDir } from "./support/cli.ts";
import { startMariadb } from "./support/mariadb.ts";

Deno.test("hecate against a real MariaDB server", async (t) => {
  await using db = await startMariadb();
  await using dir = await tempDir("hecate-cli-mysql-");
  const home = `${dir.path}/home`;
  const run = (stdin: string, ...args: string[]) =>
    runHecate(["--password-stdin", ...args], { home, stdin: `${MASTER_PASSWORD}\n${stdin}` });
  const add = (name: string, password: string, ...extra: string[]) =>
    run(
      `${password}\n`,
      "server",
      "add",
      name,
      "--engine",
      "mysql",
      "--host",
      db.host,
      "--port",
      String(db.port),
      "--user",
      db.user,
      "--database",
      db.database,
      "--tls",
      "disable",
      "--secret-stdin",
      ...extra,
    );

  const init = await runHecate(["--password-stdin", "init", "--kdf-iterations", "600000"], {
    home,
    stdin: `${MASTER_PASSWORD}\n`,
  });
  assert.equal(init.code, 0, init.stderr);
  await db.sql(
    "create table item (id int primary key, name varchar(20), price decimal(10,2));\n" +
      "insert into item values (1, 'tea', 2.50), (2, 'café', 3.00);\n" +
      "delimiter //\n" +
      "create procedure report(in n int) begin\n" +
      "  select id, name from item where id <= n order by id;\n" +
      "  select count(*) as items, sum(price) as total from item;\n" +
      "end//\n",
  );

  await t.step("server add and server test", async () => {
    const r = await add("shop", db.password);
    assert.equal(r.code, 0, r.stderr);
    const test = await run("", "server", "test", "shop");
    assert.equal(test.code, 0, test.stderr);
    assert.match(
      test.stdout,
      /^(?: {2}tls [^\n]+\n)? {2}database login via [^\n]+: ok, [\d.]+ ms\nok: shop: connected in [\d.]+ ms, round trip [\d.]+ ms\n$/,
    );
  });

  await t.step("every result set of a procedure, in csv, json and ndjson", async () => {
    const csv = await run("", "query", "shop", "call report(?)", "--param", "2", "--format", "csv");
    assert.equal(csv.code, 0, csv.stderr);
    assert.equal(csv.stdout, "id,name\n1,tea\n2,café\n\nitems,total\n2,5.50\n");
    const json = await run(
      "",
      "query",
      "shop",
      "call report(?)",
      "--param",
      "1",
      "--format",
      "json",
    );
    assert.equal(json.code, 0, json.stderr);
    assert.equal(
      json.stdout,
      '[{"id":1,"name":"tea"}]\n[{"items":2,"total":5.50}]\n',
    );
    const nd = await run("", "query", "shop", "call report(1)", "--format", "ndjson");
    assert.equal(nd.code, 0, nd.stderr);
    const lines = nd.stdout.trim().split("\n");
    assert.equal(lines[0], '{"id":1,"name":"tea"}');
    assert.match(lines[1]!, /^\{"\$set":1,"columns":\[/);
    assert.equal(lines[2], '{"items":2,"total":5.50}');
  });

  await t.step("a parameter that looks like SQL stays data", async () => {
    const evil = "x'); drop table item; --";
    const r = await run("", "query", "shop", "select ? as v", "--param", evil, "--format", "csv");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `v\n${evil}\n`);
    assert.equal((await db.sql("select count(*) from item")).trim(), "2");
  });

  await t.step("wrong password: exit 3, one line, no password", async () => {
    const wrong = "Not-The-Password-42";
    assert.equal((await add("shop-bad", wrong)).code, 0);
    const r = await run("", "query", "shop-bad", "select 1");
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      /^hecate: error: Login to MySQL at 127\.0\.0\.1:\d+ refused: Access denied/,
    );
    assert.ok(!r.stderr.includes(wrong) && !r.stderr.includes(db.password));
    assert.deepEqual(stackLines(r.stderr), []);
  });

  await t.step("closed port: exit 6; bad SQL: exit 7", async () => {
    const port = String(closedPort());
    const e = await run("", "server", "edit", "shop-bad", "--port", port);
    assert.equal(e.code, 0, e.stderr);
    const refused = await run("", "query", "shop-bad", "select 1");
    assert.equal(refused.code, 6, refused.stderr);
    assert.equal(
      refused.stderr,
      `hecate: error: Cannot connect to MySQL at 127.0.0.1:${port}: connection refused\n`,
    );
    const bad = await run("", "query", "shop", "select nope from item");
    assert.equal(bad.code, 7, bad.stderr);
    assert.match(
      bad.stderr,
      /^hecate: error: Query failed: Unknown column 'nope' in '[^']+' \(error 1054, SQLSTATE 42S22\)\n$/,
    );
  });
});
