/**
 * End-to-end tests of the `hecate` command against a real PostgreSQL server on loopback
 * (tests/support/postgres.ts): profiles, parameter binding, exact values in json and csv, the
 * COPY fast path against the cursor path, streaming exports with flat memory, and connection
 * failures.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/cli_postgres_test.ts
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  closedPort,
  MASTER_PASSWORD,
  runHecate,
  type RunHecateResult,
  stackLines,
  tempDir,
} from "./support/cli.ts";
import { startPostgres } from "./support/postgres.ts";

function show(r: RunHecateResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout.slice(0, 4000)}\n--- stderr\n${r.stderr}`;
}

function ok(r: RunHecateResult): string {
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  return r.stdout;
}

/** One `hecate: error:` line (plus optional hints), no stack, nothing on stdout. */
function fails(r: RunHecateResult, code: number, message?: RegExp): string {
  assert.equal(r.code, code, show(r));
  const lines = r.stderr.split("\n");
  assert.equal(lines.pop(), "", show(r));
  assert.match(lines[0] ?? "", /^hecate: error: \S/, show(r));
  for (const l of lines.slice(1)) assert.match(l, /^hecate: hint: \S/, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  assert.equal(r.stdout, "", show(r));
  if (message) assert.match(lines[0]!, message, show(r));
  return lines[0]!;
}

/**
 * A small RFC 4180 reader: fields separated by commas, records by LF (or CRLF); a quoted field
 * may hold commas, line breaks and doubled quotes. An unquoted empty field is returned as null
 * (PostgreSQL's CSV NULL), a quoted empty field as "".
 */
function readCsv(text: string): (string | null)[][] {
  const records: (string | null)[][] = [];
  let record: (string | null)[] = [];
  let pos = 0;
  const n = text.length;
  if (n === 0) return records;
  for (;;) {
    let value: string | null;
    if (text[pos] === '"') {
      pos++;
      let buf = "";
      for (;;) {
        const close = text.indexOf('"', pos);
        if (close < 0) throw new Error(`unterminated quoted field at ${pos}`);
        buf += text.slice(pos, close);
        pos = close + 1;
        if (text[pos] === '"') {
          buf += '"';
          pos++;
        } else {
          break;
        }
      }
      value = buf;
    } else {
      let end = pos;
      while (end < n && text[end] !== "," && text[end] !== "\n" && text[end] !== "\r") {
        if (text[end] === '"') throw new Error(`quote inside an unquoted field at ${end}`);
        end++;
      }
      value = end === pos ? null : text.slice(pos, end);
      pos = end;
    }
    record.push(value);
    if (pos >= n) throw new Error("the last record has no line break");
    if (text[pos] === ",") {
      pos++;
      continue;
    }
    if (text[pos] === "\r") pos++;
    if (text[pos] !== "\n") throw new Error(`expected a line break at ${pos}`);
    pos++;
    records.push(record);
    record = [];
    if (pos >= n) return records;
  }
}

/** Counts LF bytes in a file without decoding it. */
async function countLines(path: string): Promise<number> {
  let lines = 0;
  using f = await Deno.open(path);
  for await (const chunk of f.readable) {
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x0a) lines++;
  }
  return lines;
}

/** The last line of a file (without its LF). */
async function lastLine(path: string): Promise<string> {
  using f = await Deno.open(path);
  const size = (await f.stat()).size;
  const tail = Math.min(size, 4096);
  await f.seek(size - tail, Deno.SeekMode.Start);
  const buf = new Uint8Array(tail);
  let read = 0;
  while (read < tail) read += (await f.read(buf.subarray(read))) ?? tail;
  const text = new TextDecoder().decode(buf).replace(/\n$/, "");
  return text.slice(text.lastIndexOf("\n") + 1);
}

async function firstLine(path: string): Promise<string> {
  using f = await Deno.open(path);
  const buf = new Uint8Array(256);
  const n = (await f.read(buf)) ?? 0;
  const text = new TextDecoder().decode(buf.subarray(0, n));
  return text.slice(0, text.indexOf("\n"));
}

const md5 = (s: string) => createHash("md5").update(s).digest("hex");

/** The awkward values, one row; each column name says what it holds. */
const SAMPLE_SQL = "select null::text as nul, " +
  `'Grüße, 世界 "quoted", comma' as uni, ` +
  "'' as empty, " +
  "E'line1\\nline2' as multiline, " +
  "9223372036854775807::int8 as big, " +
  "12345678901234567890.123456789::numeric as num, " +
  "'2024-01-02 03:04:05.123456+00'::timestamptz as tstz, " +
  "'\\x00ff0a2c22'::bytea as bin";

Deno.test("hecate against a real PostgreSQL server", async (t) => {
  const pg = await startPostgres();
  const dir = await tempDir("hecate-cli-pg-");
  const home = `${dir.path}/home`;
  /** Every run's output, checked at the end for the database password. */
  const seen: RunHecateResult[] = [];
  const run = async (
    args: string[],
    more: string[] = [],
    extra: { measureMemory?: boolean; password?: string } = {},
  ) => {
    const r = await runHecate(["--password-stdin", ...args], {
      home,
      stdin: [extra.password ?? MASTER_PASSWORD, ...more].map((l) => l + "\n").join(""),
      ...(extra.measureMemory ? { measureMemory: true } : {}),
    });
    seen.push(r);
    return r;
  };
  const profileArgs = (name: string, port = pg.port) => [
    "server",
    "add",
    name,
    "--engine",
    "postgres",
    "--host",
    pg.host,
    "--port",
    String(port),
    "--user",
    pg.user,
    "--database",
    pg.database,
    "--tls",
    "disable",
    "--secret-stdin",
  ];
  try {
    ok(await run(["init", "--kdf-iterations", "600000"]));

    await t.step("server add postgres, server test, query", async () => {
      assert.equal(ok(await run(profileArgs("pg"), [pg.password])), 'Added profile "pg"\n');
      assert.match(
        ok(await run(["server", "test", "pg"])),
        /^ {2}database login via 127\.0\.0\.1:\d+: ok, \d+\.\d ms\nok: pg: connected in \d+\.\d ms, round trip \d+\.\d ms\n$/,
      );
      assert.equal(
        ok(await run(["query", "pg", "select current_user as u, 1 + 1 as two"])),
        `u,two\n${pg.user},2\n`,
      );
    });

    await t.step("a parameter that looks like SQL stays data", async () => {
      const evil = "'); DROP TABLE t; --";
      ok(await run(["query", "pg", "create table t (id int primary key, v text)"]));
      ok(await run(["query", "pg", "insert into t values (1, $1)", "--param", evil]));
      ok(
        await run([
          "query",
          "pg",
          "select * from t where v = $1 or id = $2",
          "--param",
          evil,
          "--param",
          "2",
        ]),
      );
      const rows = JSON.parse(
        ok(
          await run([
            "query",
            "pg",
            "select v from t where id = $1",
            "--param",
            "1",
            "--format",
            "json",
          ]),
        ),
      );
      assert.deepEqual(rows, [{ v: evil }]);
      assert.equal(
        (await pg.psql("select to_regclass('public.t') is not null, count(*) from t")).trim(),
        "t|1",
      );
    });

    await t.step("NULL, unicode, int8, numeric, timestamptz, bytea: exact in json", async () => {
      const raw = ok(await run(["query", "pg", SAMPLE_SQL, "--format", "json"]));
      // Exact digits in the raw text: a JSON number parser would round these.
      assert.ok(raw.includes('"big":9223372036854775807,'), raw);
      assert.ok(raw.includes('"num":12345678901234567890.123456789,'), raw);
      const [row, ...rest] = JSON.parse(raw);
      assert.equal(rest.length, 0);
      assert.equal(row.nul, null);
      assert.equal(row.uni, 'Grüße, 世界 "quoted", comma');
      assert.equal(row.empty, "");
      assert.equal(row.multiline, "line1\nline2");
      assert.equal(row.tstz, "2024-01-02T03:04:05.123456+00:00");
      assert.equal(new Date(row.tstz).getTime(), Date.UTC(2024, 0, 2, 3, 4, 5, 123));
      assert.match(row.bin, /^\\x[0-9a-f]*$/);
      const bytes = row.bin.slice(2).match(/../g).map((h: string) => parseInt(h, 16));
      assert.deepEqual(bytes, [0x00, 0xff, 0x0a, 0x2c, 0x22]);
      // ndjson carries the same object on one line.
      const nd = ok(await run(["query", "pg", SAMPLE_SQL, "--format", "ndjson"]));
      assert.equal(nd, raw.slice(1, -2) + "\n");
    });

    await t.step(
      "the same values in csv (RFC 4180), by COPY and by cursor, byte-identical",
      async () => {
        const copy = await run(["query", "pg", SAMPLE_SQL]);
        const cursor = await run([
          "query",
          "pg",
          `${SAMPLE_SQL} where $1::int = 1`,
          "--param",
          "1",
          "--format",
          "csv",
        ]);
        ok(copy);
        ok(cursor);
        for (const [path, r] of [["COPY", copy], ["cursor", cursor]] as const) {
          const records = readCsv(r.stdout);
          assert.deepEqual(records, [
            ["nul", "uni", "empty", "multiline", "big", "num", "tstz", "bin"],
            [
              null,
              'Grüße, 世界 "quoted", comma',
              "",
              "line1\nline2",
              "9223372036854775807",
              "12345678901234567890.123456789",
              "2024-01-02 03:04:05.123456+00",
              "\\x00ff0a2c22",
            ],
          ], path);
        }
        assert.deepEqual(cursor.stdoutBytes, copy.stdoutBytes);
      },
    );

    await t.step("csv by COPY and by cursor agree on more types", async () => {
      const sql = "select g, g % 3 = 0 as b, g::float8 / 10 as f, (g * 1.5)::numeric(10,3) as n, " +
        "date '2024-02-29' + g as d, make_interval(days => g, secs => 1.5) as iv, " +
        "jsonb_build_object('k', g, 's', 'a,\"b\"') as j, array[g, null, 3] as arr, " +
        "md5(g::text)::uuid as u, case when g % 2 = 0 then null else repeat('x', g) end as t, " +
        "'\\.' as dot from generate_series(1, 50) g";
      const copy = await run(["query", "pg", sql]);
      const cursor = await run(["query", "pg", `${sql} where $1::int = 1`, "--param", "1"]);
      assert.equal(ok(cursor), ok(copy));
      assert.equal(readCsv(copy.stdout).length, 51);
      // Single-column sets quote the end-of-data marker on both paths.
      const dotCopy = ok(await run(["query", "pg", "select '\\.' as dot"]));
      const dotCursor = ok(
        await run(["query", "pg", "select '\\.' as dot where $1::int = 1", "--param", "1"]),
      );
      assert.equal(dotCursor, dotCopy);
      assert.equal(dotCopy, 'dot\n"\\."\n');
    });

    const exportRun = async (rows: number, format: "csv" | "ndjson") => {
      const file = `${dir.path}/export-${rows}.${format}`;
      const r = await run(
        [
          "query",
          "pg",
          `select g, md5(g::text) from generate_series(1,${rows}) g`,
          "--format",
          format,
          "--output",
          file,
        ],
        [],
        { measureMemory: true },
      );
      assert.equal(ok(r), "");
      assert.ok(r.peakRssKb !== undefined && r.peakRssKb > 0, "peak memory was measured");
      return { file, peakKb: r.peakRssKb! };
    };

    for (const format of ["csv", "ndjson"] as const) {
      await t.step(
        `1,000,000 rows --format ${format} --output: complete, memory flat`,
        async () => {
          const big = await exportRun(1_000_000, format);
          const header = format === "csv" ? 1 : 0;
          assert.equal(await countLines(big.file), 1_000_000 + header);
          assert.equal((await Deno.stat(big.file)).mode! & 0o777, 0o600);
          if (format === "csv") {
            assert.equal(await firstLine(big.file), "g,md5");
            assert.equal(await lastLine(big.file), `1000000,${md5("1000000")}`);
          } else {
            assert.equal(await firstLine(big.file), `{"g":1,"md5":"${md5("1")}"}`);
            assert.equal(await lastLine(big.file), `{"g":1000000,"md5":"${md5("1000000")}"}`);
          }
          await Deno.remove(big.file);
          const small = await exportRun(200_000, format);
          assert.equal(await countLines(small.file), 200_000 + header);
          await Deno.remove(small.file);
          const limitKb = 1.5 * small.peakKb + 30 * 1024;
          console.log(
            `  ${format}: peak RSS ${(small.peakKb / 1024).toFixed(1)} MiB for 200k rows, ` +
              `${(big.peakKb / 1024).toFixed(1)} MiB for 1M rows`,
          );
          assert.ok(
            big.peakKb < limitKb,
            `${format}: 1M rows peaked at ${big.peakKb} KiB, 200k rows at ${small.peakKb} KiB`,
          );
        },
      );
    }

    await t.step("an export failing midway: exit 7, no file, no temp file", async () => {
      const outDir = `${dir.path}/failing`;
      await Deno.mkdir(outDir);
      const sql = "select g, 1 / (g - 150000) as boom from generate_series(1, 300000) g";
      for (
        const [format, extra] of [["csv", []], ["ndjson", []], ["csv", ["--param", "1"]]] as const
      ) {
        const q = extra.length ? `${sql} where $1::int = 1` : sql;
        fails(
          await run([
            "query",
            "pg",
            q,
            "--format",
            format,
            "--output",
            `${outDir}/out.${format}`,
            ...extra,
          ]),
          7,
          /division by zero/,
        );
        const left: string[] = [];
        for await (const e of Deno.readDir(outDir)) left.push(e.name);
        assert.deepEqual(left, [], `${format}${extra.length ? " (cursor)" : ""}`);
      }
    });

    await t.step("query errors: exit 7, parameter values masked", async () => {
      fails(
        await run(["query", "pg", "selec 1"]),
        7,
        /^hecate: error: Query failed: .*SQLSTATE 42601/,
      );
      const canary = `PARAM-CANARY-${crypto.randomUUID()}`;
      const line = fails(
        await run(["query", "pg", "select $1::int", "--param", canary]),
        7,
        /SQLSTATE 22P02/,
      );
      assert.ok(!line.includes(canary), line);
      const audit = await Deno.readTextFile(`${home}/audit.jsonl`);
      assert.ok(!audit.includes(canary));
    });

    await t.step("connection refused on a closed port: exit 6, one line, no password", async () => {
      const port = closedPort();
      ok(await run(profileArgs("closed", port), [pg.password]));
      for (const args of [["server", "test", "closed"], ["query", "closed", "select 1"]]) {
        const line = fails(await run(args), 6, /connection refused/);
        assert.ok(line.includes(`127.0.0.1:${port}`), line);
        assert.ok(!line.includes(pg.password), line);
      }
    });

    await t.step("wrong database password: exit 3; a new secret via edit fixes it", async () => {
      const wrong = `wrong-${crypto.randomUUID()}`;
      ok(await run(profileArgs("badpw"), [wrong]));
      for (const args of [["server", "test", "badpw"], ["query", "badpw", "select 1"]]) {
        const line = fails(await run(args), 3, /password authentication failed|refused/);
        assert.ok(!line.includes(wrong), line);
      }
      assert.equal(
        ok(await run(["server", "edit", "badpw", "--secret-stdin"], [pg.password])),
        'Updated profile "badpw"\n',
      );
      assert.match(
        ok(await run(["server", "test", "badpw"])),
        /^ {2}database login via [^\n]+\nok: badpw: /,
      );
    });

    await t.step("the database password never appears in output or the audit trail", async () => {
      assert.ok(seen.length > 10);
      for (const [i, r] of seen.entries()) {
        assert.ok(!r.stdout.includes(pg.password), `stdout of run ${i}`);
        assert.ok(!r.stderr.includes(pg.password), `stderr of run ${i}`);
      }
      const audit = await Deno.readTextFile(`${home}/audit.jsonl`);
      assert.ok(!audit.includes(pg.password));
      const vault = await Deno.readTextFile(`${home}/vault.hecate`);
      assert.ok(!vault.includes(pg.password));
    });
  } finally {
    await pg.stop();
    await dir.dispose();
  }
});
