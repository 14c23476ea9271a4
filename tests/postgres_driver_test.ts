/**
 * Integration tests for the PostgreSQL driver against a private server (tests/support/postgres.ts).
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/postgres_driver_test.ts
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { postgresDriver } from "../src/db/postgres.ts";
import type { DbConnection, QueryOptions, ResultSet } from "../src/db/driver.ts";
import { Decimal, JsonText } from "../src/db/value.ts";
import { HecateError } from "../src/errors.ts";
import { pgSettings, startPostgres } from "./support/postgres.ts";
import { hecateError } from "./support/hecate_error.ts";

/** Runs a statement and collects its only result set. */
async function all(
  conn: DbConnection,
  sql: string,
  params: unknown[] = [],
  options: QueryOptions = {},
): Promise<{ set: ResultSet; rows: unknown[][] }> {
  const sets: { set: ResultSet; rows: unknown[][] }[] = [];
  for await (const set of conn.query(sql, params, options)) {
    const rows: unknown[][] = [];
    for await (const row of set.rows) rows.push(row);
    sets.push({ set, rows });
  }
  assert.equal(sets.length, 1);
  return sets[0]!;
}

/** RFC 4180 parser; an unquoted empty field is NULL (as COPY CSV writes it). */
function parseCsv(text: string): (string | null)[][] {
  const rows: (string | null)[][] = [];
  let row: (string | null)[] = [];
  let i = 0;
  while (i < text.length) {
    let field: string | null;
    if (text[i] === '"') {
      let v = "";
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) throw new Error("unterminated quote");
        v += text.slice(i, q);
        if (text[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      field = v;
    } else {
      let j = i;
      while (j < text.length && text[j] !== "," && text[j] !== "\n" && text[j] !== "\r") j++;
      field = j === i ? null : text.slice(i, j);
      i = j;
    }
    row.push(field);
    if (text[i] === ",") {
      i++;
    } else {
      if (text[i] === "\r") i++;
      if (text[i] === "\n") i++;
      rows.push(row);
      row = [];
    }
  }
  return rows;
}

async function copyToString(conn: DbConnection, sql: string) {
  const chunks: Uint8Array[] = [];
  const count = await conn.copyCsv!(sql, async (c) => {
    chunks.push(c.slice());
    await Promise.resolve();
  });
  const size = chunks.reduce((n, c) => n + c.length, 0);
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return { count, chunks, text: new TextDecoder().decode(all) };
}

/** Runs copyCsv with a sink that may be slow; returns the row count and the output's digest. */
async function copyDigest(conn: DbConnection, sql: string, delayMs = 0) {
  const hash = createHash("sha256");
  let bytes = 0;
  let chunks = 0;
  const count = await conn.copyCsv!(sql, async (c) => {
    hash.update(c);
    bytes += c.length;
    chunks++;
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  });
  return { count, bytes, chunks, digest: hash.digest("hex") };
}

const SAMPLE_SQL = `select
  null::text as n,
  'héllo "wörld", 🌍 世界' || chr(10) || 'line2' as t,
  9007199254740993::int8 as big,
  42::int4 as i4,
  '123456789012345678901234567890.123456789012345678901'::numeric as num,
  '2024-01-02 03:04:05.123456+00'::timestamptz as tstz,
  '2024-01-02 03:04:05.5'::timestamp as ts,
  '\\x00ff0001'::bytea as bin,
  '{"a": [1, 2], "b": null}'::json as j,
  '{"b": 1, "a": "x"}'::jsonb as jb,
  true as yes,
  false as no,
  'NaN'::float8 as nan,
  1.5::float4 as f4,
  '2024-02-29'::date as d,
  '1 day 02:00:00'::interval as iv,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as u,
  '' as empty,
  array[1,2,3] as arr`;

Deno.test("postgres driver against a real server", async (t) => {
  const pg = await startPostgres({ tls: true });
  const conn = await postgresDriver.connect(pgSettings(pg));
  try {
    await t.step("connect and ping", async () => {
      await conn.ping();
      const { rows } = await all(conn, "select current_setting('TimeZone'), current_user");
      assert.deepEqual(rows, [["UTC", pg.user]]);
      const app = await all(conn, "select current_setting('application_name')", [], {
        mode: "text",
      });
      assert.deepEqual(app.rows, [["hecate"]]);
    });

    await t.step("typed values", async () => {
      const { set, rows } = await all(conn, SAMPLE_SQL);
      assert.deepEqual(set.columns.map((c) => c.type), [
        "text",
        "text",
        "int8",
        "int4",
        "numeric",
        "timestamptz",
        "timestamp",
        "bytea",
        "json",
        "jsonb",
        "bool",
        "bool",
        "float8",
        "float4",
        "date",
        "interval",
        "uuid",
        "text",
        "_int4",
      ]);
      assert.equal(set.columns[2]!.name, "big");
      assert.equal(rows.length, 1);
      const r = rows[0]!;
      assert.equal(r[0], null);
      assert.equal(r[1], 'héllo "wörld", 🌍 世界\nline2');
      assert.equal(r[2], 9007199254740993n);
      assert.equal(r[3], 42);
      assert.ok(r[4] instanceof Decimal);
      assert.equal(String(r[4]), "123456789012345678901234567890.123456789012345678901");
      assert.equal(r[5], "2024-01-02T03:04:05.123456+00:00");
      assert.equal(r[6], "2024-01-02T03:04:05.5");
      assert.deepEqual(r[7], new Uint8Array([0, 255, 0, 1]));
      assert.ok(r[8] instanceof JsonText);
      assert.equal(String(r[8]), '{"a": [1, 2], "b": null}');
      assert.ok(r[9] instanceof JsonText);
      assert.deepEqual(JSON.parse(String(r[9])), { a: "x", b: 1 });
      assert.equal(r[10], true);
      assert.equal(r[11], false);
      assert.ok(Number.isNaN(r[12]));
      assert.equal(r[13], 1.5);
      assert.equal(r[14], "2024-02-29");
      assert.equal(r[15], "1 day 02:00:00");
      assert.equal(r[16], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
      assert.equal(r[17], "");
      assert.equal(r[18], "{1,2,3}");
    });

    await t.step("typed values round trip through a table with parameters", async () => {
      await all(
        conn,
        `create table rt (id int primary key, t text, big int8, num numeric, ts timestamptz,
          bin bytea, j jsonb, b bool)`,
      );
      const params = [
        1,
        "zażółć ✓ \u0000".replace("\u0000", ""),
        -9223372036854775808n,
        new Decimal("-0.000000000000000000000000000001"),
        "2000-01-01T00:00:00.000001Z",
        new Uint8Array([0, 0, 1, 0]),
        new JsonText('{"k":[true,null]}'),
        false,
      ];
      const ins = await all(conn, "insert into rt values ($1,$2,$3,$4,$5,$6,$7,$8)", params);
      assert.equal(ins.set.columns.length, 0);
      assert.equal(ins.set.rowCount(), 1);
      await all(conn, "insert into rt (id) values (2)");
      const { rows } = await all(conn, "select * from rt order by id");
      assert.deepEqual(rows[0], [
        1,
        "zażółć ✓ ",
        -9223372036854775808n,
        new Decimal("-0.000000000000000000000000000001"),
        "2000-01-01T00:00:00.000001+00:00",
        new Uint8Array([0, 0, 1, 0]),
        new JsonText('{"k": [true, null]}'),
        false,
      ]);
      assert.deepEqual(rows[1], [2, null, null, null, null, null, null, null]);
    });

    await t.step("text mode equals COPY CSV for the same row", async () => {
      const text = await all(conn, SAMPLE_SQL, [], { mode: "text" });
      for (const v of text.rows[0]!) assert.ok(v === null || typeof v === "string");
      const copy = await copyToString(conn, SAMPLE_SQL);
      const parsed = parseCsv(copy.text);
      assert.equal(copy.count, 1);
      assert.deepEqual(parsed[0], text.set.columns.map((c) => c.name));
      assert.deepEqual(parsed.slice(1), text.rows);
      // Spot checks of the server's text forms.
      const r = text.rows[0]!;
      assert.equal(r[5], "2024-01-02 03:04:05.123456+00");
      assert.equal(r[7], "\\x00ff0001");
      assert.equal(r[10], "t");
    });

    await t.step("parameters stay data", async () => {
      await all(conn, "create table t (v text)");
      const evil = "'); DROP TABLE t; --";
      const ins = await all(conn, "insert into t (v) values ($1)", [evil]);
      assert.equal(ins.set.rowCount(), 1);
      const { rows } = await all(conn, "select v from t where v = $1", [evil]);
      assert.deepEqual(rows, [[evil]]);
      const exists = await pg.psql("select count(*) from t");
      assert.equal(exists.trim(), "1");
    });

    await t.step("rowCount for INSERT, UPDATE and DDL", async () => {
      const ins = await all(conn, "insert into t (v) select g::text from generate_series(1, 5) g");
      assert.equal(ins.set.rowCount(), 5);
      const upd = await all(conn, "update t set v = v || '!' where v <> $1", ["3"]);
      assert.equal(upd.set.rowCount(), 5);
      const ret = await all(conn, "delete from t where v = $1 returning v", ["4!"]);
      assert.deepEqual(ret.rows, [["4!"]]);
      assert.equal(ret.set.rowCount(), 1);
      const ddl = await all(conn, "create index t_v on t (v)");
      assert.equal(ddl.set.rowCount(), 0);
    });

    await t.step("wrong password is auth_failed and names no password", async () => {
      const bad = "Wr0ng-Secret-Passw0rd";
      const e = await hecateError(postgresDriver.connect(pgSettings(pg, { password: bad })));
      assert.equal(e.code, "auth_failed");
      assert.ok(!e.message.includes(bad), e.message);
      assert.ok(!e.message.includes(pg.password), e.message);
      assert.ok(!e.message.includes("\n"));
      assert.match(e.message, /28P01/);
      assert.ok(e.cause);
    });

    await t.step("missing password is auth_failed (no ~/.pgpass fallback)", async () => {
      const noPw = pgSettings(pg);
      delete noPw.password;
      // pg would fall back to PGPASSWORD (and ~/.pgpass): the driver must not.
      const saved = Deno.env.get("PGPASSWORD");
      Deno.env.set("PGPASSWORD", pg.password);
      try {
        const e = await hecateError(postgresDriver.connect(noPw));
        assert.equal(e.code, "auth_failed");
        assert.match(e.message, /none was given/);
      } finally {
        if (saved === undefined) Deno.env.delete("PGPASSWORD");
        else Deno.env.set("PGPASSWORD", saved);
      }
    });

    await t.step("PG* environment variables are ignored", async () => {
      const vars: Record<string, string> = {
        PGUSER: "nobody",
        PGDATABASE: "no_such_db",
        PGPASSWORD: "wrong",
        PGREPLICATION: "true",
        PGOPTIONS: "-c TimeZone=Asia/Tokyo",
        PGAPPNAME: "not-hecate",
        PGSSLMODE: "require",
        PGCLIENT_ENCODING: "LATIN1",
        PGBINARY: "true",
      };
      const saved = Object.keys(vars).map((k) => [k, Deno.env.get(k)] as const);
      for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
      try {
        const c = await postgresDriver.connect(pgSettings(pg));
        const { rows } = await all(
          c,
          `select current_user, current_database(), current_setting('TimeZone'),
            current_setting('application_name'), current_setting('client_encoding'),
            (select ssl from pg_stat_ssl where pid = pg_backend_pid()), 'ü'::text`,
        );
        assert.deepEqual(rows, [[pg.user, pg.database, "UTC", "hecate", "UTF8", false, "ü"]]);
        await c.close();
      } finally {
        for (const [k, v] of saved) {
          if (v === undefined) Deno.env.delete(k);
          else Deno.env.set(k, v);
        }
      }
    });

    await t.step("unknown database is connection_failed", async () => {
      const e = await hecateError(
        postgresDriver.connect(pgSettings(pg, { database: "no_such_db" })),
      );
      assert.equal(e.code, "connection_failed");
      assert.match(e.message, /3D000/);
    });

    await t.step("closed port is connection_failed", async () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      const e = await hecateError(postgresDriver.connect(pgSettings(pg, { port })));
      assert.equal(e.code, "connection_failed");
      assert.equal(
        e.message,
        `Cannot connect to PostgreSQL at 127.0.0.1:${port}: connection refused`,
      );
    });

    await t.step("bad SQL is query_failed with SQLSTATE; connection stays usable", async () => {
      const e = await hecateError(all(conn, "select * from no_such_table"));
      assert.equal(e.code, "query_failed");
      assert.equal(
        e.message,
        'Query failed: relation "no_such_table" does not exist (SQLSTATE 42P01)',
      );
      const syntax = await hecateError(all(conn, "selec 1"));
      assert.match(syntax.message, /SQLSTATE 42601/);
      await conn.ping();
    });

    await t.step("error messages do not echo parameter values", async () => {
      const secret = "s3cr3t-param-value";
      const e = await hecateError(all(conn, "select $1::int", [secret]));
      assert.equal(e.code, "query_failed");
      assert.match(e.message, /22P02/);
      assert.ok(!e.message.includes(secret), e.message);
    });

    await t.step("streams 200,000 rows in batches", async () => {
      let n = 0;
      let sum = 0n;
      let last: unknown[] | undefined;
      for await (
        const set of conn.query(
          "select g, md5(g::text) from generate_series(1, 200000) g",
          [],
          { batchSize: 5000 },
        )
      ) {
        assert.deepEqual(set.columns, [{ name: "g", type: "int4" }, { name: "md5", type: "text" }]);
        assert.equal(set.rowCount(), null);
        for await (const row of set.rows) {
          n++;
          sum += BigInt(row[0] as number);
          last = row;
        }
        assert.equal(set.rowCount(), 200000);
      }
      assert.equal(n, 200000);
      assert.equal(sum, 200000n * 200001n / 2n);
      assert.equal(last?.[0], 200000);
    });

    await t.step("stopping early frees the connection", async () => {
      let n = 0;
      for await (
        const set of conn.query("select g from generate_series(1, 100000) g", [], {
          batchSize: 100,
        })
      ) {
        for await (const _ of set.rows) {
          if (++n === 150) break;
        }
      }
      assert.equal(n, 150);
      const { rows } = await all(conn, "select 7");
      assert.deepEqual(rows, [[7]]);
    });

    await t.step("stopping early cancels a statement that would run on for an hour", async () => {
      const before = (await all(conn, "select pg_backend_pid()")).rows[0]![0];
      // More than the server's 8 KB send buffer, so rows arrive before the hour-long sleep.
      const sql = "select md5(g::text) as v from generate_series(1, 2000) g " +
        "union all select pg_sleep(3600)::text";
      let n = 0;
      for await (const set of conn.query(sql, [], { batchSize: 10 })) {
        for await (const _ of set.rows) {
          if (++n === 5) break;
        }
      }
      assert.equal(n, 5);
      // The same session is still usable: the statement was cancelled, not waited for, and the
      // connection was not replaced.
      const after = await all(conn, "select pg_backend_pid(), 8");
      assert.deepEqual(after.rows, [[before, 8]]);
      const active = await pg.psql(
        `select count(*) from pg_stat_activity where pid = ${before} and state <> 'idle'`,
      );
      assert.equal(active.trim(), "0");
    });

    await t.step("an error at commit, after the rows, fails the statement", async () => {
      await all(
        conn,
        "create table deferred_pk (id int primary key deferrable initially deferred)",
      );
      const insert = await hecateError(all(conn, "insert into deferred_pk values (1), (1)"));
      assert.equal(insert.driverCode, "23505");
      // A statement that returns rows: they stream, then the commit fails; not reported as done.
      const seen: unknown[] = [];
      const e = await hecateError((async () => {
        for await (
          const set of conn.query(
            "with x as (insert into deferred_pk values (2), (2) returning id) select id from x",
            [],
          )
        ) {
          for await (const row of set.rows) seen.push(row[0]);
        }
      })());
      assert.equal(e.driverCode, "23505");
      assert.equal(e.code, "query_failed");
      assert.deepEqual(seen, [2, 2]);
      assert.deepEqual((await all(conn, "select count(*)::int from deferred_pk")).rows, [[0]]);
    });

    await t.step(
      "a reader that stops reading holds the server back (no unbounded buffer)",
      async () => {
        const c2 = await postgresDriver.connect(pgSettings(pg));
        try {
          const pid = (await all(c2, "select pg_backend_pid()")).rows[0]![0];
          const it = c2.query(
            "select g, md5(g::text) from generate_series(1, 1000000) g",
            [],
            { batchSize: 100 },
          )[Symbol.asyncIterator]();
          const set = (await it.next()).value as ResultSet;
          const rows = set.rows[Symbol.asyncIterator]();
          assert.deepEqual((await rows.next()).value?.[0], 1);
          // Not reading: the server must end up blocked writing to us.
          let waitEvent = "";
          for (let i = 0; i < 100 && waitEvent !== "ClientWrite"; i++) {
            await new Promise((r) => setTimeout(r, 50));
            waitEvent = (await pg.psql(
              `select coalesce(wait_event, '') from pg_stat_activity where pid = ${pid}`,
            )).trim();
          }
          assert.equal(waitEvent, "ClientWrite");
          // Reading resumes the flow and every row arrives.
          let n = 1;
          while (!(await rows.next()).done) n++;
          assert.equal(n, 1000000);
          await it.return?.(undefined);
        } finally {
          await c2.close();
        }
      },
    );

    await t.step("copyCsv writes a header and rows, in merged chunks", async () => {
      const small = await copyToString(
        conn,
        "select g as id, 'x' || g as name from generate_series(1, 3) g",
      );
      assert.equal(small.count, 3);
      assert.equal(small.text, "id,name\n1,x1\n2,x2\n3,x3\n");

      const big = await copyToString(
        conn,
        "select g, md5(g::text) from generate_series(1, 100000) g",
      );
      assert.equal(big.count, 100000);
      const lines = big.text.split("\n");
      assert.equal(lines[0], "g,md5");
      assert.equal(lines.length, 100002); // header, rows, trailing empty
      assert.ok(big.chunks.length >= 10 && big.chunks.length <= 30, `${big.chunks.length} chunks`);
      for (const c of big.chunks.slice(0, -1)) assert.equal(c.length, 256 * 1024);

      const e = await hecateError(copyToString(conn, "select * from no_such_table"));
      assert.equal(e.code, "query_failed");
      assert.match(e.message, /42P01/);
      await conn.ping();
    });

    await t.step(
      "copyCsv: an error mid-stream is query_failed; the connection is reused",
      async () => {
        const written: number[] = [];
        // About 650 KB of rows go out before row 60000 divides by zero.
        const e = await hecateError(
          conn.copyCsv!(
            "select g, md5(g::text), 1 / (60000 - g) as x from generate_series(1, 100000) g",
            async (c) => {
              written.push(c.length);
              await Promise.resolve();
            },
          ),
        );
        assert.equal(e.code, "query_failed");
        assert.equal(e.message, "Query failed: division by zero (SQLSTATE 22012)");
        assert.ok(written.length >= 1, "some data reached the sink before the error");
        // The same connection runs a query, a COPY, and fails and recovers once more.
        assert.deepEqual((await all(conn, "select 41 + 1")).rows, [[42]]);
        const again = await copyToString(conn, "select 1 as one");
        assert.equal(again.text, "one\n1\n");
        const syntax = await hecateError(copyToString(conn, "selec 1"));
        assert.match(syntax.message, /SQLSTATE 42601/);
        await conn.ping();
      },
    );

    await t.step("copyCsv: a slow sink gets every byte, in order", async () => {
      const sql = "select g, md5(g::text), repeat('x', g % 50) from generate_series(1, 200000) g";
      const fast = await copyDigest(conn, sql);
      const slow1 = await copyDigest(conn, sql, 1);
      // Slower than the server: the socket is paused and resumed many times.
      const slow2 = await copyDigest(conn, sql, 15);
      assert.equal(fast.count, 200000);
      for (const s of [slow1, slow2]) {
        assert.equal(s.count, fast.count);
        assert.equal(s.bytes, fast.bytes);
        assert.equal(s.chunks, fast.chunks);
        assert.equal(s.digest, fast.digest);
      }
      const text = new TextEncoder().encode("g,md5,repeat\n");
      assert.ok(fast.bytes > 200000 * 34 + text.length);
      await conn.ping();
    });

    await t.step("copyCsv: notices during COPY do not disturb the data", async () => {
      await all(
        conn,
        `create function noisy(i int) returns int language plpgsql as $$
          begin
            if i % 997 = 0 then raise notice 'row % %', i, repeat('n', i % 5000); end if;
            if i = 30000 then raise notice 'big %', repeat('N', 300000); end if;
            return i;
          end $$`,
      );
      const notices: string[] = [];
      const sql = (f: string) => `select ${f} as g, md5(g::text) from generate_series(1, 60000) g`;
      const plain = await copyDigest(conn, sql("g"));
      const noisy = await copyDigest(conn, sql("noisy(g)"));
      assert.equal(noisy.count, 60000);
      assert.equal(noisy.digest, plain.digest);
      assert.equal(notices.length, 0);
      await conn.ping();
    });

    await t.step("copyCsv: empty result, header only", async () => {
      const r = await copyToString(conn, "select 1 as a, 2 as b where false");
      assert.equal(r.count, 0);
      assert.equal(r.text, "a,b\n");
    });

    await t.step("copyCsv: smuggled extra statements do not wedge the connection", async () => {
      // Not reachable from the CLI (it refuses `;`), but the driver must stay in step.
      const r = await copyToString(
        conn,
        "select 1 as a) to stdout with (format csv, header true); select 2 as b; copy (select 3 as c",
      );
      assert.equal(r.text, "a\n1\nc\n3\n");
      assert.equal(r.count, 1);
      const e = await hecateError(
        copyToString(conn, "select 1 as a) to stdout; copy t from stdin; copy (select 1"),
      );
      assert.equal(e.code, "query_failed");
      assert.deepEqual((await all(conn, "select 'still here'")).rows, [["still here"]]);
    });

    await t.step("copyCsv: a failing sink closes the connection and rethrows", async () => {
      const c2 = await postgresDriver.connect(pgSettings(pg));
      const boom = new Error("disk full");
      let calls = 0;
      await assert.rejects(
        c2.copyCsv!("select g, md5(g::text) from generate_series(1, 500000) g", async () => {
          if (++calls === 2) throw boom;
          await Promise.resolve();
        }),
        (e) => e === boom,
      );
      assert.equal(calls, 2);
      const e = await hecateError(c2.ping());
      assert.match(e.message, /closed/);
      await c2.close();
      // The server side is gone too (no backend left hanging on a blocked COPY).
      for (let i = 0; i < 50; i++) {
        const n = await pg.psql(
          "select count(*) from pg_stat_activity where query like 'COPY (select g, md5%'",
        );
        if (n.trim() === "0") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const left = await pg.psql(
        "select count(*) from pg_stat_activity where query like 'COPY (select g, md5%'",
      );
      assert.equal(left.trim(), "0");
    });

    await t.step("copyCsv over TLS", async () => {
      const tls = await postgresDriver.connect(
        pgSettings(pg, { tls: { mode: "verify", caFile: pg.caFile! } }),
      );
      try {
        const sql = "select g, md5(g::text) from generate_series(1, 100000) g";
        const a = await copyDigest(tls, sql);
        const b = await copyDigest(conn, sql);
        assert.equal(a.count, 100000);
        assert.equal(a.digest, b.digest);
        await tls.ping();
      } finally {
        await tls.close();
      }
    });

    await t.step("TLS: verify with CA, insecure, and verify without CA", async () => {
      const verify = await postgresDriver.connect(
        pgSettings(pg, { tls: { mode: "verify", caFile: pg.caFile! } }),
      );
      const { rows } = await all(
        verify,
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
      );
      assert.deepEqual(rows, [[true]]);
      await verify.close();

      const insecure = await postgresDriver.connect(pgSettings(pg, { tls: { mode: "insecure" } }));
      await insecure.ping();
      await insecure.close();

      const e = await hecateError(
        postgresDriver.connect(pgSettings(pg, { tls: { mode: "verify" } })),
      );
      assert.equal(e.code, "connection_failed");
      assert.match(e.message, /TLS/);
      assert.ok(!e.message.includes("\n"));
    });

    await t.step("TLS client certificate login", async () => {
      const cc = pg.clientCert!;
      const s = pgSettings(pg, {
        user: cc.user,
        tls: { mode: "verify", caFile: pg.caFile!, certPem: cc.certPem, keyPem: cc.keyPem },
      });
      delete s.password;
      const c = await postgresDriver.connect(s);
      const { rows } = await all(c, "select current_user");
      assert.deepEqual(rows, [[cc.user]]);
      await c.close();
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
          postgresDriver.connect(pgSettings(pg, { port, connectTimeoutMs: 300 })),
        );
        assert.equal(e.code, "connection_failed");
        assert.equal(
          e.message,
          `Cannot connect to PostgreSQL at 127.0.0.1:${port}: timed out after 300 ms`,
        );
      } finally {
        l.close();
        for (const c of accepted) c.close();
        await loop;
      }
    });

    await t.step("close is idempotent and closes an open cursor", async () => {
      const c2 = await postgresDriver.connect(pgSettings(pg));
      const it = c2.query("select g from generate_series(1, 100000) g", [], { batchSize: 10 })[
        Symbol.asyncIterator
      ]();
      const first = await it.next();
      assert.equal(first.done, false);
      const rows = (first.value as ResultSet).rows[Symbol.asyncIterator]();
      assert.deepEqual((await rows.next()).value, [1]);
      await c2.close();
      await c2.close();
      // The abandoned iterators end quietly or with a HecateError, never hang.
      try {
        while (!(await rows.next()).done) { /* drain */ }
        await it.return?.(undefined);
      } catch (e) {
        assert.ok(e instanceof HecateError);
      }
      await hecateError(c2.ping());
    });
  } finally {
    await conn.close();
    await pg.stop();
  }
});
