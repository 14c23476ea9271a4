import assert from "node:assert/strict";
import type { Column } from "../src/db/driver.ts";
import { csvField } from "../src/db/output/csv.ts";
import {
  ChunkedSink,
  createFormatter,
  type FormatterOptions,
  type OutputFormat,
  writeAllTo,
} from "../src/db/output/mod.ts";
import { tsvField } from "../src/db/output/tsv.ts";
import { jsonValue, uniqueKeys } from "../src/db/output/values.ts";
import { displayWidth, safeCell } from "../src/db/output/width.ts";
import { Decimal, JsonText } from "../src/db/value.ts";

/** One result set to feed a formatter. */
interface TestSet {
  columns: Column[];
  rows: unknown[][];
  rowCount?: number | null;
}

/** A writer that records every chunk it receives. */
function recorder(): { write: (chunk: Uint8Array) => Promise<void>; chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    write: (chunk) => {
      chunks.push(chunk.slice());
      return Promise.resolve();
    },
  };
}

function joinBytes(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function render(
  format: OutputFormat,
  sets: TestSet[],
  options: FormatterOptions = {},
): Promise<string> {
  const rec = recorder();
  const sink = new ChunkedSink(rec.write);
  const out = createFormatter(format, sink, options);
  for (const [index, set] of sets.entries()) {
    await out.beginSet(index, set.columns);
    for (const values of set.rows) {
      const p = out.row(values);
      if (p) await p;
    }
    await out.endSet(index, set.rowCount ?? null);
  }
  await out.finish();
  return new TextDecoder().decode(joinBytes(rec.chunks));
}

function cols(...names: string[]): Column[] {
  return names.map((name) => ({ name, type: "text" }));
}

// ---------------------------------------------------------------------------------------------
// CSV

Deno.test("csv quotes fields with comma, quote, CR or LF and doubles inner quotes", () => {
  assert.equal(csvField("a,b", false), '"a,b"');
  assert.equal(csvField('say "hi"', false), '"say ""hi"""');
  assert.equal(csvField("x\ry", false), '"x\ry"');
  assert.equal(csvField("l1\nl2", false), '"l1\nl2"');
});

Deno.test("csv leaves spaces, tabs and backslashes unquoted like PostgreSQL", () => {
  assert.equal(csvField(" sp ", false), " sp ");
  assert.equal(csvField("tab\there", false), "tab\there");
  assert.equal(csvField("back\\slash", false), "back\\slash");
  assert.equal(csvField("plain", false), "plain");
});

Deno.test("csv writes NULL as an empty field and the empty string as quoted", () => {
  assert.equal(csvField(null, false), "");
  assert.equal(csvField("", false), '""');
});

Deno.test("csv quotes \\. only when the set has a single column", () => {
  assert.equal(csvField("\\.", true), '"\\."');
  assert.equal(csvField("\\.", false), "\\.");
  assert.equal(csvField("\\.x", true), "\\.x");
});

Deno.test("csv output is byte-identical to PostgreSQL COPY ... CSV HEADER", async () => {
  // Captured from PostgreSQL 15: COPY (SELECT * FROM (VALUES (...)) t("id","a,b","q""",...))
  // TO STDOUT WITH (FORMAT csv, HEADER)
  const columns = cols("id", "a,b", 'q"', "c r", "x y", "e", "n", "dot", "sp", "tab", "bs", "u");
  const row = [
    "1",
    "a,b",
    'say "hi"',
    "x\ry",
    "l1\nl2",
    "",
    null,
    "\\.",
    " sp ",
    "tab\there",
    "back\\slash",
    "é",
  ];
  const expected = 'id,"a,b","q""",c r,x y,e,n,dot,sp,tab,bs,u\n' +
    '1,"a,b","say ""hi""","x\ry","l1\nl2","",,\\., sp ,tab\there,back\\slash,é\n';
  assert.equal(await render("csv", [{ columns, rows: [row] }]), expected);

  // Single column: PostgreSQL quotes `\.` in data and header alike.
  assert.equal(
    await render("csv", [{ columns: cols("\\."), rows: [["\\."], [null], [""]] }]),
    '"\\."\n"\\."\n\n""\n',
  );
});

Deno.test("csv separates result sets with a blank line and skips sets without columns", async () => {
  const text = await render("csv", [
    { columns: cols("a"), rows: [["1"]] },
    { columns: [], rows: [], rowCount: 3 },
    { columns: cols("b", "c"), rows: [["2", "3"]] },
  ]);
  assert.equal(text, "a\n1\n\nb,c\n2,3\n");
});

Deno.test("csv writes only the header for an empty set", async () => {
  assert.equal(await render("csv", [{ columns: cols("x"), rows: [] }]), "x\n");
});

// ---------------------------------------------------------------------------------------------
// TSV

Deno.test("tsv escapes backslash, tab, LF, CR and writes NULL as \\N", () => {
  assert.equal(tsvField(null), "\\N");
  assert.equal(tsvField("a\\b\tc\nd\re"), "a\\\\b\\tc\\nd\\re");
  assert.equal(tsvField("\b\f\v"), "\\b\\f\\v");
  assert.equal(tsvField(""), "");
  assert.equal(tsvField("\\N"), "\\\\N");
});

Deno.test("tsv output matches PostgreSQL COPY text format with header", async () => {
  // Captured from PostgreSQL 15 (FORMAT text, HEADER); header names are escaped too.
  const text = await render("tsv", [{
    columns: cols("h\\tx", "b\\\\", "c", "d"),
    rows: [["a\\b\tc\nd\re", null, "", "\\N"]],
  }]);
  assert.equal(text, "h\\\\tx\tb\\\\\\\\\tc\td\na\\\\b\\tc\\nd\\re\t\\N\t\t\\\\N\n");
});

// ---------------------------------------------------------------------------------------------
// JSON values

Deno.test("json keeps bigint exact and unquoted", () => {
  assert.equal(jsonValue(9007199254740993n), "9007199254740993");
  assert.equal(jsonValue(-9007199254740993n), "-9007199254740993");
});

Deno.test("json maps NaN and infinities to strings and finite numbers to numbers", () => {
  assert.equal(jsonValue(NaN), '"NaN"');
  assert.equal(jsonValue(Infinity), '"Infinity"');
  assert.equal(jsonValue(-Infinity), '"-Infinity"');
  assert.equal(jsonValue(1.5), "1.5");
  assert.equal(jsonValue(-0), "0");
  assert.equal(jsonValue(1e21), "1e+21");
});

Deno.test("json writes a Decimal bare when it is a JSON number, else as a string", () => {
  assert.equal(
    jsonValue(new Decimal("12345678901234567890.000000000001")),
    "12345678901234567890.000000000001",
  );
  assert.equal(jsonValue(new Decimal("-0.5")), "-0.5");
  assert.equal(jsonValue(new Decimal("1E+5")), "1E+5");
  assert.equal(jsonValue(new Decimal("NaN")), '"NaN"');
  assert.equal(jsonValue(new Decimal("Infinity")), '"Infinity"');
  assert.equal(jsonValue(new Decimal(".5")), '".5"');
  assert.equal(jsonValue(new Decimal("007")), '"007"');
});

Deno.test("json embeds JsonText raw and keeps it on one line", () => {
  assert.equal(jsonValue(new JsonText('{"a": [1, 2]}')), '{"a": [1, 2]}');
  assert.equal(jsonValue(new JsonText('{\n  "a": "x\\ny"\r\n}')), '{   "a": "x\\ny" }');
});

Deno.test("json writes bytes as PostgreSQL bytea hex, dates as ISO, others as strings", () => {
  assert.equal(jsonValue(new Uint8Array([0, 1, 0xab, 0xff])), '"\\\\x0001abff"');
  assert.equal(JSON.parse(jsonValue(new Uint8Array([0xde, 0xad]))), "\\xdead");
  assert.equal(jsonValue(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6))), '"2024-01-02T03:04:05.006Z"');
  assert.equal(jsonValue(null), "null");
  assert.equal(jsonValue(undefined), "null");
  assert.equal(jsonValue(true), "true");
  assert.equal(jsonValue(false), "false");
  assert.equal(jsonValue('a"b\n\u0001'), '"a\\"b\\n\\u0001"');
  assert.equal(jsonValue({ toString: () => "custom" }), '"custom"');
});

Deno.test("json gives duplicate column names suffixes _2, _3", () => {
  assert.deepEqual(uniqueKeys(cols("a", "b", "a", "a", "a_2")), ["a", "b", "a_2", "a_3", "a_2_2"]);
});

// ---------------------------------------------------------------------------------------------
// JSON and NDJSON output

const typedRow = [
  9007199254740993n,
  new Decimal("1.10"),
  new JsonText('{"k":[true,null]}'),
  new Uint8Array([1, 2]),
  NaN,
  null,
  "x",
];
const typedColumns: Column[] = [
  { name: "id", type: "int8" },
  { name: "amount", type: "numeric" },
  { name: "doc", type: "jsonb" },
  { name: "raw", type: "bytea" },
  { name: "f", type: "float8" },
  { name: "n", type: "text" },
  { name: "id", type: "text" },
];

Deno.test("json output of one set parses with JSON.parse and keeps bigints exact", async () => {
  const text = await render("json", [{ columns: typedColumns, rows: [typedRow, typedRow] }]);
  assert.ok(text.startsWith("[{") && text.endsWith("}]\n"));
  const parsed = JSON.parse(text);
  assert.equal(parsed.length, 2);
  assert.deepEqual(parsed[0], {
    id: 9007199254740992, // JSON.parse rounds; the text below is exact
    amount: 1.1,
    doc: { k: [true, null] },
    raw: "\\x0102",
    f: "NaN",
    n: null,
    id_2: "x",
  });
  assert.ok(text.includes('"id":9007199254740993,'));
  assert.ok(text.includes('"amount":1.10,'));
  assert.equal(text.split(",\n").length, 2, "rows are separated by ,\\n");
});

Deno.test("json writes an empty array for an empty set", async () => {
  assert.equal(await render("json", [{ columns: cols("a"), rows: [] }]), "[]\n");
});

Deno.test("json writes one array per result set", async () => {
  const text = await render("json", [
    { columns: cols("a"), rows: [["1"], ["2"]] },
    { columns: [], rows: [], rowCount: 1 },
    { columns: cols("b"), rows: [["3"]] },
  ]);
  assert.equal(text, '[{"a":"1"},\n{"a":"2"}]\n[{"b":"3"}]\n');
  const arrays = text.trimEnd().split("\n[").map((part, i) =>
    JSON.parse(i === 0 ? part : "[" + part)
  );
  assert.deepEqual(arrays, [[{ a: "1" }, { a: "2" }], [{ b: "3" }]]);
});

Deno.test("ndjson writes one parseable row object per line and no marker for one set", async () => {
  const text = await render("ndjson", [{
    columns: typedColumns,
    rows: [typedRow, typedRow, typedRow],
  }]);
  const lines = text.split("\n");
  assert.equal(lines.pop(), "", "output ends with a newline");
  assert.equal(lines.length, 3);
  for (const line of lines) {
    const obj = JSON.parse(line);
    assert.equal(obj.raw, "\\x0102");
    assert.ok(!("$set" in obj));
  }
});

Deno.test("ndjson marks the second and later result sets with a $set line", async () => {
  const text = await render("ndjson", [
    { columns: cols("a"), rows: [["1"]] },
    { columns: [{ name: "b", type: "int4" }, { name: "b", type: "text" }], rows: [[2, "x"]] },
    { columns: cols("c"), rows: [] },
  ]);
  const lines = text.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines, [
    { a: "1" },
    { $set: 1, columns: [{ name: "b", type: "int4" }, { name: "b_2", type: "text" }] },
    { b: 2, b_2: "x" },
    { $set: 2, columns: [{ name: "c", type: "text" }] },
  ]);
});

// ---------------------------------------------------------------------------------------------
// ChunkedSink

Deno.test("sink merges 100,000 row pushes into a few large writes", async () => {
  const rec = recorder();
  const sink = new ChunkedSink(rec.write);
  const out = createFormatter("csv", sink);
  await out.beginSet(0, cols("n", "hash"));
  let flushes = 0;
  for (let i = 0; i < 100_000; i++) {
    const p = out.row([String(i), "0123456789abcdef0123456789abcdef"]);
    if (p) {
      flushes++;
      await p;
    }
  }
  await out.endSet(0, null);
  await out.finish();
  assert.ok(rec.chunks.length < 50, `expected few writes, got ${rec.chunks.length}`);
  assert.equal(rec.chunks.length, sink.writeCount);
  assert.ok(flushes <= rec.chunks.length);
  for (const chunk of rec.chunks.slice(0, -1)) {
    assert.ok(chunk.length >= 256 * 1024, "every write but the last is at least the threshold");
    assert.ok(chunk.length < 256 * 1024 + 100, "writes stay near the threshold (bounded memory)");
  }
  const text = new TextDecoder().decode(joinBytes(rec.chunks));
  const lines = text.split("\n");
  assert.equal(lines.length, 100_002);
  assert.equal(lines[0], "n,hash");
  assert.equal(lines[100_000], "99999,0123456789abcdef0123456789abcdef");
  assert.equal(sink.bytesWritten, new TextEncoder().encode(text).length);
});

Deno.test("sink writes nothing until the threshold and everything on flush, in order", async () => {
  const rec = recorder();
  const sink = new ChunkedSink(rec.write, { threshold: 10 });
  assert.equal(sink.push("abc"), undefined);
  assert.equal(sink.pushBytes(new Uint8Array([0x44, 0x45])), undefined);
  assert.equal(sink.push("é"), undefined);
  assert.equal(rec.chunks.length, 0);
  const p = sink.push("fghij");
  assert.ok(p instanceof Promise, "passing the threshold starts a flush");
  await p;
  assert.equal(rec.chunks.length, 1);
  sink.push("tail");
  await sink.flush();
  await sink.flush();
  assert.equal(rec.chunks.length, 2, "an empty flush does not write");
  assert.equal(new TextDecoder().decode(joinBytes(rec.chunks)), "abcDEéfghijtail");
});

Deno.test("sink keeps writes in order even when pushes are not awaited", async () => {
  const order: string[] = [];
  let pending = 0;
  let maxPending = 0;
  const sink = new ChunkedSink(async (chunk) => {
    pending++;
    maxPending = Math.max(maxPending, pending);
    await new Promise((r) => setTimeout(r, 1));
    order.push(new TextDecoder().decode(chunk));
    pending--;
  }, { threshold: 2 });
  sink.push("aa");
  sink.push("bb");
  sink.push("cc");
  await sink.flush();
  assert.deepEqual(order, ["aa", "bb", "cc"]);
  assert.equal(maxPending, 1, "writes never overlap");
});

Deno.test("sink reports a failed write to the caller that awaits the flush", async () => {
  const sink = new ChunkedSink(() => Promise.reject(new Error("disk full")), { threshold: 1 });
  await assert.rejects(async () => {
    const p = sink.push("x");
    if (p) await p;
  }, /disk full/);
});

Deno.test("writeAllTo retries partial writes until the chunk is written", async () => {
  const got: number[] = [];
  const write = writeAllTo({
    write: (p) => {
      got.push(p[0]!);
      return Promise.resolve(1);
    },
  });
  await write(new Uint8Array([1, 2, 3]));
  assert.deepEqual(got, [1, 2, 3]);
});

// ---------------------------------------------------------------------------------------------
// Table

Deno.test("table aligns columns, right-aligns numbers, shows NULL and a row count", async () => {
  const text = await render("table", [{
    columns: [{ name: "id", type: "int4" }, { name: "name", type: "text" }, {
      name: "note",
      type: "varchar",
    }],
    rows: [["1", "alice", null], ["100", "bo", "hi"]],
  }]);
  assert.equal(
    text,
    [
      " id  | name  | note",
      "-----+-------+------",
      "   1 | alice | NULL",
      " 100 | bo    | hi",
      "(2 rows)",
      "",
    ].join("\n"),
  );
});

Deno.test("table counts wide characters as two columns", async () => {
  const text = await render("table", [{
    columns: cols("k", "v"),
    rows: [["中文", "x"], ["ab", "y"]],
  }]);
  assert.equal(
    text,
    [
      "  k   | v",
      "------+---",
      " 中文 | x",
      " ab   | y",
      "(2 rows)",
      "",
    ].join("\n"),
  );
});

Deno.test("table reports affected rows for sets without columns", async () => {
  const text = await render("table", [
    { columns: [], rows: [], rowCount: 3 },
    { columns: [], rows: [], rowCount: 1 },
    { columns: [], rows: [], rowCount: null },
    { columns: cols("a"), rows: [["x"]] },
  ]);
  assert.equal(
    text,
    "OK, 3 rows affected\n\nOK, 1 row affected\n\nOK\n\n a\n---\n x\n(1 row)\n",
  );
});

Deno.test("table shows at most the row limit and counts the rest", async () => {
  const rows = Array.from({ length: 25 }, (_, i) => [String(i)]);
  const text = await render("table", [{ columns: cols("n"), rows }], { tableRowLimit: 10 });
  const lines = text.trimEnd().split("\n");
  assert.equal(lines.length, 2 + 10 + 2);
  assert.equal(lines.at(-2), "... 15 more rows not shown");
  assert.equal(lines.at(-1), "(25 rows)");
});

Deno.test("table dims NULL only when colour is on", async () => {
  const set = { columns: cols("a"), rows: [[null]] };
  assert.ok(!(await render("table", [set])).includes("\x1b"));
  assert.ok((await render("table", [set], { color: true })).includes("\x1b[2mNULL\x1b[22m"));
});

Deno.test("table escapes control characters so data cannot drive the terminal", async () => {
  assert.equal(safeCell("a\nb\tc\x1b[31m\u202e"), "a\\nb\\tc\\x1b[31m\\u202e");
  const text = await render("table", [{ columns: cols("v"), rows: [["x\x1b]0;pwned\x07"]] }]);
  assert.ok(!text.includes("\x1b"));
  assert.ok(text.includes("x\\x1b]0;pwned\\x07"));
});

Deno.test("display width counts code points, wide characters and combining marks", () => {
  assert.equal(displayWidth("abc"), 3);
  assert.equal(displayWidth("é"), 1);
  assert.equal(displayWidth("e\u0301"), 1);
  assert.equal(displayWidth("中文"), 4);
  assert.equal(displayWidth("😀"), 2);
  assert.equal(displayWidth("𝔸"), 1);
});
