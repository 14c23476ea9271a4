/**
 * CSV straight from text-protocol row packets, for `copyCsv`: the bytes of each value go from the
 * reader's buffer into the output chunk without becoming JS strings, quoted by the rule of
 * ../output/csv.ts (`csvField`), so the result is byte for byte what the row formatter writes for
 * the same rows (the test suite compares the two). Only binary and BIT columns, whose text form
 * is computed, pass through strings.
 *
 * @module
 */

import { ProtocolError } from "./packet.ts";
import type { ColumnPlan } from "../mysql_values.ts";
import { csvField } from "../output/csv.ts";
import { tsvField } from "../output/tsv.ts";

const encoder = new TextEncoder();
const QUOTE = 0x22, COMMA = 0x2c, CR = 0x0d, LF = 0x0a, TAB = 0x09;
/** The letter after the backslash for each byte TSV escapes (by byte value). */
const TSV_ESCAPES: Readonly<Record<number, number>> = {
  0x5c: 0x5c, // \\
  0x08: 0x62, // \b
  0x09: 0x74, // \t
  0x0a: 0x6e, // \n
  0x0b: 0x76, // \v
  0x0c: 0x66, // \f
  0x0d: 0x72, // \r
};

/** An output buffer handed to the sink in chunks of about `chunkBytes`. */
export class CsvOut {
  #buf: Uint8Array;
  #len = 0;
  readonly #chunkBytes: number;
  readonly #sink: (chunk: Uint8Array) => Promise<void>;

  /**
   * An output buffer.
   *
   * @param sink Receives the chunks (awaited: backpressure).
   * @param chunkBytes Bytes per chunk.
   */
  constructor(sink: (chunk: Uint8Array) => Promise<void>, chunkBytes: number) {
    this.#sink = sink;
    this.#chunkBytes = chunkBytes;
    this.#buf = new Uint8Array(chunkBytes + 1024);
  }

  /** Whether a chunk is due. */
  get full(): boolean {
    return this.#len >= this.#chunkBytes;
  }

  /** Makes room for `n` more bytes. */
  room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** Appends text. */
  text(s: string): void {
    const b = encoder.encode(s);
    this.room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /**
   * Appends one text value's bytes as a CSV field (see `csvField`).
   *
   * @param src The buffer holding the value.
   * @param p Its first byte.
   * @param len Its length.
   * @param single Whether the set has one column (then `\.` is quoted).
   */
  field(src: Uint8Array, p: number, len: number, single: boolean): void {
    if (len === 0) {
      this.room(2);
      this.#buf[this.#len++] = QUOTE;
      this.#buf[this.#len++] = QUOTE;
      return;
    }
    let quotes = -1;
    for (let i = p, end = p + len; i < end; i++) {
      const c = src[i]!;
      if (c === QUOTE || c === COMMA || c === CR || c === LF) {
        quotes = i;
        break;
      }
    }
    if (quotes < 0 && single && len === 2 && src[p] === 0x5c && src[p + 1] === 0x2e) quotes = p;
    if (quotes < 0) {
      this.room(len);
      this.#buf.set(src.subarray(p, p + len), this.#len);
      this.#len += len;
      return;
    }
    this.room(2 * len + 2);
    const out = this.#buf;
    let o = this.#len;
    out[o++] = QUOTE;
    for (let i = p, end = p + len; i < end; i++) {
      const c = src[i]!;
      out[o++] = c;
      if (c === QUOTE) out[o++] = QUOTE;
    }
    out[o++] = QUOTE;
    this.#len = o;
  }

  /**
   * Appends one text value's bytes as a TSV field (see `tsvField`): backslash, backspace, tab,
   * LF, vertical tab, form feed and CR escaped with a backslash.
   *
   * @param src The buffer holding the value.
   * @param p Its first byte.
   * @param len Its length.
   */
  tsvField(src: Uint8Array, p: number, len: number): void {
    this.room(2 * len);
    const out = this.#buf;
    let o = this.#len;
    for (let i = p, end = p + len; i < end; i++) {
      const c = src[i]!;
      if (c <= 0x0d || c === 0x5c) {
        const e = TSV_ESCAPES[c];
        if (e !== undefined) {
          out[o++] = 0x5c;
          out[o++] = e;
          continue;
        }
      }
      out[o++] = c;
    }
    this.#len = o;
  }

  /** Appends one byte. */
  byte(b: number): void {
    this.room(1);
    this.#buf[this.#len++] = b;
  }

  /** Hands what is buffered to the sink. */
  async flush(): Promise<void> {
    if (this.#len === 0) return;
    const chunk = this.#buf.slice(0, this.#len);
    this.#len = 0;
    await this.#sink(chunk);
  }
}

/**
 * Appends one text-protocol row as a CSV record (or, with `tsv`, a TSV line).
 *
 * @param out The output.
 * @param buf The packet's buffer.
 * @param start First byte of the row.
 * @param end One past its last byte.
 * @param plans The columns' text-mode plans.
 * @param tsv TSV instead of CSV.
 * @throws {ProtocolError} For a malformed row.
 */
export function csvRecord(
  out: CsvOut,
  buf: Uint8Array,
  start: number,
  end: number,
  plans: readonly ColumnPlan[],
  tsv = false,
): void {
  const n = plans.length;
  const single = n === 1;
  let p = start;
  for (let i = 0; i < n; i++) {
    if (i > 0) out.byte(tsv ? TAB : COMMA);
    if (p >= end) throw new ProtocolError("Row from the server cut short");
    let len = buf[p++]!;
    if (len === 0xfb) {
      // NULL: an empty unquoted CSV field, `\N` in TSV.
      if (tsv) {
        out.byte(0x5c);
        out.byte(0x4e);
      }
      continue;
    }
    if (len === 0xfc) {
      if (p + 2 > end) throw new ProtocolError("Row from the server cut short");
      len = buf[p]! | (buf[p + 1]! << 8);
      p += 2;
    } else if (len === 0xfd) {
      if (p + 3 > end) throw new ProtocolError("Row from the server cut short");
      len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
      p += 3;
    } else if (len === 0xfe) {
      if (p + 8 > end) throw new ProtocolError("Row from the server cut short");
      len = (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16)) + buf[p + 3]! * 0x1000000 +
        (buf[p + 4]! | (buf[p + 5]! << 8) | (buf[p + 6]! << 16) | (buf[p + 7]! << 24)) *
          0x100000000;
      p += 8;
    } else if (len === 0xff) {
      throw new ProtocolError("Malformed row from the server");
    }
    if (len > end - p || len < 0) throw new ProtocolError("Row value past the end of its packet");
    const plan = plans[i]!;
    if (plan.bytes) {
      const text = String(plan.convert(buf.subarray(p, p + len)));
      out.text(tsv ? tsvField(text) : csvField(text, single));
    } else if (tsv) {
      out.tsvField(buf, p, len);
    } else {
      out.field(buf, p, len, single);
    }
    p += len;
  }
  if (p !== end) throw new ProtocolError("Bytes after the last value of a row");
  out.byte(LF);
}
