/**
 * Integration tests for the MySQL/MariaDB driver against a private MariaDB server
 * (tests/support/mariadb.ts). Run: NO_COLOR=1 scripts/deno.sh test -A tests/mysql_driver_test.ts
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mysqlDriver } from "../src/db/mysql.ts";
import type { ConnectSettings, DbConnection, QueryOptions, ResultSet } from "../src/db/driver.ts";
import { Decimal, JsonText } from "../src/db/value.ts";
import { HecateError } from "../src/errors.ts";
import { type MariadbServer, startMariadb } from "./support/mariadb.ts";
import { hecateError } from "./support/hecate_error.ts";

function settingsFor(db: MariadbServer, over: Partial<ConnectSettings> = {}): ConnectSettings {
  return {
    engine: "mysql",
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    password: db.password,
    tls: { mode: "disable" },
    connectTimeoutMs: 5000,
    ...over,
  };
}

interface Collected {
  set: ResultSet;
  rows: unknown[][];
}

/** Runs a statement and collects every result set. */
async function sets(
  conn: DbConnection,
  sql: string,
  params: unknown[] = [],
  options: QueryOptions = {},
): Promise<Collected[]> {
  const out: Collected[] = [];
  for await (const set of conn.query(sql, params, options)) {
    const rows: unknown[][] = [];
    for await (const row of set.rows) rows.push(row);
    out.push({ set, rows });
  }
  return out;
}

/** Runs a statement and collects its only result set. */
async function all(
  conn: DbConnection,
  sql: string,
  params: unknown[] = [],
  options: QueryOptions = {},
): Promise<Collected> {
  const out = await sets(conn, sql, params, options);
  assert.equal(out.length, 1, `expected one result set, got ${out.length}`);
  return out[0]!;
}

/** One row of `mariadb --batch` output, unescaped (`\t`, `\n`, `\\`, `\0`), NULL as null. */
function parseBatchLine(line: string): (string | null)[] {
  return line.split("\t").map((f) =>
    f === "NULL"
      ? null
      : f.replace(/\\(.)/g, (_, c: string) => ({ t: "\t", n: "\n", "0": "\0", "\\": "\\" })[c] ?? c)
  );
}

const TABLE = `create table vals (
  id int primary key,
  big bigint, ubig bigint unsigned, small smallint, tiny tinyint(1),
  dec38 decimal(38,10), f float, d double, f2 float(7,2),
  dt datetime(6), ts timestamp(3) null, dd date, tm time(3), yr year,
  txt varchar(100), lat char(3) character set latin1, en enum('x','y'), st set('a','b'),
  bin blob, vb varbinary(8), bits bit(10), js json
)`;

const ROW1 = `insert into vals values (1,
  9223372036854775807, 18446744073709551615, -32768, 1,
  1234567890123456789012345678.0123456789, 1.1, 0.30000000000000004, 3.14159,
  '2024-01-02 03:04:05.123456', '2024-06-30 23:59:59.5', '2024-02-29', '-838:59:59.5', 2024,
  'héllo "wörld", 🌍 世界\\nline2\\ttab\\\\', 'é', 'y', 'a,b',
  x'00ff0001', x'', b'1000000001', '{"a": [1, 2], "b": null}')`;

const ROW2 = "insert into vals (id) values (2)";

Deno.test("mysql driver against a real MariaDB server", async (t) => {
  const db = await startMariadb();
  const conn = await mysqlDriver.connect(settingsFor(db));
  try {
    await t.step("connect, ping, session pinned to UTC and utf8mb4", async () => {
      await conn.ping();
      const { rows, set } = await all(
        conn,
        "select @@session.time_zone, current_user(), @@character_set_results, database()",
      );
      assert.deepEqual(set.columns.map((c) => c.type), [
        "varchar",
        "varchar",
        "varchar",
        "varchar",
      ]);
      assert.deepEqual(rows, [["+00:00", `${db.user}@%`, "utf8mb4", db.database]]);
    });

    await t.step("typed values", async () => {
      await all(conn, TABLE);
      await all(conn, ROW1);
      await all(conn, ROW2);
      const { set, rows } = await all(conn, "select * from vals order by id");
      assert.deepEqual(set.columns.map((c) => `${c.name}:${c.type}`), [
        "id:int",
        "big:bigint",
        "ubig:bigint unsigned",
        "small:smallint",
        "tiny:tinyint",
        "dec38:decimal",
        "f:float",
        "d:double",
        "f2:float",
        "dt:datetime",
        "ts:timestamp",
        "dd:date",
        "tm:time",
        "yr:year",
        "txt:varchar",
        "lat:char",
        "en:enum",
        "st:set",
        "bin:blob",
        "vb:varbinary",
        "bits:bit",
        "js:json",
      ]);
      assert.deepEqual(rows[0], [
        1,
        9223372036854775807n,
        18446744073709551615n,
        -32768,
        1,
        new Decimal("1234567890123456789012345678.0123456789"),
        1.1,
        0.30000000000000004,
        3.14,
        "2024-01-02T03:04:05.123456",
        "2024-06-30T23:59:59.500",
        "2024-02-29",
        "-838:59:59.500",
        2024,
        'héllo "wörld", 🌍 世界\nline2\ttab\\',
        "é",
        "y",
        "a,b",
        new Uint8Array([0, 255, 0, 1]),
        new Uint8Array([]),
        513,
        new JsonText('{"a": [1, 2], "b": null}'),
      ]);
      assert.deepEqual(rows[1], [2, ...new Array(21).fill(null)]);
      // Small BIGINT values are plain numbers; only those beyond 2^53 are bigint.
      const counts = await all(conn, "select count(*), cast(9007199254740993 as signed) from vals");
      assert.deepEqual(counts.rows, [[2, 9007199254740993n]]);
    });

    await t.step("the same values through parameters (binary protocol)", async () => {
      const plain = await all(conn, "select * from vals order by id");
      const prepared = await all(conn, "select * from vals where id > ? order by id", [0]);
      assert.deepEqual(prepared.set.columns, plain.set.columns);
      assert.deepEqual(prepared.rows, plain.rows);
      const textPlain = await all(conn, "select * from vals order by id", [], { mode: "text" });
      const textPrepared = await all(conn, "select * from vals where id > ? order by id", [0], {
        mode: "text",
      });
      assert.deepEqual(textPrepared.rows, textPlain.rows);
    });

    await t.step("typed parameters round trip into columns", async () => {
      const params = [
        3,
        -9223372036854775808n,
        18446744073709551615n,
        7,
        0,
        new Decimal("-0.0000000001"),
        0.5,
        1e300,
        2.5,
        "1999-12-31 23:59:59.999999",
        new Date(Date.UTC(2000, 0, 1, 0, 0, 0, 1)),
        "2000-01-01",
        "12:00:00",
        1999,
        "zażółć ✓",
        "ü",
        "x",
        "b",
        new Uint8Array([0, 0, 1, 0, 255]),
        new Uint8Array([1]),
        1023,
        new JsonText('{"k":[true,null]}'),
      ];
      const ins = await all(
        conn,
        `insert into vals values (${params.map(() => "?").join(",")})`,
        params,
      );
      assert.equal(ins.set.columns.length, 0);
      assert.equal(ins.set.rowCount(), 1);
      const { rows } = await all(conn, "select * from vals where id = ?", [3]);
      assert.deepEqual(rows[0], [
        3,
        -9223372036854775808n,
        18446744073709551615n,
        7,
        0,
        new Decimal("-0.0000000001"),
        0.5,
        1e300,
        2.5,
        "1999-12-31T23:59:59.999999",
        "2000-01-01T00:00:00.001",
        "2000-01-01",
        "12:00:00.000",
        1999,
        "zażółć ✓",
        "ü",
        "x",
        "b",
        new Uint8Array([0, 0, 1, 0, 255]),
        new Uint8Array([1]),
        1023,
        new JsonText('{"k":[true,null]}'), // MariaDB keeps JSON text as written
      ]);
    });

    await t.step("text mode is what mariadb --batch prints", async () => {
      const hexCols = new Set(["bin", "vb"]);
      const { set, rows } = await all(conn, "select * from vals order by id", [], { mode: "text" });
      for (const r of rows) for (const v of r) assert.ok(v === null || typeof v === "string");
      // The client prints bytes raw: compare blobs with HEX() and BIT with +0 instead.
      const exprs = set.columns.map((c) =>
        hexCols.has(c.name)
          ? `if(${c.name} is null, null, concat('\\\\x', lower(hex(${c.name}))))`
          : c.name === "bits"
          ? "bits + 0"
          : c.name
      );
      const out = await db.sql(`select ${exprs.join(", ")} from vals order by id`);
      const expected = out.replace(/\n$/, "").split("\n").map(parseBatchLine);
      assert.deepEqual(rows, expected);
      assert.equal(rows[0]![18], "\\x00ff0001");
      assert.equal(rows[0]![19], "\\x");
    });

    await t.step(
      "FLOAT and DOUBLE text matches the server with and without parameters",
      async () => {
        await all(conn, "create table fl (i int, f float, d double, r double)");
        const values = [
          [1.1, 1e20],
          [1.23456789, 0.1 + 0.2],
          [16777217, 1e-7],
          [1e-10, 123456789012345680000],
          [3.4e38, 1e15],
          [-0.5, 1e16],
          [100000, 1234567.125],
          [123456.7, 5e-324],
          [1e7, 12345678901234567],
          [-1e-5, 1.7976931348623157e308],
          [0, -1.2345678901234567e-10],
          [12.5, 100],
        ];
        let i = 0;
        for (const [f, d] of values) {
          await all(conn, "insert into fl values (?, ?, ?, round(?, 3))", [i++, f, d, d]);
        }
        const sql = "select f, d, r, f * 2, d / 3 from fl where i >= ? order by i";
        const prepared = await all(conn, sql, [0], { mode: "text" });
        const plain = await all(conn, sql.replace("?", "0"), [], { mode: "text" });
        const batch = (await db.sql(sql.replace("?", "0"))).replace(/\n$/, "").split("\n")
          .map(parseBatchLine);
        assert.deepEqual(plain.rows, batch);
        assert.deepEqual(prepared.rows, batch);
      },
    );

    await t.step("parameters stay data", async () => {
      await all(conn, "create table t (v varchar(100))");
      const evil = "'); DROP TABLE t; --";
      const ins = await all(conn, "insert into t (v) values (?)", [evil]);
      assert.equal(ins.set.rowCount(), 1);
      const { rows } = await all(conn, "select v from t where v = ?", [evil]);
      assert.deepEqual(rows, [[evil]]);
      const q = await all(conn, "select ? as a, ? as b", ["?", "' or 1=1 -- \\"]);
      assert.deepEqual(q.rows, [["?", "' or 1=1 -- \\"]]);
      assert.equal((await db.sql("select count(*) from t")).trim(), "1");
    });

    await t.step("a literal ? in SQL without parameters is left alone", async () => {
      const { rows } = await all(conn, "select '?', 'a??b'");
      assert.deepEqual(rows, [["?", "a??b"]]);
    });

    await t.step("stored procedure: each result is its own set", async () => {
      await db.sql(
        "delimiter //\n" +
          "create procedure two_sets(in n int) begin\n" +
          "  select n as x;\n" +
          "  select 'a' as y, n + 1 as z union all select 'b', n + 2;\n" +
          "end//\n",
      );
      for (const params of [[], [5]] as unknown[][]) {
        const got = await sets(
          conn,
          params.length ? "call two_sets(?)" : "call two_sets(5)",
          params,
        );
        assert.deepEqual(got.map((s) => s.set.index), [0, 1, 2]);
        assert.deepEqual(got[0]!.set.columns, [{ name: "x", type: "int" }]);
        assert.deepEqual(got[0]!.rows, [[5]]);
        assert.deepEqual(got[1]!.set.columns.map((c) => c.name), ["y", "z"]);
        assert.deepEqual(got[1]!.rows, [["a", 6], ["b", 7]]);
        assert.equal(got[1]!.set.rowCount(), 2);
        // The procedure's own status comes last, without columns.
        assert.deepEqual(got[2]!.set.columns, []);
        assert.deepEqual(got[2]!.rows, []);
        assert.equal(got[2]!.set.rowCount(), 0);
      }
    });

    await t.step("several statements without parameters give several sets", async () => {
      const got = await sets(conn, "select 1 as a; update t set v = v; select 2 as b, 3 as c");
      assert.deepEqual(got.map((s) => s.set.columns.map((c) => c.name)), [["a"], [], ["b", "c"]]);
      assert.deepEqual(got.map((s) => s.rows), [[[1]], [], [[2, 3]]]);
      // UPDATE counts the rows it matched (CLIENT_FOUND_ROWS), as PostgreSQL does.
      assert.equal(got[1]!.set.rowCount(), 1);
    });

    await t.step("skipping a set's rows still reaches the next set", async () => {
      const seen: number[] = [];
      for await (const set of conn.query("select seq from seq_1_to_5000; select 42", [])) {
        if (set.index === 0) continue;
        for await (const r of set.rows) seen.push(r[0] as number);
      }
      assert.deepEqual(seen, [42]);
    });

    await t.step("rowCount for INSERT, UPDATE, DELETE and DDL", async () => {
      const ins = await all(conn, "insert into t (v) select seq from seq_1_to_5");
      assert.equal(ins.set.rowCount(), 5);
      const upd = await all(conn, "update t set v = concat(v, '!') where v <> ?", ["3"]);
      assert.equal(upd.set.rowCount(), 5);
      const del = await all(conn, "delete from t where v = ?", ["4!"]);
      assert.equal(del.set.rowCount(), 1);
      const ddl = await all(conn, "create index t_v on t (v)");
      assert.equal(ddl.set.rowCount(), 0);
      const sel = await all(conn, "select v from t where v like ?", ["%!"]);
      assert.equal(sel.set.rowCount(), 4);
    });

    await t.step("wrong password is auth_failed and names no password", async () => {
      const bad = "Wr0ng-Secret-Passw0rd";
      const e = await hecateError(mysqlDriver.connect(settingsFor(db, { password: bad })));
      assert.equal(e.code, "auth_failed");
      assert.ok(!e.message.includes(bad), e.message);
      assert.ok(!e.message.includes(db.password), e.message);
      assert.ok(!e.message.includes("\n"));
      assert.match(e.message, /^Login to MySQL at 127\.0\.0\.1:\d+ refused: Access denied/);
      assert.match(e.message, /error 1045, SQLSTATE 28000/);
      assert.ok(e.cause);
    });

    await t.step("a missing password is not taken from MYSQL_PWD", async () => {
      const s = settingsFor(db);
      delete s.password;
      Deno.env.set("MYSQL_PWD", db.password);
      try {
        const e = await hecateError(mysqlDriver.connect(s));
        assert.equal(e.code, "auth_failed");
        assert.match(e.message, /using password: NO/);
      } finally {
        Deno.env.delete("MYSQL_PWD");
      }
    });

    await t.step("a database the user may not use is auth_failed", async () => {
      // MariaDB answers 1044 (access denied) rather than 1049 (unknown) to a user without rights.
      const e = await hecateError(mysqlDriver.connect(settingsFor(db, { database: "no_such_db" })));
      assert.equal(e.code, "auth_failed");
      assert.match(e.message, /error 1044/);
    });

    await t.step("an unknown database is connection_failed", async () => {
      const e = await hecateError(
        mysqlDriver.connect(
          settingsFor(db, { host: db.socket, user: "root", password: "", database: "no_such_db" }),
        ),
      );
      assert.equal(e.code, "connection_failed");
      assert.match(e.message, /Unknown database 'no_such_db' \(error 1049, SQLSTATE 42000\)/);
    });

    await t.step("closed port is connection_failed", async () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      const e = await hecateError(mysqlDriver.connect(settingsFor(db, { port })));
      assert.equal(e.code, "connection_failed");
      assert.equal(e.message, `Cannot connect to MySQL at 127.0.0.1:${port}: connection refused`);
    });

    await t.step("an unknown host is connection_failed", async () => {
      const e = await hecateError(
        mysqlDriver.connect(
          settingsFor(db, { host: "no-such-host.invalid", connectTimeoutMs: 3000 }),
        ),
      );
      assert.equal(e.code, "connection_failed");
      assert.match(e.message, /^Cannot connect to MySQL at no-such-host\.invalid:\d+: /);
      assert.ok(!e.message.includes("\n"));
    });

    await t.step("TLS required by the profile but not offered by the server", async () => {
      const e = await hecateError(
        mysqlDriver.connect(settingsFor(db, { tls: { mode: "verify" } })),
      );
      assert.equal(e.code, "connection_failed");
      assert.match(e.message, /the server does not support TLS/);
      assert.ok(!e.message.includes(db.password));
    });

    await t.step("a silent server is connection_failed after the timeout", async () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const accepted: Deno.Conn[] = [];
      const loop = (async () => {
        try {
          for await (const c of l) accepted.push(c);
        } catch {
          // listener closed
        }
      })();
      try {
        const port = (l.addr as Deno.NetAddr).port;
        const e = await hecateError(
          mysqlDriver.connect(settingsFor(db, { port, connectTimeoutMs: 300 })),
        );
        assert.equal(e.code, "connection_failed");
        assert.equal(
          e.message,
          `Cannot connect to MySQL at 127.0.0.1:${port}: timed out after 300 ms`,
        );
      } finally {
        l.close();
        for (const c of accepted) c.close();
        await loop;
      }
    });

    await t.step("the unix socket works as the host", async () => {
      // root logs in over the socket without a password (the test server's set-up).
      const c = await mysqlDriver.connect(
        settingsFor(db, { host: db.socket, user: "root", password: "" }),
      );
      const { rows } = await all(c, "select current_user()");
      assert.deepEqual(rows, [["root@localhost"]]);
      await c.close();
    });

    await t.step(
      "bad SQL is query_failed with its error number; connection stays usable",
      async () => {
        const e = await hecateError(all(conn, "select * from no_such_table"));
        assert.equal(e.code, "query_failed");
        assert.equal(
          e.message,
          "Query failed: Table 'hecate_test.no_such_table' doesn't exist (error 1146, SQLSTATE 42S02)",
        );
        const syntax = await hecateError(all(conn, "selec 1"));
        assert.match(syntax.message, /error 1064, SQLSTATE 42000/);
        const prepared = await hecateError(
          all(conn, "select * from no_such_table where 1 = ?", [1]),
        );
        assert.match(prepared.message, /error 1146/);
        await conn.ping();
        assert.deepEqual((await all(conn, "select 1")).rows, [[1]]);
      },
    );

    await t.step("a failing statement after a first result set fails the query", async () => {
      const results: unknown[][] = [];
      const e = await hecateError((async () => {
        for await (const set of conn.query("select 1; select * from no_such_table", [])) {
          for await (const r of set.rows) results.push(r);
        }
      })());
      assert.deepEqual(results, [[1]]);
      assert.equal(e.code, "query_failed");
      await conn.ping();
    });

    await t.step("error messages do not echo parameter values", async () => {
      await all(conn, "create table n (i int)");
      await all(conn, "set session sql_mode = 'STRICT_ALL_TABLES'");
      const secret = "s3cr3t-param-value";
      const e = await hecateError(all(conn, "insert into n values (?)", [secret]));
      assert.equal(e.code, "query_failed");
      assert.match(e.message, /error 1366/);
      assert.ok(!e.message.includes(secret), e.message);
    });

    await t.step("streams 200,000 rows", async () => {
      let n = 0;
      let sum = 0;
      let last: unknown[] | undefined;
      for await (const set of conn.query("select seq, md5(seq) from seq_1_to_200000", [])) {
        assert.deepEqual(set.columns, [
          { name: "seq", type: "bigint unsigned" },
          { name: "md5(seq)", type: "varchar" },
        ]);
        assert.equal(set.rowCount(), null);
        for await (const row of set.rows) {
          n++;
          sum += row[0] as number;
          last = row;
        }
        assert.equal(set.rowCount(), 200000);
      }
      assert.equal(n, 200000);
      assert.equal(sum, 200000 * 200001 / 2);
      assert.deepEqual(last, [200000, createHash("md5").update("200000").digest("hex")]);
    });

    await t.step("a slow consumer holds the server back (memory stays flat)", async () => {
      // 200,000 rows of 2,000 bytes (~400 MB). While the consumer waits, the driver must stop
      // reading the socket, so the server stops sending: its Bytes_sent counter stands still.
      const bytesSent = async () =>
        Number((await db.sql("show global status like 'Bytes_sent'")).split("\t")[1]);
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      let n = 0;
      let stalled = -1;
      let sentBeforeStall = -1;
      const start = await bytesSent();
      for await (
        const set of conn.query("select seq, repeat('x', 2000) from seq_1_to_200000", [])
      ) {
        for await (const row of set.rows) {
          if (n++ === 0) {
            // Let the socket buffers fill (how long that takes depends on the machine's load):
            // wait until the counter grows by less than 64 KiB in 200 ms, at most 6 s.
            let prev = await bytesSent();
            for (let i = 0; i < 30; i++) {
              await sleep(200);
              const now = await bytesSent();
              if (now - prev < 65536) break;
              prev = now;
            }
            const before = await bytesSent();
            sentBeforeStall = before - start;
            await sleep(1000);
            stalled = await bytesSent() - before;
          }
          assert.equal((row[1] as string).length, 2000);
        }
      }
      assert.equal(n, 200000);
      // It stopped early (not because all 400 MB were sent), and stayed stopped.
      assert.ok(sentBeforeStall < 50e6, `the server sent ${sentBeforeStall} bytes before stalling`);
      assert.ok(stalled >= 0 && stalled < 5e6, `the server sent ${stalled} bytes meanwhile`);
    });

    await t.step("stopping early frees the connection", async () => {
      let n = 0;
      for await (const set of conn.query("select seq from seq_1_to_100000", [])) {
        for await (const _ of set.rows) {
          if (++n === 150) break;
        }
      }
      assert.equal(n, 150);
      assert.deepEqual((await all(conn, "select 7")).rows, [[7]]);
      // Stopping between sets too.
      for await (const set of conn.query("select 1; select 2; select 3", [])) {
        if (set.index === 1) break;
      }
      assert.deepEqual((await all(conn, "select 8")).rows, [[8]]);
    });

    await t.step("close during a stream ends it quietly, and is idempotent", async () => {
      const c2 = await mysqlDriver.connect(settingsFor(db));
      const it = c2.query("select seq from seq_1_to_1000000", [])[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.done, false);
      const rows = (first.value as ResultSet).rows[Symbol.asyncIterator]();
      assert.deepEqual((await rows.next()).value, [1]);
      await c2.close();
      await c2.close();
      try {
        while (!(await rows.next()).done) { /* drain */ }
        await it.return?.(undefined);
      } catch (e) {
        assert.ok(e instanceof HecateError);
      }
      await hecateError(c2.ping());
    });

    await t.step("a connection killed mid-stream fails the stream, never hangs", async () => {
      const c2 = await mysqlDriver.connect(settingsFor(db));
      const [[id]] = (await all(c2, "select connection_id()")).rows as [[number]];
      let n = 0;
      const e = await hecateError((async () => {
        for await (const set of c2.query("select seq from seq_1_to_1000000", [])) {
          for await (const _ of set.rows) {
            if (n++ === 0) await db.sql(`kill ${id}`);
          }
        }
      })());
      assert.ok(n < 1000000, `${n} rows`);
      assert.ok(["connection_failed", "query_failed"].includes(e.code), e.message);
      assert.ok(!e.message.includes("\n"));
      await hecateError(c2.ping());
      await c2.close();
    });

    await t.step("a second statement while rows are pending is refused", async () => {
      const it = conn.query("select seq from seq_1_to_10", [])[Symbol.asyncIterator]();
      await it.next();
      const e = await hecateError(all(conn, "select 1"));
      assert.equal(e.code, "internal");
      await it.return?.(undefined);
      assert.deepEqual((await all(conn, "select 9")).rows, [[9]]);
    });
  } finally {
    await conn.close();
    await db.stop();
  }
});
