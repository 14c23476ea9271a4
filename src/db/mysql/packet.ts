/**
 * MySQL client/server packets read from and written to a {@link Transport}.
 *
 * A packet is a 3-byte little-endian payload length, a 1-byte sequence number and the payload. A
 * payload of 16 MiB - 1 bytes or more travels as several packets, each full one followed by the
 * next (the last shorter, possibly empty); the reader joins them.
 *
 * The reader is pull-based like the PostgreSQL one (../pg/reader.ts): bytes are read only when the
 * consumer asks for a packet that is not buffered yet, so a consumer that stops asking holds the
 * server back through TCP. Its buffer grows only once it is full of a packet larger than it, so
 * memory follows the bytes received, never a length a peer announced; a logical packet above
 * {@link MAX_PAYLOAD_BYTES} is a protocol error. Sequence numbers are checked.
 *
 * @module
 */

import type { Transport } from "../pg/transport.ts";
import { ConnectionLostError, ProtocolError } from "../pg/reader.ts";

export { ConnectionLostError, ProtocolError };

/** The largest payload of one physical packet; a payload this long continues in the next. */
export const MAX_CHUNK = 0xffffff;
/**
 * The largest logical payload accepted: MySQL's own ceiling for `max_allowed_packet` (1 GiB).
 * A longer one can only come from a broken or hostile peer.
 */
export const MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024;
const INITIAL_SIZE = 256 * 1024;
const MIN_READ = 64 * 1024;

/**
 * Reads whole packets. After {@link PacketReader.take} returns true, `buf[start..end)` is the
 * payload, valid until the next `fill`.
 */
export class PacketReader {
  /** The buffer; the current payload is `buf[start..end)`. */
  buf: Uint8Array;
  /** Where the current payload starts. */
  start = 0;
  /** Where the current payload ends. */
  end = 0;
  /** The sequence number the next packet must carry. */
  seq = 0;
  #transport: Transport;
  #head = 0;
  #tail = 0;
  #wanted = 0;
  #pending: Promise<void> | null = null;
  /** A payload spread over several packets, gathered here (rare: 16 MiB or more). */
  #joined: Uint8Array[] | null = null;
  #joinedBytes = 0;

  /**
   * A reader over a transport.
   *
   * @param transport Where the bytes come from.
   * @param initialSize The first buffer's size (tests use small ones).
   */
  constructor(transport: Transport, initialSize = INITIAL_SIZE) {
    this.#transport = transport;
    this.buf = new Uint8Array(Math.max(16, initialSize));
  }

  /** Whether unread bytes are buffered. */
  get buffered(): boolean {
    return this.#tail > this.#head;
  }

  /**
   * Takes the next packet if it is wholly buffered.
   *
   * @returns True when `start` and `end` describe a new payload.
   * @throws {ProtocolError} For a wrong sequence number or a payload above the limit.
   */
  take(): boolean {
    for (;;) {
      const avail = this.#tail - this.#head;
      if (avail < 4) return false;
      const b = this.buf;
      const p = this.#head;
      const len = b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
      const seq = b[p + 3]!;
      if (seq !== this.seq) {
        throw new ProtocolError(
          `Packet out of order from the server (sequence ${seq}, expected ${this.seq})`,
        );
      }
      if (this.#joinedBytes + len > MAX_PAYLOAD_BYTES) {
        throw new ProtocolError(
          `Packet from the server too large (over ${MAX_PAYLOAD_BYTES} bytes)`,
        );
      }
      if (avail < len + 4) {
        if (len + 4 > b.length) this.#wanted = len + 4;
        return false;
      }
      this.seq = (seq + 1) & 0xff;
      this.#head = p + 4 + len;
      if (len === MAX_CHUNK) {
        // More follows: keep this part and go on with the next packet.
        (this.#joined ??= []).push(b.slice(p + 4, p + 4 + len));
        this.#joinedBytes += len;
        continue;
      }
      if (this.#joined) {
        const parts = this.#joined;
        parts.push(b.slice(p + 4, p + 4 + len));
        const total = this.#joinedBytes + len;
        this.#joined = null;
        this.#joinedBytes = 0;
        const whole = new Uint8Array(total);
        let o = 0;
        for (const part of parts) {
          whole.set(part, o);
          o += part.length;
        }
        // The joined payload gets its own buffer; the unread tail moves along with it.
        const rest = this.buf.subarray(this.#head, this.#tail);
        const next = new Uint8Array(Math.max(INITIAL_SIZE, total + rest.length + MIN_READ));
        next.set(whole, 0);
        next.set(rest, total);
        this.buf = next;
        this.start = 0;
        this.end = total;
        this.#head = total;
        this.#tail = total + rest.length;
        return true;
      }
      this.start = p + 4;
      this.end = p + 4 + len;
      return true;
    }
  }

  /**
   * Reads more bytes (one read, or the one started ahead).
   *
   * @throws {ConnectionLostError} At the end of the stream or when the read fails.
   */
  async fill(): Promise<void> {
    if (this.#pending) {
      const pending = this.#pending;
      this.#pending = null;
      await pending;
      return;
    }
    if (this.#wanted > this.buf.length && this.buf.length - (this.#tail - this.#head) < MIN_READ) {
      this.#grow(Math.min(this.#wanted, this.buf.length + 1));
    }
    this.#wanted = 0;
    if (this.#head === this.#tail) {
      this.#head = this.#tail = 0;
    } else if (this.buf.length - this.#tail < MIN_READ) {
      this.buf.copyWithin(0, this.#head, this.#tail);
      this.#tail -= this.#head;
      this.#head = 0;
    }
    await this.#read();
  }

  /**
   * Starts a read into the free space behind the data, so bytes arrive while the consumer works;
   * moves nothing, so the current payload stays valid. At most one buffer ahead.
   */
  prefetch(): void {
    if (this.#pending || this.buf.length - this.#tail < MIN_READ) return;
    const p = this.#read();
    p.catch(() => {});
    this.#pending = p;
  }

  async #read(): Promise<void> {
    let n: number | null;
    try {
      n = await this.#transport.read(this.buf.subarray(this.#tail));
    } catch (e) {
      const code = (e as { code?: unknown } | null)?.code;
      throw new ConnectionLostError(e instanceof Error ? e.message : String(e), {
        cause: e,
        ...(typeof code === "string" ? { code } : {}),
      });
    }
    if (n === null) throw new ConnectionLostError("Connection terminated unexpectedly");
    this.#tail += n;
  }

  /** Waits for the next packet; see {@link PacketReader.take}. */
  async next(): Promise<void> {
    while (!this.take()) await this.fill();
  }

  #grow(size: number): void {
    let cap = this.buf.length * 2;
    while (cap < size + MIN_READ) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(this.#head, this.#tail));
    this.#tail -= this.#head;
    this.#head = 0;
    this.buf = next;
  }
}

const encoder = new TextEncoder();

/** Builds one outgoing payload, then frames it into packets. */
export class PacketWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** Appends one byte. */
  u8(v: number): this {
    this.#room(1);
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }

  /** Appends a 16-bit little-endian integer. */
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }

  /** Appends a 32-bit little-endian integer. */
  u32(v: number): this {
    return this.u8(v).u8(v >>> 8).u8(v >>> 16).u8(v >>> 24);
  }

  /** Appends a 64-bit little-endian integer (two's complement for negatives). */
  u64(v: bigint): this {
    const x = BigInt.asUintN(64, v);
    this.u32(Number(x & 0xffffffffn));
    return this.u32(Number(x >> 32n));
  }

  /** Appends a float64. */
  f64(v: number): this {
    this.#room(8);
    new DataView(this.#buf.buffer).setFloat64(this.#len, v, true);
    this.#len += 8;
    return this;
  }

  /** Appends bytes. */
  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** Appends `n` zero bytes. */
  zeros(n: number): this {
    this.#room(n);
    this.#buf.fill(0, this.#len, this.#len + n);
    this.#len += n;
    return this;
  }

  /** Appends UTF-8 text without a terminator. */
  text(s: string): this {
    return this.bytes(encoder.encode(s));
  }

  /** Appends UTF-8 text and a NUL. */
  cstring(s: string): this {
    if (s.includes("\0")) throw new TypeError("text contains a NUL character");
    return this.text(s).u8(0);
  }

  /** Appends a length-encoded integer. */
  lenenc(n: number): this {
    if (n < 251) return this.u8(n);
    if (n < 0x10000) return this.u8(0xfc).u16(n);
    if (n < 0x1000000) return this.u8(0xfd).u8(n).u8(n >>> 8).u8(n >>> 16);
    return this.u8(0xfe).u64(BigInt(n));
  }

  /** Appends length-encoded bytes. */
  lenencBytes(b: Uint8Array): this {
    return this.lenenc(b.length).bytes(b);
  }

  /**
   * Frames the payload into packets from sequence `seq` on, and empties the writer.
   *
   * @param seq The first packet's sequence number.
   * @returns The bytes to send and the next sequence number.
   */
  frame(seq: number): { bytes: Uint8Array; seq: number } {
    const payload = this.#buf.subarray(0, this.#len);
    const chunks = Math.floor(payload.length / MAX_CHUNK) + 1;
    const out = new Uint8Array(payload.length + 4 * chunks);
    let o = 0;
    for (let i = 0; i < chunks; i++) {
      const part = payload.subarray(i * MAX_CHUNK, Math.min(payload.length, (i + 1) * MAX_CHUNK));
      out[o] = part.length & 0xff;
      out[o + 1] = (part.length >>> 8) & 0xff;
      out[o + 2] = (part.length >>> 16) & 0xff;
      out[o + 3] = seq;
      seq = (seq + 1) & 0xff;
      out.set(part, o + 4);
      o += 4 + part.length;
    }
    this.#len = 0;
    if (this.#buf.length > 1 << 20) this.#buf = new Uint8Array(256);
    return { bytes: out, seq };
  }
}

/** A cursor over one payload, for the parts read field by field (handshake, OK, ERR...). */
export class Cursor {
  pos: number;
  readonly buf: Uint8Array;
  readonly end: number;

  /**
   * A cursor over `buf[start..end)`.
   *
   * @param buf The bytes.
   * @param start First byte.
   * @param end One past the last byte.
   */
  constructor(buf: Uint8Array, start: number, end: number) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  #need(n: number): void {
    if (this.pos + n > this.end) throw new ProtocolError("Truncated packet from the server");
  }

  /** Bytes left. */
  get left(): number {
    return this.end - this.pos;
  }

  /** One byte. */
  u8(): number {
    this.#need(1);
    return this.buf[this.pos++]!;
  }

  /** A 16-bit little-endian integer. */
  u16(): number {
    this.#need(2);
    const b = this.buf, p = this.pos;
    this.pos += 2;
    return b[p]! | (b[p + 1]! << 8);
  }

  /** A 32-bit little-endian unsigned integer. */
  u32(): number {
    this.#need(4);
    const b = this.buf, p = this.pos;
    this.pos += 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  }

  /** `n` bytes (a view, valid while the buffer is). */
  bytes(n: number): Uint8Array {
    this.#need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Bytes up to a NUL (consumed); all the rest when there is none and `orEnd`. */
  cbytes(orEnd = false): Uint8Array {
    const i = this.buf.subarray(this.pos, this.end).indexOf(0);
    if (i < 0) {
      if (!orEnd) throw new ProtocolError("Unterminated string in a packet from the server");
      return this.bytes(this.left);
    }
    const out = this.buf.subarray(this.pos, this.pos + i);
    this.pos += i + 1;
    return out;
  }

  /** The rest of the payload. */
  rest(): Uint8Array {
    return this.bytes(this.left);
  }

  /**
   * A length-encoded integer; null for the NULL marker 0xfb.
   *
   * @throws {ProtocolError} For 0xff or a value beyond 2^53.
   */
  lenenc(): number | null {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfb) return null;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) {
      const lo = this.u16();
      return lo | (this.u8() << 16);
    }
    if (first === 0xfe) {
      const lo = this.u32();
      const hi = this.u32();
      if (hi > 0x1fffff) throw new ProtocolError("Length from the server out of range");
      return hi * 0x100000000 + lo;
    }
    throw new ProtocolError("Malformed length in a packet from the server");
  }

  /** Length-encoded bytes (a view). */
  lenencBytes(): Uint8Array {
    const n = this.lenenc();
    if (n === null) throw new ProtocolError("Unexpected NULL in a packet from the server");
    return this.bytes(n);
  }
}
