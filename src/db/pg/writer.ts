/**
 * Frontend messages of the PostgreSQL protocol v3, encoded into one growable buffer so that a
 * statement (Parse, Bind, Describe, Execute, Sync) leaves in a single write.
 *
 * Layout (protocol "Message Formats"): a type byte, then an Int32 length that counts itself and
 * the body but not the type byte. The startup-phase messages (StartupMessage, SSLRequest,
 * CancelRequest) have no type byte.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Protocol version 3.0 as sent in the StartupMessage. */
const PROTOCOL_3_0 = 196608;
/** SSLRequest code: 1234 in the high 16 bits, 5679 in the low 16 bits. */
const SSL_REQUEST_CODE = 80877103;

/**
 * Builds frontend messages; {@link MessageWriter.take} hands out what was built and starts over.
 *
 * @example
 * ```ts
 * import { MessageWriter } from "./writer.ts";
 * const w = new MessageWriter();
 * w.query("select 1");
 * console.log(w.take().length); // 14
 * ```
 */
export class MessageWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  /** Where the length of the message being built goes. */
  #lengthAt = 0;

  /**
   * An empty writer.
   *
   * @param size Initial capacity in bytes.
   */
  constructor(size = 4096) {
    this.#buf = new Uint8Array(size);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** The bytes built so far (a copy), and the writer emptied. */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#pos);
    this.#pos = 0;
    return out;
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  #begin(type: number | null): void {
    this.#ensure(5);
    if (type !== null) this.#buf[this.#pos++] = type;
    this.#lengthAt = this.#pos;
    this.#pos += 4;
  }

  #end(): void {
    this.#view.setInt32(this.#lengthAt, this.#pos - this.#lengthAt);
  }

  #int16(v: number): void {
    this.#ensure(2);
    this.#view.setInt16(this.#pos, v);
    this.#pos += 2;
  }

  #int32(v: number): void {
    this.#ensure(4);
    this.#view.setInt32(this.#pos, v);
    this.#pos += 4;
  }

  /** A string without its terminator; returns the number of bytes written. */
  #text(s: string): number {
    this.#ensure(s.length * 3);
    const { written } = encoder.encodeInto(s, this.#buf.subarray(this.#pos));
    this.#pos += written;
    return written;
  }

  /** A NUL-terminated string. Protocol strings cannot hold NUL, so one inside is refused. */
  #cstring(s: string): void {
    if (s.includes("\0")) throw new TypeError("A protocol string cannot contain a NUL character");
    this.#text(s);
    this.#ensure(1);
    this.#buf[this.#pos++] = 0;
  }

  #bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  /** SSLRequest: asks the server whether it will speak TLS on this connection. */
  sslRequest(): this {
    this.#begin(null);
    this.#int32(SSL_REQUEST_CODE);
    this.#end();
    return this;
  }

  /** StartupMessage with protocol 3.0 and the given run-time parameters (in order). */
  startup(params: ReadonlyArray<readonly [string, string]>): this {
    this.#begin(null);
    this.#int32(PROTOCOL_3_0);
    for (const [k, v] of params) {
      this.#cstring(k);
      this.#cstring(v);
    }
    this.#ensure(1);
    this.#buf[this.#pos++] = 0;
    this.#end();
    return this;
  }

  /** PasswordMessage (cleartext or MD5 answer). */
  password(text: string): this {
    this.#begin(0x70); // 'p'
    this.#cstring(text);
    this.#end();
    return this;
  }

  /** SASLInitialResponse: the chosen mechanism and the client-first-message. */
  saslInitial(mechanism: string, data: Uint8Array): this {
    this.#begin(0x70);
    this.#cstring(mechanism);
    this.#int32(data.length);
    this.#bytes(data);
    this.#end();
    return this;
  }

  /** SASLResponse: the client-final-message. */
  saslResponse(data: Uint8Array): this {
    this.#begin(0x70);
    this.#bytes(data);
    this.#end();
    return this;
  }

  /** Query (simple protocol): one or more statements in one text. */
  query(sql: string): this {
    this.#begin(0x51); // 'Q'
    this.#cstring(sql);
    this.#end();
    return this;
  }

  /** Parse into the unnamed statement, leaving every parameter type to the server. */
  parse(sql: string): this {
    this.#begin(0x50); // 'P'
    this.#cstring("");
    this.#cstring(sql);
    this.#int16(0);
    this.#end();
    return this;
  }

  /**
   * Bind the unnamed statement to the unnamed portal: every parameter in text format (null for
   * SQL NULL), every result column in text format.
   */
  bind(params: ReadonlyArray<string | null>): this {
    this.#begin(0x42); // 'B'
    this.#cstring("");
    this.#cstring("");
    this.#int16(0); // all parameters in text format
    this.#int16(params.length);
    for (const p of params) {
      if (p === null) {
        this.#int32(-1);
        continue;
      }
      this.#ensure(4);
      const at = this.#pos;
      this.#pos += 4;
      const n = this.#text(p);
      this.#view.setInt32(at, n);
    }
    this.#int16(0); // all results in text format
    this.#end();
    return this;
  }

  /** Describe the unnamed portal (answers RowDescription or NoData). */
  describePortal(): this {
    this.#begin(0x44); // 'D'
    this.#ensure(2);
    this.#buf[this.#pos++] = 0x50; // 'P'
    this.#buf[this.#pos++] = 0;
    this.#end();
    return this;
  }

  /** Execute the unnamed portal for all its rows. */
  execute(): this {
    this.#begin(0x45); // 'E'
    this.#cstring("");
    this.#int32(0);
    this.#end();
    return this;
  }

  /** Sync: ends the extended-protocol exchange; the server answers ReadyForQuery. */
  sync(): this {
    this.#begin(0x53); // 'S'
    this.#end();
    return this;
  }

  /** CopyFail: refuses a COPY FROM STDIN the server started. */
  copyFail(reason: string): this {
    this.#begin(0x66); // 'f'
    this.#cstring(reason);
    this.#end();
    return this;
  }

  /** Terminate: the polite end of a session. */
  terminate(): this {
    this.#begin(0x58); // 'X'
    this.#end();
    return this;
  }
}
