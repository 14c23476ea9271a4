/**
 * Part of the SQL Server TEST DOUBLE (see tests/support/tds_double.ts): byte helpers and TDS
 * packet framing (MS-TDS 2.2.3). Not production code.
 *
 * @module
 */

/** TDS packet types used by the test double (MS-TDS 2.2.3.1.1). */
export const PacketType = {
  SQL_BATCH: 0x01,
  RPC: 0x03,
  TABULAR_RESULT: 0x04,
  ATTENTION: 0x06,
  LOGIN7: 0x10,
  SSPI: 0x11,
  PRELOGIN: 0x12,
} as const;

/** A growable little-endian byte writer. */
export class Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #len = 0;

  #grow(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  u8(v: number): this {
    this.#grow(1);
    this.#view.setUint8(this.#len++, v);
    return this;
  }
  u16(v: number): this {
    this.#grow(2);
    this.#view.setUint16(this.#len, v, true);
    this.#len += 2;
    return this;
  }
  u16be(v: number): this {
    this.#grow(2);
    this.#view.setUint16(this.#len, v, false);
    this.#len += 2;
    return this;
  }
  i16(v: number): this {
    this.#grow(2);
    this.#view.setInt16(this.#len, v, true);
    this.#len += 2;
    return this;
  }
  u32(v: number): this {
    this.#grow(4);
    this.#view.setUint32(this.#len, v, true);
    this.#len += 4;
    return this;
  }
  u32be(v: number): this {
    this.#grow(4);
    this.#view.setUint32(this.#len, v, false);
    this.#len += 4;
    return this;
  }
  i32(v: number): this {
    this.#grow(4);
    this.#view.setInt32(this.#len, v, true);
    this.#len += 4;
    return this;
  }
  i64(v: bigint): this {
    this.#grow(8);
    this.#view.setBigInt64(this.#len, v, true);
    this.#len += 8;
    return this;
  }
  u64(v: bigint): this {
    this.#grow(8);
    this.#view.setBigUint64(this.#len, v, true);
    this.#len += 8;
    return this;
  }
  f32(v: number): this {
    this.#grow(4);
    this.#view.setFloat32(this.#len, v, true);
    this.#len += 4;
    return this;
  }
  f64(v: number): this {
    this.#grow(8);
    this.#view.setFloat64(this.#len, v, true);
    this.#len += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.#grow(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }
  /** UTF-16LE text without a length. */
  ucs2(s: string): this {
    return this.bytes(ucs2(s));
  }
  /** B_VARCHAR: length in characters (1 byte) then UTF-16LE. */
  bVarchar(s: string): this {
    return this.u8(s.length).ucs2(s);
  }
  /** US_VARCHAR: length in characters (2 bytes) then UTF-16LE. */
  usVarchar(s: string): this {
    return this.u16(s.length).ucs2(s);
  }
  /** A copy of the bytes written. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** A little-endian byte reader over one message. */
export class Reader {
  readonly #view: DataView;
  pos = 0;

  constructor(readonly buf: Uint8Array) {
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }
  u8(): number {
    return this.#view.getUint8(this.pos++);
  }
  u16(): number {
    const v = this.#view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u16be(): number {
    const v = this.#view.getUint16(this.pos, false);
    this.pos += 2;
    return v;
  }
  u32(): number {
    const v = this.#view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    const v = this.#view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i16(): number {
    const v = this.#view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i64(): bigint {
    const v = this.#view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(): bigint {
    const v = this.#view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  f32(): number {
    const v = this.#view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(): number {
    const v = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Uint8Array {
    if (n > this.remaining) throw new Error("TDS double: message too short");
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  ucs2(chars: number): string {
    return fromUcs2(this.bytes(chars * 2));
  }
  bVarchar(): string {
    return this.ucs2(this.u8());
  }
}

/** UTF-16LE bytes of a string. */
export function ucs2(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[2 * i] = c & 0xff;
    out[2 * i + 1] = c >> 8;
  }
  return out;
}

/** A string from UTF-16LE bytes. */
export function fromUcs2(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i + 1 < b.length; i += 2) s += String.fromCharCode(b[i]! | (b[i + 1]! << 8));
  return s;
}

/** Splits a message into TDS packets of at most `size` bytes (header included). */
export function packets(type: number, payload: Uint8Array, size = 4096): Uint8Array {
  const body = size - 8;
  const count = Math.max(1, Math.ceil(payload.length / body));
  const out = new Uint8Array(payload.length + count * 8);
  let o = 0;
  for (let i = 0; i < count; i++) {
    const chunk = payload.subarray(i * body, (i + 1) * body);
    const len = chunk.length + 8;
    out[o] = type;
    out[o + 1] = i === count - 1 ? 0x01 : 0x00; // EOM on the last packet
    out[o + 2] = len >> 8;
    out[o + 3] = len & 0xff;
    out[o + 4] = 0;
    out[o + 5] = 0;
    out[o + 6] = (i + 1) & 0xff;
    out[o + 7] = 0;
    out.set(chunk, o + 8);
    o += len;
  }
  return out;
}

/** A whole TDS message as received: its packet type and concatenated payload. */
export interface Message {
  type: number;
  payload: Uint8Array;
}

/** One packet as received. */
export interface Packet {
  type: number;
  eom: boolean;
  payload: Uint8Array;
}

/** Accumulates bytes and cuts them into TDS packets. */
export class PacketBuffer {
  #buf = new Uint8Array(0);

  /** Appends received bytes. */
  push(bytes: Uint8Array): void {
    const next = new Uint8Array(this.#buf.length + bytes.length);
    next.set(this.#buf);
    next.set(bytes, this.#buf.length);
    this.#buf = next;
  }

  /** The first byte waiting, if any (to tell a TDS header from a raw TLS record). */
  peek(): number | undefined {
    return this.#buf[0];
  }

  /** Takes every byte waiting. */
  takeAll(): Uint8Array {
    const b = this.#buf;
    this.#buf = new Uint8Array(0);
    return b;
  }

  /** Takes one complete packet, or returns undefined. */
  take(): Packet | undefined {
    if (this.#buf.length < 8) return undefined;
    const len = (this.#buf[2]! << 8) | this.#buf[3]!;
    if (len < 8) throw new Error("TDS double: bad packet length");
    if (this.#buf.length < len) return undefined;
    const p = {
      type: this.#buf[0]!,
      eom: (this.#buf[1]! & 0x01) !== 0,
      payload: this.#buf.slice(8, len),
    };
    this.#buf = this.#buf.slice(len);
    return p;
  }
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
