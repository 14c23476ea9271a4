/**
 * Property tests (fast-check, bounded runs) for the native MySQL driver's packet reader and row
 * parsers: framed payloads come back whole however the bytes are split; arbitrary bytes end in a
 * ProtocolError or a lost connection, never another exception, a hang, or a buffer larger than
 * the bytes received call for; and the row and column parsers reject garbage the same way.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/mysql_packet_fuzz_test.ts
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ConnectionLostError,
  PacketReader,
  PacketWriter,
  ProtocolError,
} from "../src/db/mysql/packet.ts";
import { parseBinaryRow, parseColumn, parseTextRow } from "../src/db/mysql/rows.ts";
import { mysqlRowPlan } from "../src/db/mysql_values.ts";
import type { Transport } from "../src/db/pg/transport.ts";
import { within } from "./support/within.ts";

/** A transport that hands out the given chunks, then the end of the stream. */
class ChunkTransport implements Transport {
  #chunks: Uint8Array[];
  received = 0;
  constructor(chunks: Uint8Array[]) {
    this.#chunks = chunks.slice();
  }
  read(buf: Uint8Array): Promise<number | null> {
    const c = this.#chunks.shift();
    if (c === undefined) return Promise.resolve(null);
    const n = Math.min(c.length, buf.length);
    buf.set(c.subarray(0, n));
    if (n < c.length) this.#chunks.unshift(c.subarray(n));
    this.received += n;
    return Promise.resolve(n);
  }
  write(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
}

/** Splits bytes at the given cut points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    if (p > prev) out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

Deno.test("framed payloads come back whole however the stream is split", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 600 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      async (payloads, cuts) => {
        const parts: Uint8Array[] = [];
        let seq = 0;
        const w = new PacketWriter();
        for (const p of payloads) {
          w.bytes(p);
          const framed = w.frame(seq);
          seq = framed.seq;
          parts.push(framed.bytes);
        }
        const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          all.set(p, o);
          o += p.length;
        }
        const r = new PacketReader(new ChunkTransport(split(all, cuts)), 16);
        for (const p of payloads) {
          await r.next();
          assert.deepEqual(r.buf.slice(r.start, r.end), p);
        }
        await assert.rejects(r.next(), ConnectionLostError);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("a payload of 16 MiB and more is joined from its packets", async () => {
  const big = new Uint8Array(0xffffff + 5).map((_, i) => i & 0xff);
  const w = new PacketWriter();
  w.bytes(big);
  const { bytes, seq } = w.frame(3);
  assert.equal(seq, 5);
  const r = new PacketReader(new ChunkTransport(split(bytes, [70_000, 9_000_000, 16_777_218])));
  r.seq = 3;
  await r.next();
  assert.equal(r.end - r.start, big.length);
  assert.deepEqual(r.buf.subarray(r.start, r.end), big);
});

Deno.test("arbitrary bytes: only protocol errors or a lost connection, memory bounded", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 3000 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      async (bytes, cuts) => {
        const t = new ChunkTransport(split(bytes, cuts));
        const r = new PacketReader(t, 64);
        await within(
          (async () => {
            for (let i = 0; i < 10_000; i++) {
              try {
                await r.next();
              } catch (e) {
                assert.ok(
                  e instanceof ProtocolError || e instanceof ConnectionLostError,
                  String(e),
                );
                return;
              }
            }
            throw new Error("the reader never stopped");
          })(),
          5000,
        );
        // The buffer follows the bytes received, not the lengths announced.
        assert.ok(r.buf.length <= Math.max(64, 2 * t.received + 2 * 65536), `${r.buf.length}`);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("row and column parsers reject garbage with ProtocolError only", () => {
  const column = {
    name: "c",
    columnType: 253,
    flags: 0,
    characterSet: 45,
    decimals: 0,
  };
  const types = [1, 2, 3, 4, 5, 8, 10, 11, 12, 246, 252, 253, 16];
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }),
      fc.array(fc.constantFrom(...types), { minLength: 1, maxLength: 6 }),
      fc.boolean(),
      (bytes, colTypes, typed) => {
        const cols = colTypes.map((t) => ({ ...column, columnType: t, characterSet: 63 }));
        const plans = mysqlRowPlan(cols, typed ? "typed" : "text");
        for (
          const f of [
            () => parseTextRow(bytes, 0, bytes.length, plans),
            () => parseBinaryRow(bytes, 0, bytes.length, cols, plans),
            () => parseColumn(bytes, 0, bytes.length, typed),
          ]
        ) {
          try {
            f();
          } catch (e) {
            // Decimal rejects text that is not a number: a value error, not a crash.
            if (e instanceof ProtocolError) continue;
            if (e instanceof Error && /decimal|bigint|syntax/i.test(e.message)) continue;
            throw e;
          }
        }
      },
    ),
    { numRuns: 500 },
  );
});
