/**
 * SQL Server driver and providers against the TDS test double (tests/support/tds_double.ts): no
 * real SQL Server can run here. Library calls for behaviour, the real CLI for exit codes and
 * output. Run: NO_COLOR=1 scripts/deno.sh test -A tests/mssql_test.ts
 */

import assert from "node:assert/strict";
import net from "node:net";
import { mssqlDriver } from "../src/db/mssql.ts";
import type { ConnectSettings, DbConnection, QueryOptions } from "../src/db/driver.ts";
import { Decimal } from "../src/db/value.ts";
import { initVault } from "../src/hecate.ts";
import {
  type CannedAnswer,
  type CannedColumn,
  type CannedValue,
  startTdsDouble,
} from "./support/tds_double.ts";
import { ChunkedSink } from "../src/db/output/sink.ts";
import { CsvFormatter } from "../src/db/output/csv.ts";
import { makeTestCerts } from "./support/tds/certs.ts";
import { runHecate } from "./support/cli.ts";
import { hecateError as rejects } from "./support/hecate_error.ts";
import { within } from "./support/within.ts";

const SA_PASSWORD = "Sa-Secret-Pw-4411";
const NTLM = { domain: "TESTDOM", user: "alice", password: "Nt-Secret-Pw-7788" };
const TOKEN = "stored-access-token-5b1f2c";
const MASTER = "master password for mssql tests";

const TYPES_COLUMNS: CannedColumn[] = [
  { name: "i", type: "int" },
  { name: "big", type: "bigint" },
  { name: "dec", type: "decimal(18,4)" },
  { name: "s", type: "nvarchar" },
  { name: "dt2", type: "datetime2" },
  { name: "dto", type: "datetimeoffset" },
  { name: "g", type: "uniqueidentifier" },
  { name: "b", type: "bit" },
  { name: "bin", type: "varbinary" },
  { name: "n", type: "int" },
  { name: "m", type: "money" },
  { name: "f", type: "float" },
  { name: "d", type: "date" },
  { name: "r", type: "real" },
];
const TYPES_ROW: CannedValue[] = [
  -2147483648,
  9007199254740993n,
  "-12345678901.2345",
  'héllo "wörld", 🌍\nline2',
  "2024-01-02T03:04:05.1234567",
  "2024-01-02T03:04:05.1234567+02:00",
  "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
  true,
  new Uint8Array([0, 255, 16]),
  null,
  "123456789.1234",
  1.5,
  "0001-01-01",
  0.1,
];
const TYPES_SQL = "select * from all_types";

function settings(port: number, over: Partial<ConnectSettings> = {}): ConnectSettings {
  return {
    engine: "mssql",
    host: "127.0.0.1",
    port,
    user: "sa",
    password: SA_PASSWORD,
    tls: { mode: "disable" },
    connectTimeoutMs: 3000,
    ...over,
  };
}

async function sets(conn: DbConnection, sql: string, params: unknown[] = [], o: QueryOptions = {}) {
  const out: { columns: string[]; rows: unknown[][]; rowCount: number | null }[] = [];
  for await (const set of conn.query(sql, params, o)) {
    const rows: unknown[][] = [];
    for await (const r of set.rows) rows.push(r);
    out.push({ columns: set.columns.map((c) => c.name), rows, rowCount: set.rowCount() });
  }
  return out;
}

function concatBytes(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** The CSV of the streaming path (text values, the CLI's formatter), and the rows it counts. */
async function streamedCsv(conn: DbConnection, sql: string) {
  const chunks: Uint8Array[] = [];
  const sink = new ChunkedSink((c) => (chunks.push(c), Promise.resolve()));
  const formatter = new CsvFormatter(sink);
  let count = 0;
  for await (const set of conn.query(sql, [], { mode: "text" })) {
    await formatter.beginSet(set.index, set.columns);
    for await (const row of set.rows) {
      count++;
      await formatter.row(row);
    }
    if (set.columns.length === 0) count += set.rowCount() ?? 0;
    formatter.endSet();
  }
  await formatter.finish();
  return { text: new TextDecoder().decode(concatBytes(chunks)), count };
}

Deno.test("SQL Server driver against the TDS test double", async (t) => {
  await using db = await startTdsDouble({
    logins: { sa: SA_PASSWORD },
    ntlm: NTLM,
    tokens: [TOKEN],
  });
  db.answer(TYPES_SQL, { sets: [{ columns: TYPES_COLUMNS, rows: [TYPES_ROW] }] });

  await t.step("SQL login succeeds and a wrong password is refused with 18456", async () => {
    const conn = await mssqlDriver.connect(settings(db.port));
    await conn.ping();
    await conn.close();
    await conn.close();
    const e = await rejects(mssqlDriver.connect(settings(db.port, { password: "wrong-pw-123" })));
    assert.equal(e.code, "auth_failed");
    assert.match(e.message, /Login failed for user 'sa'.*\(error 18456\)/);
    assert.ok(!e.message.includes("wrong-pw-123"));
    assert.deepEqual(db.logins.map((l) => [l.method, l.ok]), [["sql", true], ["sql", false]]);
  });

  await t.step("NTLM login is verified against the password", async () => {
    const ntlm = settings(db.port, {
      user: NTLM.user,
      password: NTLM.password,
      extra: { ntlmDomain: NTLM.domain },
    });
    const conn = await mssqlDriver.connect(ntlm);
    await conn.close();
    const e = await rejects(mssqlDriver.connect({ ...ntlm, password: "not-the-password" }));
    assert.equal(e.code, "auth_failed");
    assert.deepEqual(db.logins.slice(-2).map((l) => [l.method, l.user, l.ok]), [
      ["ntlm", "TESTDOM\\alice", true],
      ["ntlm", "TESTDOM\\alice", false],
    ]);
  });

  await t.step("an access token logs in through FEDAUTH; a wrong one is refused", async () => {
    const tok = settings(db.port, { extra: { accessToken: TOKEN } });
    delete tok.user;
    delete tok.password;
    const conn = await mssqlDriver.connect(tok);
    await conn.close();
    const e = await rejects(mssqlDriver.connect({ ...tok, extra: { accessToken: "nope-token" } }));
    assert.equal(e.code, "auth_failed");
    assert.ok(!e.message.includes("nope-token"));
    assert.deepEqual(db.logins.slice(-2).map((l) => [l.method, l.ok]), [
      ["token", true],
      ["token", false],
    ]);
  });

  const conn = await mssqlDriver.connect(settings(db.port));
  try {
    await t.step("typed values keep their types and exact digits", async () => {
      const [set] = await sets(conn, TYPES_SQL);
      const row = set!.rows[0]!;
      assert.equal(row[0], -2147483648);
      assert.equal(row[1], 9007199254740993n);
      assert.ok(row[2] instanceof Decimal);
      assert.equal(String(row[2]), "-12345678901.2345");
      assert.equal(row[3], 'héllo "wörld", 🌍\nline2');
      assert.equal(row[4], "2024-01-02T03:04:05.1234567");
      // tedious delivers the UTC instant of a datetimeoffset: same moment, written in UTC.
      assert.equal(row[5], "2024-01-02T01:04:05.1234567+00:00");
      assert.equal(row[6], "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11");
      assert.equal(row[7], true);
      assert.deepEqual(row[8], new Uint8Array([0, 255, 16]));
      assert.equal(row[9], null);
      assert.equal(String(row[10]), "123456789.1234");
      assert.equal(row[11], 1.5);
      assert.equal(row[12], "0001-01-01");
      assert.equal(row[13], 0.1);
    });

    await t.step("text values are what sqlcmd prints", async () => {
      const [set] = await sets(conn, TYPES_SQL, [], { mode: "text" });
      assert.deepEqual(set!.rows[0], [
        "-2147483648",
        "9007199254740993",
        "-12345678901.2345",
        'héllo "wörld", 🌍\nline2',
        "2024-01-02 03:04:05.1234567",
        "2024-01-02 01:04:05.1234567 +00:00",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "1",
        "0x00FF10",
        null,
        "123456789.1234",
        "1.5",
        "0001-01-01",
        "0.1",
      ]);
    });

    await t.step(
      "parameters travel as sp_executesql RPC parameters, never in the text",
      async () => {
        const sql = "select name from users where name = @p1 and id = @p2 and big = @p3";
        db.answer(sql, {
          sets: [{ columns: [{ name: "name", type: "nvarchar" }], rows: [["x"]] }],
        });
        const evil = "O'Brien'; drop table users --";
        const bytes = new Uint8Array([1, 2, 3]);
        const [set] = await sets(conn, sql, [evil, 42, 5_000_000_000n, 2.5, false, null, bytes]);
        assert.deepEqual(set!.rows, [["x"]]);
        const req = db.requests.at(-1)!;
        assert.equal(req.kind, "rpc");
        assert.equal(req.proc, "sp_executesql");
        assert.equal(req.sql, sql);
        assert.ok(!req.sql.includes("O'Brien"));
        assert.deepEqual(req.params.map((p) => [p.name, p.type, p.value]), [
          ["@p1", "nvarchar", evil],
          ["@p2", "int", 42],
          ["@p3", "bigint", 5_000_000_000n],
          ["@p4", "float", 2.5],
          ["@p5", "bit", false],
          ["@p6", "nvarchar", null],
          ["@p7", "varbinary", bytes],
        ]);
        assert.match(req.declarations ?? "", /^@p1 nvarchar\(\d+\), @p2 int, @p3 bigint/);
      },
    );

    await t.step("several result sets and row counts of statements without results", async () => {
      const sql = "insert t values (1); select a from t; select b, c from u; update t set a = 2";
      db.answer(sql, {
        sets: [
          { columns: [{ name: "a", type: "int" }], rows: [[1], [2]] },
          { columns: [{ name: "b", type: "nvarchar" }, { name: "c", type: "bit" }], rows: [] },
        ],
        rowCounts: [3],
      });
      assert.deepEqual(await sets(conn, sql), [
        { columns: ["a"], rows: [[1], [2]], rowCount: 2 },
        { columns: ["b", "c"], rows: [], rowCount: 0 },
        { columns: [], rows: [], rowCount: 3 },
      ]);
      // SET NOCOUNT ON: no counts from the server, so the rows read are the count.
      const quiet = "set nocount on; select a from t; select a from t";
      const set = { columns: [{ name: "a", type: "int" as const }], rows: [[1], [2], [3]] };
      db.answer(quiet, { sets: [set, set], noCount: true });
      assert.deepEqual((await sets(conn, quiet)).map((s) => s.rowCount), [3, 3]);
    });

    await t.step(
      "a server error is query_failed with its number; parameters are masked",
      async () => {
        const sql = "select * from nowhere where x = @p1";
        db.answer(sql, {
          error: { number: 208, message: "Invalid object name 'nowhere' near 'value-of-param-77'" },
        });
        const e = await rejects(sets(conn, sql, ["value-of-param-77"]));
        assert.equal(e.code, "query_failed");
        assert.equal(
          e.message,
          "Query failed: Invalid object name 'nowhere' near '***' (error 208)",
        );
        // A value tedious cannot send is a query error too, found before anything is sent.
        const sent = db.requests.length;
        const bad = await rejects(sets(conn, sql, [2n ** 70n]));
        assert.equal(bad.code, "query_failed");
        assert.match(bad.message, /^Query failed: Validation failed for parameter 'p1'/);
        assert.equal(db.requests.length, sent);
        // The connection is still usable after a statement error.
        await conn.ping();
      },
    );

    await t.step(
      "rows left unread are skipped: the next set and the counts are right",
      async () => {
        const sql = "select a from t; select b from u";
        db.answer(sql, {
          sets: [
            { columns: [{ name: "a", type: "int" }], rows: [[1], [2], [3]] },
            { columns: [{ name: "b", type: "nvarchar" }], rows: [["x"], ["y"]] },
          ],
        });
        const seen: { columns: string[]; rows: unknown[][]; count: () => number | null }[] = [];
        for await (const set of conn.query(sql, [], { mode: "text" })) {
          const rows: unknown[][] = [];
          for await (const r of set.rows) {
            rows.push(r);
            if (set.index === 0) break; // only the first row of the first set
          }
          // Once left, the iterator stays finished.
          assert.deepEqual(await set.rows[Symbol.asyncIterator]().next(), {
            done: true,
            value: undefined,
          });
          seen.push({ columns: set.columns.map((c) => c.name), rows, count: set.rowCount });
        }
        assert.deepEqual(seen.map((s) => [s.columns, s.rows, s.count()]), [
          [["a"], [["1"]], 3],
          [["b"], [["x"], ["y"]], 2],
        ]);
        // next() called again before the last call settled: rows come in order, none lost,
        // nothing hangs (the iterator wakes every waiting call, as an async generator queues them).
        const many = "select n from counted";
        db.answer(many, {
          sets: [{
            columns: [{ name: "n", type: "int" }],
            rows: function* () {
              for (let i = 0; i < 20_000; i++) yield [i];
            },
          }],
        });
        const got: unknown[] = [];
        await within(
          (async () => {
            for await (const set of conn.query(many, [], { mode: "text" })) {
              const it = set.rows[Symbol.asyncIterator]();
              for (;;) {
                const four = await Promise.all([it.next(), it.next(), it.next(), it.next()]);
                for (const r of four) if (!r.done) got.push(r.value[0]);
                if (four.some((r) => r.done)) break;
              }
            }
          })(),
          20_000,
        );
        assert.equal(got.length, 20_000);
        assert.ok(got.every((v, i) => v === String(i)));
        await conn.ping();
      },
    );

    await t.step("breaking off sends ATTENTION and the connection stays usable", async () => {
      const sql = "select many rows";
      db.answer(sql, {
        sets: [{
          columns: [{ name: "n", type: "int" }, { name: "pad", type: "nvarchar" }],
          rows: function* () {
            for (let i = 0; i < 1_000_000; i++) yield [i, "x".repeat(200)];
          },
        }],
      });
      const before = db.attentions;
      let seen = 0;
      for await (const set of conn.query(sql, [])) {
        for await (const _ of set.rows) {
          if (++seen === 10) break;
        }
        break;
      }
      assert.equal(seen, 10);
      assert.equal(db.attentions, before + 1);
      const [one] = await sets(conn, TYPES_SQL);
      assert.equal(one!.rows.length, 1);
    });

    await t.step("a slow reader pauses the stream instead of buffering it", async () => {
      const sql = "select big stream";
      const total = 100_000;
      db.answer(sql, {
        sets: [{
          columns: [{ name: "n", type: "int" }, { name: "pad", type: "nvarchar" }],
          rows: function* () {
            for (let i = 0; i < total; i++) yield [i, "y".repeat(200)];
          },
        }],
      });
      const start = db.rowsSent;
      let count = 0;
      for await (const set of conn.query(sql, [])) {
        for await (const _ of set.rows) {
          if (++count === 1) {
            await new Promise((r) => setTimeout(r, 400));
            // About 40 MB would be sent without backpressure; buffers hold about 5 MB (11k rows).
            assert.ok(db.rowsSent - start < 30_000, `sent ${db.rowsSent - start} rows`);
          }
        }
      }
      assert.equal(count, total);
    });

    await t.step("copyCsv writes what the streaming path and the CSV formatter write", async () => {
      const cases: [string, CannedAnswer][] = [
        ["csv: all types", { sets: [{ columns: TYPES_COLUMNS, rows: [TYPES_ROW, TYPES_ROW] }] }],
        ["csv: sets and counts", {
          sets: [
            { columns: [{ name: "a", type: "int" }], rows: [[1], [null], [3]] },
            { columns: [{ name: 'b,"q"', type: "nvarchar" }], rows: [["\\."], [""], [null]] },
            { columns: [{ name: "c", type: "bit" }, { name: "d", type: "nvarchar" }], rows: [] },
          ],
          rowCounts: [5, 7],
        }],
        ["csv: counts only", { rowCounts: [4] }],
        ["csv: nocount", {
          sets: [
            { columns: [{ name: "x", type: "int" }], rows: [[1], [2]] },
            { columns: [{ name: "y", type: "int" }], rows: [[3]] },
          ],
          noCount: true,
        }],
      ];
      for (const [sql, answer] of cases) {
        db.answer(sql, answer);
        const chunks: Uint8Array[] = [];
        const n = await conn.copyCsv!(sql, (c) => (chunks.push(c), Promise.resolve()));
        const viaCopy = new TextDecoder().decode(concatBytes(chunks));
        const streamed = await streamedCsv(conn, sql);
        assert.equal(viaCopy, streamed.text, sql);
        assert.equal(n, streamed.count, sql);
      }
      db.answer("csv: broken", { error: { number: 207, message: "Invalid column name 'x'." } });
      const e = await rejects(conn.copyCsv!("csv: broken", () => Promise.resolve()));
      assert.equal(e.code, "query_failed");
      assert.match(e.message, /Invalid column name 'x'\. \(error 207\)/);
      await conn.ping();
    });

    await t.step(
      "copyCsv stops reading while the sink is slow; a failed write stops it",
      async () => {
        const sql = "select csv stream";
        const total = 100_000;
        db.answer(sql, {
          sets: [{
            columns: [{ name: "n", type: "int" }, { name: "pad", type: "nvarchar" }],
            rows: function* () {
              for (let i = 0; i < total; i++) yield [i, "z".repeat(200)];
            },
          }],
        });
        const start = db.rowsSent;
        let writes = 0;
        let bytes = 0;
        const rows = await conn.copyCsv!(sql, async (chunk) => {
          bytes += chunk.length;
          if (++writes === 1) {
            await new Promise((r) => setTimeout(r, 400));
            // About 40 MB would be sent without backpressure (see the slow reader above).
            assert.ok(db.rowsSent - start < 30_000, `sent ${db.rowsSent - start} rows`);
          }
        });
        assert.equal(rows, total);
        assert.ok(writes > 10, `${writes} writes`);
        assert.equal(
          bytes,
          "n,pad\n".length + [...Array(total).keys()].reduce(
            (sum, i) => sum + String(i).length + 202,
            0,
          ),
        );
        const full = new Error("disk full (test)");
        const attentions = db.attentions;
        const e = await conn.copyCsv!(sql, () => Promise.reject(full)).catch((x) => x);
        assert.equal(e, full);
        assert.equal(db.attentions, attentions + 1);
        const [one] = await sets(conn, TYPES_SQL);
        assert.equal(one!.rows.length, 1, "the connection is still usable");
      },
    );
  } finally {
    await conn.close();
  }

  await t.step("a closed port and a silent listener fail with connection_failed", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const refused = await rejects(mssqlDriver.connect(settings(closedPort)));
    assert.equal(refused.code, "connection_failed");
    assert.match(refused.message, /connection refused/);
    const unknown = await rejects(
      mssqlDriver.connect({ ...settings(1433), host: "nohost.invalid" }),
    );
    assert.equal(unknown.code, "connection_failed");
    assert.equal(
      unknown.message,
      "Cannot connect to SQL Server at nohost.invalid:1433: host not found",
    );

    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as net.AddressInfo).port;
    const started = Date.now();
    const e = await rejects(mssqlDriver.connect(settings(port, { connectTimeoutMs: 800 })));
    const took = Date.now() - started;
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
    assert.equal(e.code, "connection_failed");
    assert.match(e.message, /timed out after 800 ms/);
    assert.ok(took < 3000, `took ${took} ms`);
  });
});

Deno.test("SQL Server TLS against the TDS test double", async (t) => {
  const certs = await makeTestCerts();
  await using tlsDb = await startTdsDouble({
    logins: { sa: SA_PASSWORD },
    tls: { certPem: certs.serverCertPem, keyPem: certs.serverKeyPem },
  });
  await using plainDb = await startTdsDouble({ logins: { sa: SA_PASSWORD } });
  try {
    await t.step("verify with the right CA file: the login travels over TLS", async () => {
      const conn = await mssqlDriver.connect(
        settings(tlsDb.port, { tls: { mode: "verify", caFile: certs.caFile } }),
      );
      await conn.ping();
      await conn.close();
      assert.deepEqual(tlsDb.logins.at(-1), {
        method: "sql",
        user: "sa",
        ok: true,
        tls: true,
        readOnlyIntent: false,
      });
    });

    await t.step("verify against an unknown CA fails; insecure connects", async () => {
      const e = await rejects(mssqlDriver.connect(
        settings(tlsDb.port, { tls: { mode: "verify", caFile: certs.otherCaFile } }),
      ));
      assert.equal(e.code, "connection_failed");
      assert.match(e.message, /TLS/);
      const conn = await mssqlDriver.connect(settings(tlsDb.port, { tls: { mode: "insecure" } }));
      await conn.close();
      assert.equal(tlsDb.logins.at(-1)?.tls, true);
    });

    await t.step("TLS mismatches fail with connection_failed in both directions", async () => {
      const noTls = await rejects(mssqlDriver.connect(
        settings(plainDb.port, { tls: { mode: "verify", caFile: certs.caFile } }),
      ));
      assert.equal(noTls.code, "connection_failed");
      assert.match(noTls.message, /TLS/);
      const needsTls = await rejects(mssqlDriver.connect(settings(tlsDb.port)));
      assert.equal(needsTls.code, "connection_failed");
      assert.match(needsTls.message, /TLS/);
      assert.equal(plainDb.logins.length, 0);
    });

    await t.step(
      "through the CLI: --ca-file verifies; --tls insecure warns every time",
      async () => {
        tlsDb.answer("select 1 as one", {
          sets: [{ columns: [{ name: "one", type: "int" }], rows: [[1]] }],
        });
        const home = `${certs.dir}/home`;
        await Deno.writeTextFile(`${certs.dir}/pw`, MASTER, { mode: 0o600 });
        await initVault({ home, password: MASTER, kdfIterations: 600_000 });
        const env = { HECATE_PASSWORD_FILE: `${certs.dir}/pw` };
        const base = ["--engine", "mssql", "--host", "127.0.0.1", "--port", String(tlsDb.port)];
        for (
          const [name, tls] of [
            ["verified", ["--ca-file", certs.caFile]],
            ["unverified", ["--tls", "insecure"]],
          ] as const
        ) {
          const add = await runHecate(
            ["server", "add", name, ...base, ...tls, "--user", "sa", "--secret-stdin"],
            { home, env, stdin: `${SA_PASSWORD}\n` },
          );
          assert.equal(add.code, 0, add.stderr);
        }
        const ok = await runHecate(["query", "verified", "select 1 as one", "--format", "csv"], {
          home,
          env,
        });
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal(ok.stdout, "one\n1\n");
        assert.equal(ok.stderr, "");
        const warned = await runHecate([
          "query",
          "unverified",
          "select 1 as one",
          "--format",
          "csv",
        ], {
          home,
          env,
        });
        assert.equal(warned.code, 0, warned.stderr);
        assert.equal(warned.stdout, "one\n1\n");
        assert.match(warned.stderr, /TLS certificate verification is off for profile "unverified"/);
        assert.deepEqual(tlsDb.logins.slice(-2).map((l) => [l.ok, l.tls]), [[true, true], [
          true,
          true,
        ]]);
      },
    );
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("hecate CLI with SQL Server profiles", async (t) => {
  await using db = await startTdsDouble({
    logins: { sa: SA_PASSWORD },
    ntlm: NTLM,
    tokens: [TOKEN],
  });
  db.answer(TYPES_SQL, { sets: [{ columns: TYPES_COLUMNS, rows: [TYPES_ROW] }] });
  db.answer("select two sets", {
    sets: [
      { columns: [{ name: "a", type: "int" }], rows: [[1], [2]] },
      { columns: [{ name: "b", type: "nvarchar" }], rows: [["x"]] },
    ],
  });
  db.answer("select @p1 as v", {
    sets: [{ columns: [{ name: "v", type: "nvarchar" }], rows: [["echo"]] }],
  });
  db.answer("select broken", { error: { number: 207, message: "Invalid column name 'broken'." } });

  const dir = await Deno.makeTempDir({ prefix: "hecate-mssql-cli-" });
  const home = `${dir}/home`;
  const pwFile = `${dir}/pw`;
  await Deno.writeTextFile(pwFile, MASTER, { mode: 0o600 });
  await initVault({ home, password: MASTER, kdfIterations: 600_000 });
  const env = { HECATE_PASSWORD_FILE: pwFile };
  const run = (args: string[], stdin = "") => runHecate(args, { home, stdin, env });
  const common = ["--engine", "mssql", "--host", "127.0.0.1", "--port", String(db.port)];
  const noSecret = (r: { stdout: string; stderr: string }) => {
    for (const s of [SA_PASSWORD, NTLM.password, TOKEN, "wrong-password-1"]) {
      assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `secret in output`);
    }
  };

  try {
    await t.step("server add validates each method's fields (exit 17)", async () => {
      const cases: [string[], RegExp][] = [
        [["--auth", "windows", "--user", "alice"], /missing field 'domain' for auth "windows"/],
        [["--auth", "token"], /missing field 'tokenMode' for auth "token"/],
        [["--auth", "token", "--token-mode", "magic"], /unknown token mode "magic"/],
        [
          ["--auth", "token", "--token-mode", "client-secret", "--tenant-id", "t1"],
          /missing field 'clientId' for auth "token"/,
        ],
        [
          [
            "--auth",
            "token",
            "--token-mode",
            "client-certificate",
            "--tenant-id",
            "t1",
            "--client-id",
            "c1",
            "--cert-file",
            "/x.pem",
          ],
          /missing field 'keyFile' for auth "token"/,
        ],
      ];
      for (const [args, message] of cases) {
        const r = await run(["server", "add", "bad", ...common, ...args, "--secret-stdin"], "s\n");
        assert.equal(r.code, 17, r.stderr);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      }
    });

    await t.step("each method: add, then query succeeds", async () => {
      const adds: [string, string[], string][] = [
        ["sq", ["--user", "sa"], SA_PASSWORD],
        ["win", ["--auth", "windows", "--domain", NTLM.domain, "--user", NTLM.user], NTLM.password],
        ["tok", ["--auth", "token", "--token-mode", "stored"], TOKEN],
      ];
      for (const [name, args, secret] of adds) {
        const add = await run(
          ["server", "add", name, ...common, ...args, "--tls", "disable", "--secret-stdin"],
          `${secret}\n`,
        );
        assert.equal(add.code, 0, add.stderr);
        const q = await run(["query", name, "select @p1 as v", "--param", "p", "--format", "csv"]);
        assert.equal(q.code, 0, q.stderr);
        assert.equal(q.stdout, "v\necho\n");
        noSecret(q);
      }
      assert.deepEqual(db.logins.map((l) => [l.method, l.ok]), [
        ["sql", true],
        ["ntlm", true],
        ["token", true],
      ]);
      assert.deepEqual(db.requests.filter((r) => r.kind === "rpc").map((r) => r.params[0]?.value), [
        "p",
        "p",
        "p",
      ]);
    });

    await t.step("wrong secrets exit 3 with one line and no secret", async () => {
      for (
        const [name, args] of [
          ["sq-bad", ["--user", "sa"]],
          ["win-bad", ["--auth", "windows", "--domain", NTLM.domain, "--user", NTLM.user]],
          ["tok-bad", ["--auth", "token", "--token-mode", "stored"]],
        ] as const
      ) {
        const add = await run(
          ["server", "add", name, ...common, ...args, "--tls", "disable", "--secret-stdin"],
          "wrong-password-1\n",
        );
        assert.equal(add.code, 0, add.stderr);
        const q = await run(["query", name, "select 1"]);
        assert.equal(q.code, 3, q.stderr);
        assert.match(q.stderr, /^hecate: error: Login to SQL Server at 127\.0\.0\.1:\d+ refused/);
        assert.equal(q.stderr.trim().split("\n").length, 1, q.stderr);
        noSecret(q);
      }
    });

    await t.step("every type in json, ndjson and csv", async () => {
      const json = await run(["query", "sq", TYPES_SQL, "--format", "json"]);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout.replace(/9007199254740993/, '"big"')), [{
        i: -2147483648,
        big: "big",
        dec: -12345678901.2345,
        s: 'héllo "wörld", 🌍\nline2',
        dt2: "2024-01-02T03:04:05.1234567",
        dto: "2024-01-02T01:04:05.1234567+00:00",
        g: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        b: true,
        bin: "\\x00ff10",
        n: null,
        m: 123456789.1234,
        f: 1.5,
        d: "0001-01-01",
        r: 0.1,
      }]);
      assert.match(json.stdout, /"big":9007199254740993,"dec":-12345678901\.2345,/);
      const csv = await run(["query", "sq", TYPES_SQL, "--format", "csv"]);
      assert.equal(csv.code, 0, csv.stderr);
      assert.equal(
        csv.stdout,
        "i,big,dec,s,dt2,dto,g,b,bin,n,m,f,d,r\n" +
          '-2147483648,9007199254740993,-12345678901.2345,"héllo ""wörld"", 🌍\nline2",' +
          "2024-01-02 03:04:05.1234567,2024-01-02 01:04:05.1234567 +00:00," +
          "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11,1,0x00FF10,,123456789.1234,1.5,0001-01-01,0.1\n",
      );
    });

    await t.step("json and ndjson mark each result set", async () => {
      const json = await run(["query", "sq", "select two sets", "--format", "json"]);
      assert.equal(json.code, 0, json.stderr);
      assert.equal(json.stdout, '[{"a":1},\n{"a":2}]\n[{"b":"x"}]\n');
      const nd = await run(["query", "sq", "select two sets", "--format", "ndjson"]);
      assert.equal(
        nd.stdout,
        '{"a":1}\n{"a":2}\n{"$set":1,"columns":[{"name":"b","type":"nvarchar"}]}\n{"b":"x"}\n',
      );
    });

    await t.step("a 400,000-row CSV export streams in bounded memory", async () => {
      db.answer("select many rows", {
        sets: [{
          columns: [{ name: "n", type: "int" }, { name: "s", type: "nvarchar" }],
          rows: function* () {
            for (let i = 1; i <= 400_000; i++) yield [i, `row ${i}`];
          },
        }],
      });
      const out = `${dir}/many.csv`;
      // With the V8 heap capped at 32 MB, keeping the rows (or the output) in memory would end
      // in an out-of-memory crash; streaming finishes. (Uncapped, V8 lets the heap grow to about
      // 250 MB of mostly garbage before collecting, so RSS alone would not tell.)
      const r = await runHecate(
        ["query", "sq", "select many rows", "--format", "csv", "--output", out],
        { home, env: { ...env, DENO_V8_FLAGS: "--max-old-space-size=32" }, measureMemory: true },
      );
      assert.equal(r.code, 0, r.stderr);
      const text = await Deno.readTextFile(out);
      assert.ok(text.startsWith("n,s\n1,row 1\n2,row 2\n"));
      assert.ok(text.endsWith("400000,row 400000\n"));
      assert.equal(text.split("\n").length, 400_002);
      assert.ok(r.peakRssKb! < 200_000, `peak RSS ${r.peakRssKb} KiB`);
    });

    await t.step("a failing statement exits 7; a closed port exits 6", async () => {
      const q = await run(["query", "sq", "select broken"]);
      assert.equal(q.code, 7, q.stderr);
      assert.equal(
        q.stderr,
        "hecate: error: Query failed: Invalid column name 'broken'. (error 207)\n",
      );
      const probe = net.createServer();
      await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
      const port = (probe.address() as net.AddressInfo).port;
      await new Promise<void>((r) => probe.close(() => r()));
      const add = await run(
        [
          "server",
          "add",
          "gone",
          "--engine",
          "mssql",
          "--host",
          "127.0.0.1",
          "--port",
          String(port),
          "--user",
          "sa",
          "--secret-stdin",
        ],
        `${SA_PASSWORD}\n`,
      );
      assert.equal(add.code, 0, add.stderr);
      const c = await run(["query", "gone", "select 1"]);
      assert.equal(c.code, 6, c.stderr);
      assert.match(
        c.stderr,
        /^hecate: error: Cannot connect to SQL Server at .*connection refused\n$/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tedious and jose stay out of the static import graph of main.ts and mod.ts", async () => {
  for (const entry of ["main.ts", "mod.ts"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: new URL("../", import.meta.url).pathname,
      stdout: "piped",
      stderr: "null",
      env: { NO_COLOR: "1" },
    }).output();
    assert.ok(out.success);
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      roots: string[];
      modules: {
        specifier: string;
        dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
      }[];
    };
    const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
    // Walk static imports only: what every run of the program loads before doing anything.
    const seen = new Set<string>();
    const todo = [...info.roots];
    while (todo.length) {
      const spec = todo.pop()!;
      if (seen.has(spec)) continue;
      seen.add(spec);
      for (const dep of bySpecifier.get(spec)?.dependencies ?? []) {
        if (!dep.isDynamic && dep.code?.specifier) todo.push(dep.code.specifier);
      }
    }
    const heavy = [...seen].filter((s) => /npm:(tedious|jose)@/.test(s));
    assert.deepEqual(heavy, [], `${entry} loads ${heavy.join(", ")} at start-up`);
    // And the walk does reach the modules that import them lazily.
    assert.ok([...seen].some((s) => s.endsWith("/src/db/registry.ts")));
  }
});
