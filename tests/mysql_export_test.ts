/**
 * Exports from MariaDB: `copyCsv` (value bytes straight from the row packets) is byte for byte
 * what the row-by-row CSV formatter writes; `hecate query --format csv|tsv` give the values that
 * `mariadb --batch` prints (decimal, bigint, dates, blobs, NULL, utf8mb4, quotes and line breaks);
 * and a slow CSV sink holds the server back (backpressure).
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/mysql_export_test.ts
 */

import assert from "node:assert/strict";
import { mysqlDriver } from "../src/db/mysql.ts";
import type { ConnectSettings, DbConnection } from "../src/db/driver.ts";
import { ChunkedSink } from "../src/db/output/sink.ts";
import { CsvFormatter } from "../src/db/output/csv.ts";
import { TsvFormatter } from "../src/db/output/tsv.ts";
import { startMariadb } from "./support/mariadb.ts";
import { MASTER_PASSWORD, runHecate, tempDir } from "./support/cli.ts";

const TABLE = `create table ex (
  id int primary key, big bigint, ubig bigint unsigned, dec38 decimal(38,10), d double,
  dt datetime(6), dd date, tm time(3), txt varchar(100), one char(2), bin blob, bits bit(10)
)`;
const ROWS = `insert into ex values
  (1, -9223372036854775808, 18446744073709551615, -1234567890123456789012345678.0123456789,
   0.1, '2024-01-02 03:04:05.123456', '2024-02-29', '-838:59:59.5',
   'a,b "c"\\nd\\re 🌍 ünï', '\\\\.', x'00ff', b'101'),
  (2, null, null, null, null, null, null, null, '', '', x'', null),
  (3, 0, 0, 0, 1e20, '1970-01-01 00:00:00', '1000-01-01', '00:00:00', 'tab\\there', 'x', null, 0)`;

function settingsFor(db: Awaited<ReturnType<typeof startMariadb>>): ConnectSettings {
  return {
    engine: "mysql",
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    password: db.password,
    tls: { mode: "disable" },
    connectTimeoutMs: 5000,
  };
}

async function viaFormatter(conn: DbConnection, sql: string, tsv = false): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const sink = new ChunkedSink((c) => {
    chunks.push(c.slice());
    return Promise.resolve();
  });
  const f = tsv ? new TsvFormatter(sink) : new CsvFormatter(sink);
  for await (const set of conn.query(sql, [], { mode: f.mode })) {
    await f.beginSet(set.index, set.columns);
    for await (const row of set.rows) await f.row(row);
    await f.endSet();
  }
  await f.finish();
  return concat(chunks);
}

async function viaCopy(
  conn: DbConnection,
  sql: string,
  tsv = false,
): Promise<[Uint8Array, number]> {
  const chunks: Uint8Array[] = [];
  const n = await (tsv ? conn.copyTsv! : conn.copyCsv!).call(conn, sql, (c) => {
    chunks.push(c.slice());
    return Promise.resolve();
  });
  return [concat(chunks), n];
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** One row of `mariadb --batch` output, unescaped, NULL as null. */
function parseBatchLine(line: string): (string | null)[] {
  return line.split("\t").map((f) =>
    f === "NULL"
      ? null
      : f.replace(/\\(.)/g, (_, c: string) => ({ t: "\t", n: "\n", "0": "\0", "\\": "\\" })[c] ?? c)
  );
}

/** Minimal RFC 4180 reader (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): (string | null)[][] {
  const rows: (string | null)[][] = [];
  let row: (string | null)[] = [];
  let i = 0;
  while (i < text.length) {
    let field: string | null;
    if (text[i] === '"') {
      let j = i + 1;
      field = "";
      for (;;) {
        if (text[j] === '"' && text[j + 1] === '"') {
          field += '"';
          j += 2;
        } else if (text[j] === '"') {
          j++;
          break;
        } else field += text[j++];
      }
      i = j;
    } else {
      let j = i;
      while (j < text.length && text[j] !== "," && text[j] !== "\n") j++;
      field = j === i ? null : text.slice(i, j);
      i = j;
    }
    row.push(field);
    if (text[i] === ",") i++;
    else {
      rows.push(row);
      row = [];
      i++;
    }
  }
  return rows;
}

/** PostgreSQL COPY text format (hecate's TSV), NULL as `\N`. */
function parseTsvLine(line: string): (string | null)[] {
  return line.split("\t").map((f) =>
    f === "\\N"
      ? null
      : f.replace(/\\(.)/g, (_, c: string) =>
        ({ t: "\t", n: "\n", r: "\r", b: "\b", v: "\v", f: "\f", "\\": "\\" })[c] ?? c)
  );
}

Deno.test("MariaDB exports: copyCsv, CSV and TSV against the formatter and mariadb --batch", async (t) => {
  await using db = await startMariadb();
  await db.sql(`${TABLE};\n${ROWS};`);
  const conn = await mysqlDriver.connect(settingsFor(db));
  try {
    await t.step("copyCsv and copyTsv are byte for byte the formatters' output", async () => {
      for (
        const sql of [
          "select * from ex order by id",
          "select one from ex order by id",
          "select seq, md5(seq), if(seq % 7 = 0, null, repeat('x,\\t\\\\', seq % 300)) " +
          "from seq_1_to_20000",
          "select concat('a', char(8), char(9), char(10), char(11), char(12), char(13), '\\\\z') as `t\tn`",
          "select 1 from ex where 1 = 0",
        ]
      ) {
        const expected = await viaFormatter(conn, sql);
        const [got, n] = await viaCopy(conn, sql);
        assert.equal(new TextDecoder().decode(got), new TextDecoder().decode(expected), sql);
        assert.deepEqual(got, expected, sql);
        assert.equal(n, parseCsv(new TextDecoder().decode(got)).length - 1, sql);
        const expectedTsv = await viaFormatter(conn, sql, true);
        const [gotTsv, nTsv] = await viaCopy(conn, sql, true);
        assert.equal(new TextDecoder().decode(gotTsv), new TextDecoder().decode(expectedTsv), sql);
        assert.deepEqual(gotTsv, expectedTsv, sql);
        assert.equal(nTsv, n);
      }
      // The connection is usable afterwards, also after a failing statement.
      await assert.rejects(viaCopy(conn, "select * from no_such_table"), /error 1146/);
      const [again] = await viaCopy(conn, "select 42 as a");
      assert.equal(new TextDecoder().decode(again), "a\n42\n");
    });

    await t.step(
      "hecate query --format csv and tsv give the values mariadb --batch prints",
      async () => {
        await using dir = await tempDir("hecate-mysql-export-");
        const home = `${dir.path}/home`;
        const run = (stdin: string, ...args: string[]) =>
          runHecate(["--password-stdin", ...args], { home, stdin: `${MASTER_PASSWORD}\n${stdin}` });
        assert.equal(
          (await runHecate(["--password-stdin", "init", "--kdf-iterations", "600000"], {
            home,
            stdin: `${MASTER_PASSWORD}\n`,
          })).code,
          0,
        );
        const add = await run(
          `${db.password}\n`,
          ...["server", "add", "my", "--engine", "mysql", "--host", db.host, "--port"],
          ...[String(db.port), "--user", db.user, "--database", db.database, "--tls", "disable"],
          "--secret-stdin",
        );
        assert.equal(add.code, 0, add.stderr);
        // The client prints bytes raw: compare blobs with their hex and BIT with +0 instead.
        const cols = "id, big, ubig, dec38, d, dt, dd, tm, txt, one, " +
          "if(bin is null, null, concat('\\\\x', lower(hex(bin)))) as bin, bits + 0 as bits";
        const batch = (await db.sql(`select ${cols} from ex order by id`)).replace(/\n$/, "")
          .split("\n").map(parseBatchLine);
        const csv = await run("", "query", "my", "select * from ex order by id", "--format", "csv");
        assert.equal(csv.code, 0, csv.stderr);
        const csvRows = parseCsv(csv.stdout);
        assert.deepEqual(csvRows[0], [
          "id",
          "big",
          "ubig",
          "dec38",
          "d",
          "dt",
          "dd",
          "tm",
          "txt",
          "one",
          "bin",
          "bits",
        ]);
        assert.deepEqual(csvRows.slice(1), batch);
        const tsv = await run("", "query", "my", "select * from ex order by id", "--format", "tsv");
        assert.equal(tsv.code, 0, tsv.stderr);
        const tsvRows = tsv.stdout.replace(/\n$/, "").split("\n").slice(1).map(parseTsvLine);
        assert.deepEqual(tsvRows, batch);
      },
    );

    await t.step("a slow CSV sink holds the server back", async () => {
      const bytesSent = async () =>
        Number((await db.sql("show global status like 'Bytes_sent'")).split("\t")[1]);
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      let calls = 0;
      let stalled = -1;
      const start = await bytesSent();
      let before = 0;
      const n = await conn.copyCsv!(
        "select seq, repeat('y', 2000) from seq_1_to_100000",
        async () => {
          if (calls++ === 1) {
            let prev = await bytesSent();
            for (let i = 0; i < 30; i++) {
              await sleep(200);
              const now = await bytesSent();
              if (now - prev < 65536) break;
              prev = now;
            }
            before = await bytesSent();
            await sleep(1000);
            stalled = await bytesSent() - before;
          }
        },
      );
      assert.equal(n, 100000);
      assert.ok(before - start < 50e6, `the server sent ${before - start} bytes before stalling`);
      assert.ok(stalled >= 0 && stalled < 5e6, `the server sent ${stalled} bytes meanwhile`);
    });
  } finally {
    await conn.close();
  }
});
