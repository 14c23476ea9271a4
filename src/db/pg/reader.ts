/**
 * Backend messages read from a {@link Transport}, pull-based: bytes are read from the socket only
 * when the consumer asks for a message that is not buffered yet. A consumer that stops asking
 * stops the reading, so TCP backpressure holds the server back.
 *
 * One growable buffer with a start and an end offset: a read appends at the end, a message is
 * taken from the start, and the unread tail moves to the front only when the space behind it runs
 * short. No per-read concatenation, no per-message allocation. The buffer doubles only when it is
 * full of a message larger than it, so it stays within twice the bytes received: a length field
 * alone (up to {@link MAX_MESSAGE_BYTES}) allocates nothing.
 *
 * @module
 */

import type { Transport } from "./transport.ts";

/** Initial buffer size; it grows for larger messages. */
const INITIAL_SIZE = 512 * 1024;
/** Space wanted behind the data before a read: less, and the unread tail moves to the front. */
const MIN_READ = 64 * 1024;
/**
 * Largest message accepted. PostgreSQL builds each message in one allocation of at most 1 GiB, so
 * a longer length can only come from a broken or hostile peer, which must not make us allocate it.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024 * 1024;

/** The connection ended while a message was expected. */
export class ConnectionLostError extends Error {
  /** Node-style code, so the shared error mapping names the reason. */
  readonly code: string | undefined;
  /**
   * A lost connection.
   *
   * @param message What happened.
   * @param options The underlying error and its node-style code.
   */
  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ConnectionLostError";
    this.code = options.code;
  }
}

/** The server broke the protocol; the connection cannot be trusted any more. */
export class ProtocolError extends Error {
  /**
   * A protocol violation.
   *
   * @param message What the server sent that it should not have.
   */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/**
 * Reads whole backend messages. After {@link MessageReader.take} returns true, `type` holds the
 * message type and `buf[start..end)` its body, valid until the next `fill`.
 *
 * @example
 * ```ts ignore
 * const r = new MessageReader(transport);
 * while (!r.take()) await r.fill();
 * console.log(String.fromCharCode(r.type), r.end - r.start);
 * ```
 */
export class MessageReader {
  /** The buffer; the current message body is `buf[start..end)`. */
  buf: Uint8Array;
  /** The current message's type byte. */
  type = 0;
  /** Where the current message's body starts in {@link MessageReader.buf}. */
  start = 0;
  /** Where the current message's body ends in {@link MessageReader.buf}. */
  end = 0;
  #transport: Transport;
  /** Unread bytes are `buf[#head..#tail)`. */
  #head = 0;
  #tail = 0;
  /** A read started ahead (see {@link MessageReader.prefetch}), not yet awaited. */
  #pending: Promise<void> | null = null;
  /** Size of the message being gathered when it is larger than the buffer (0: none). */
  #wanted = 0;

  /**
   * A reader over a transport.
   *
   * @param transport Where the bytes come from.
   */
  constructor(transport: Transport) {
    this.#transport = transport;
    this.buf = new Uint8Array(INITIAL_SIZE);
  }

  /**
   * Takes the next message if it is wholly buffered.
   *
   * @returns True when `type`, `start` and `end` describe a new message.
   * @throws {ProtocolError} For a length below 4 or above {@link MAX_MESSAGE_BYTES}.
   */
  take(): boolean {
    const avail = this.#tail - this.#head;
    if (avail < 5) return false;
    const b = this.buf;
    const p = this.#head;
    const len = ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0;
    if (len < 4) throw new ProtocolError(`Malformed message from the server (length ${len})`);
    if (len > MAX_MESSAGE_BYTES) {
      throw new ProtocolError(`Message from the server too large (${len} bytes)`);
    }
    if (avail < len + 1) {
      // Grown before the next read, never under a read in flight.
      if (len + 1 > b.length) this.#wanted = len + 1;
      return false;
    }
    this.type = b[p]!;
    this.start = p + 5;
    this.end = p + 1 + len;
    this.#head = this.end;
    return true;
  }

  /** Whether unread bytes are buffered (a message or part of one). */
  get buffered(): boolean {
    return this.#tail > this.#head;
  }

  /**
   * Reads more bytes from the transport (one read, or the one already started ahead).
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
    // A message larger than the buffer: grow (doubling) only once the buffer is full of its
    // bytes, so memory follows what the server sent, not the length it announced.
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
   * Starts a read into the free space behind the data, if there is enough, so the bytes arrive
   * while the consumer is busy; {@link MessageReader.fill} then waits for it. Moves nothing, so
   * the current message stays valid. At most one buffer is read ahead: backpressure holds.
   */
  prefetch(): void {
    if (this.#pending || this.buf.length - this.#tail < MIN_READ) return;
    const p = this.#read();
    p.catch(() => {}); // reported by the fill() that awaits it
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

  /** Waits for the next message; see {@link MessageReader.take}. */
  async next(): Promise<number> {
    while (!this.take()) await this.fill();
    return this.type;
  }

  /** Makes room for a message of `size` bytes (type byte included). */
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
