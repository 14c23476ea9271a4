/**
 * Property-based tests (fast-check) of the PostgreSQL backend message decoding, playing a hostile
 * server: random and mutated messages fed to the decoders (src/db/pg/backend.ts), to the startup
 * handshake (src/db/pg/session.ts) and to a statement (src/db/pg/statement.ts) through a fake
 * transport. Each must end with a result or a documented protocol error, within a bounded time,
 * without reading past a message's end, without allocating for lengths the server merely
 * announced, and without the password in any error or in anything sent to a server that did not
 * earn it. No server is involved.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  parseDataRow,
  parseError,
  parseRowDescription,
  PgServerError,
} from "../src/db/pg/backend.ts";
import { AuthProtocolError } from "../src/db/pg/auth.ts";
import { ConnectionLostError, ProtocolError } from "../src/db/pg/reader.ts";
import {
  PasswordMissingError,
  PgWire,
  PlainAuthRefusedError,
  UnsupportedAuthError,
} from "../src/db/pg/session.ts";
import { Statement } from "../src/db/pg/statement.ts";
import type { Transport } from "../src/db/pg/transport.ts";
import { within } from "./support/within.ts";

const enc = new TextEncoder();
const PASSWORD = "fuzz-canary-Passw0rd-7d1e";

// ---------------------------------------------------------------------------------------------
// Building backend messages

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

function i16(n: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setInt16(0, n);
  return b;
}

function i32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
}

function msg(type: string, body: Uint8Array): Uint8Array {
  return concat([enc.encode(type), i32(body.length + 4), body]);
}

function rowDescription(names: string[]): Uint8Array {
  return concat([
    i16(names.length),
    ...names.flatMap((
      n,
    ) => [enc.encode(n), new Uint8Array([0]), new Uint8Array(6), i32(25), new Uint8Array(8)]),
  ]);
}

function dataRow(values: (string | null)[]): Uint8Array {
  return concat([
    i16(values.length),
    ...values.flatMap((v) => v === null ? [i32(-1)] : [i32(enc.encode(v).length), enc.encode(v)]),
  ]);
}

/** A byte stream cut into random reads; records what the client writes. */
class FakeTransport implements Transport {
  #data: Uint8Array;
  #at = 0;
  #cuts: number[];
  written: Uint8Array[] = [];
  fed = 0;

  constructor(data: Uint8Array, cuts: number[]) {
    this.#data = data;
    this.#cuts = cuts.length ? cuts : [4096];
  }

  read(buf: Uint8Array): Promise<number | null> {
    if (this.#at >= this.#data.length) return Promise.resolve(null);
    const want = this.#cuts[this.#at % this.#cuts.length]!;
    const n = Math.min(buf.length, want, this.#data.length - this.#at);
    buf.set(this.#data.subarray(this.#at, this.#at + n));
    this.#at += n;
    this.fed += n;
    return Promise.resolve(n);
  }

  write(bytes: Uint8Array): Promise<void> {
    this.written.push(bytes.slice());
    return Promise.resolve();
  }

  close(): void {
    this.#at = this.#data.length;
  }
}

/** Byte mutations: flip, overwrite, cut, insert, duplicate a range. */
const mutation = fc.oneof(
  fc.record({
    kind: fc.constant("set" as const),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ maxLength: 12 }),
  }),
  fc.record({ kind: fc.constant("dup" as const), at: fc.nat(), len: fc.nat({ max: 40 }) }),
);

type Mutation = { kind: string; at: number; value?: number; bytes?: Uint8Array; len?: number };

function mutate(base: Uint8Array, ops: Mutation[]): Uint8Array {
  let b: Uint8Array = base.slice();
  for (const op of ops) {
    if (b.length === 0) break;
    const at = op.at % b.length;
    if (op.kind === "set") b[at] = op.value!;
    else if (op.kind === "cut") b = b.slice(0, at);
    else if (op.kind === "insert") b = concat([b.subarray(0, at), op.bytes!, b.subarray(at)]);
    else b = concat([b.subarray(0, at + op.len!), b.subarray(at)]);
  }
  return b;
}

const FUZZ = { numRuns: 400 };

// ---------------------------------------------------------------------------------------------
// The decoders on their own

type Decoder = (buf: Uint8Array, start: number, end: number) => unknown;

/** Decodes `body` placed between junk, twice with different junk after it. */
function decodeBoth(decode: Decoder, body: Uint8Array, head: number) {
  const run = (tail: number) => {
    const buf = concat([new Uint8Array(head).fill(0x41), body, new Uint8Array(64).fill(tail)]);
    try {
      return { value: decode(buf, head, head + body.length) };
    } catch (e) {
      assert.ok(e instanceof ProtocolError, `not a ProtocolError: ${e}`);
      assert.ok(!e.message.includes("\n"));
      return { error: e.message };
    }
  };
  const a = run(0x00);
  // Bytes past the end belong to the next message: they must change nothing.
  assert.deepEqual(run(0xff), a);
  assert.deepEqual(run(0x30), a);
  return a;
}

Deno.test("RowDescription and DataRow decoding: random bodies give a result within the body or a ProtocolError", () => {
  const decoders: [string, Decoder][] = [
    ["row description", parseRowDescription],
    ["data row", parseDataRow],
    ["error", parseError],
  ];
  for (const [name, decode] of decoders) {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 16 }), (body, head) => {
        const r = decodeBoth(decode, body, head);
        if (name === "row description" && "value" in r) {
          assert.ok((r.value as unknown[]).length * 19 <= Math.max(0, body.length - 2));
        }
        if (name === "data row" && "value" in r) {
          const row = r.value as (string | null)[];
          assert.ok(row.length * 4 <= body.length - 2);
          assert.ok(row.reduce((n, v) => n + (v?.length ?? 0), 0) <= body.length);
        }
      }),
      FUZZ,
    );
  }
});

Deno.test("RowDescription and DataRow decoding: mutated valid messages decode or fail as ProtocolError", () => {
  const names = fc.array(fc.string({ maxLength: 12 }).filter((s) => !s.includes("\0")), {
    maxLength: 8,
  });
  const values = fc.array(fc.option(fc.string({ maxLength: 20 }), { nil: null }), { maxLength: 8 });
  fc.assert(
    fc.property(names, fc.array(mutation, { maxLength: 4 }), (cols, ops) => {
      const body = rowDescription(cols);
      const clean = decodeBoth(parseRowDescription, body, 3);
      assert.deepEqual(clean, { value: cols.map((name) => ({ name, dataTypeID: 25 })) });
      decodeBoth(parseRowDescription, mutate(body, ops), 3);
    }),
    FUZZ,
  );
  fc.assert(
    fc.property(values, fc.array(mutation, { maxLength: 4 }), (vals, ops) => {
      const body = dataRow(vals);
      assert.deepEqual(decodeBoth(parseDataRow, body, 5), { value: vals });
      decodeBoth(parseDataRow, mutate(body, ops), 5);
    }),
    FUZZ,
  );
});

Deno.test("hostile counts are refused before anything is allocated for them", () => {
  // 32767 fields / 32767 columns announced in a few bytes.
  assert.throws(() => parseRowDescription(i16(32767), 0, 2), ProtocolError);
  assert.throws(() => parseDataRow(concat([i16(32767), i32(-1)]), 0, 6), ProtocolError);
  assert.throws(() => parseDataRow(concat([i16(-1)]), 0, 2), ProtocolError);
  assert.throws(() => parseDataRow(concat([i16(1), i32(-2)]), 0, 6), ProtocolError);
  assert.throws(
    () => parseDataRow(concat([i16(1), i32(2 ** 31 - 1), enc.encode("x")]), 0, 7),
    ProtocolError,
  );
  assert.throws(() => parseRowDescription(new Uint8Array(0), 0, 0), ProtocolError);
});

// ---------------------------------------------------------------------------------------------
// Whole exchanges through a fake transport

const STARTUP_ERRORS = [
  ProtocolError,
  ConnectionLostError,
  PgServerError,
  AuthProtocolError,
  UnsupportedAuthError,
  PlainAuthRefusedError,
  PasswordMissingError,
];

/** A server's side of a good login (SCRAM would need the proof, so: trust, then the rest). */
const GOOD_LOGIN = concat([
  msg("R", i32(0)),
  msg("S", enc.encode("server_version\x0017.0\0")),
  msg("K", concat([i32(42), i32(7)])),
  msg("N", enc.encode("SNOTICE\0Mhello\0\0")),
  msg("Z", enc.encode("I")),
]);

const LOGIN_PIECES = fc.constantFrom(
  msg("R", i32(3)),
  msg("R", concat([i32(5), new Uint8Array([1, 2, 3, 4])])),
  msg("R", concat([i32(10), enc.encode("SCRAM-SHA-256\0\0")])),
  msg("R", concat([i32(11), enc.encode("r=abc,s=c2FsdA==,i=4096")])),
  msg("R", concat([i32(12), enc.encode("v=AAAA")])),
  msg("R", i32(0)),
  msg("R", i32(7)),
  msg("E", enc.encode("SFATAL\0C28P01\0Mpassword authentication failed\0\0")),
  msg("Z", enc.encode("I")),
  msg("K", i32(1)),
  msg("v", i32(0)),
);

/** A stream: a mutated good login, or pieces and random messages in any order. */
const startupStream = fc.oneof(
  fc.array(mutation, { maxLength: 5 }).map((ops) => mutate(GOOD_LOGIN, ops)),
  fc.array(
    fc.oneof(
      LOGIN_PIECES,
      fc.tuple(fc.constantFrom(..."RSKZENvTDX"), fc.uint8Array({ maxLength: 24 })).map(([t, b]) =>
        msg(t, b)
      ),
      fc.uint8Array({ maxLength: 16 }),
    ),
    { maxLength: 6 },
  ).map(concat),
);

Deno.test("startup handshake: random and mutated server messages end in a documented error, never hang, never leak the password", async () => {
  await fc.assert(
    fc.asyncProperty(
      startupStream,
      fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 4 }),
      fc.boolean(),
      async (stream, cuts, plainAuthAllowed) => {
        const t = new FakeTransport(stream, cuts);
        const wire = new PgWire(t);
        try {
          await within(
            wire.startup(
              { user: "u", database: "d", password: PASSWORD, params: [], plainAuthAllowed },
              () => {},
            ),
            3000,
          );
        } catch (e) {
          assert.ok(STARTUP_ERRORS.some((c) => e instanceof c), `undocumented: ${e}`);
          assert.ok(!(e as Error).message.includes(PASSWORD));
        }
        // Allocation follows the bytes received, not the lengths announced.
        assert.ok(wire.reader.buf.length <= 1024 * 1024 + 4 * t.fed);
        const sent = new TextDecoder().decode(concat(t.written));
        if (!plainAuthAllowed) assert.ok(!sent.includes(PASSWORD), "password sent in clear");
      },
    ),
    { numRuns: 300 },
  );
});

const GOOD_RESULT = concat([
  msg("1", new Uint8Array()),
  msg("2", new Uint8Array()),
  msg("T", rowDescription(["a", "b"])),
  msg("D", dataRow(["1", null])),
  msg("D", dataRow(["22", "x"])),
  msg("C", enc.encode("SELECT 2\0")),
  msg("Z", enc.encode("I")),
]);

const STATEMENT_ERRORS = [ProtocolError, ConnectionLostError, PgServerError];

Deno.test("statement results: mutated and random server messages give rows or a documented error, never hang", async () => {
  const stream = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.array(mutation, { maxLength: 5 }).map((ops) => mutate(GOOD_RESULT, ops)),
    },
    {
      weight: 1,
      arbitrary: fc.array(
        fc.tuple(fc.constantFrom(..."12TDCZEnsI"), fc.uint8Array({ maxLength: 40 })).map(([t, b]) =>
          msg(t, b)
        ),
        { maxLength: 6 },
      ).map(concat),
    },
  );
  await fc.assert(
    fc.asyncProperty(
      stream,
      fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 4 }),
      async (bytes, cuts) => {
        const t = new FakeTransport(bytes, cuts);
        const wire = new PgWire(t);
        try {
          const stmt = await Statement.send(wire, "select $1", ["v"], 1000);
          const fields = await within(stmt.description(), 3000);
          const rows = await within(stmt.all(), 3000);
          for (const row of rows) assert.ok(Array.isArray(row));
          assert.ok(Array.isArray(fields));
        } catch (e) {
          assert.ok(STATEMENT_ERRORS.some((c) => e instanceof c), `undocumented: ${e}`);
        }
        assert.ok(wire.reader.buf.length <= 1024 * 1024 + 4 * t.fed);
      },
    ),
    FUZZ,
  );
  // The clean stream gives its rows.
  const wire = new PgWire(new FakeTransport(GOOD_RESULT, [7]));
  const stmt = await Statement.send(wire, "select 1", [], 1000);
  assert.deepEqual((await stmt.description()).map((f) => f.name), ["a", "b"]);
  assert.deepEqual(await stmt.all(), [["1", null], ["22", "x"]]);
});

Deno.test("a 1 GiB length announced in a 5-byte header allocates nothing for it", async () => {
  const header = concat([enc.encode("D"), i32(1024 * 1024 * 1024 - 1)]);
  const t = new FakeTransport(concat([header, new Uint8Array(100_000)]), [4096]);
  const wire = new PgWire(t);
  await assert.rejects(wire.next(), ConnectionLostError);
  assert.ok(wire.reader.buf.length <= 1024 * 1024, `${wire.reader.buf.length}`);
});
