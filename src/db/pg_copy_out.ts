/**
 * `COPY ... TO STDOUT` for npm `pg` as a submittable (the object `client.query()` accepts when it
 * has a `submit(connection)` method).
 *
 * While the statement runs, the submittable owns the socket's `'data'` events: it walks the
 * backend messages in one tight loop over each received buffer and copies CopyData payloads
 * straight into a large output buffer that goes to the sink when full. Every other message
 * (CopyOutResponse, CopyDone, CommandComplete, ErrorResponse, NoticeResponse, ParameterStatus,
 * NotificationResponse, ...) is handed, whole, to pg's own parser so the client keeps its usual
 * bookkeeping: pg reports the row count and any server error back through the `handle*` methods
 * below. At ReadyForQuery the socket goes back to pg before pg sees that message, so its query
 * queue moves on and the connection stays usable, also after a failed COPY.
 *
 * Backpressure: one full buffer may wait while the sink writes another; beyond that the socket is
 * paused until the sink catches up, so memory stays flat however slow the sink is.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** Bytes gathered before one call of the sink. */
export const DEFAULT_COPY_CHUNK_BYTES = 256 * 1024;

/** Full buffers allowed to wait while the sink writes; more pauses the socket. */
const MAX_WAITING = 1;

/** CopyData payloads shorter than this are copied byte by byte (cheaper than a subarray). */
const SMALL_COPY = 48;

const MSG_COPY_DATA = 0x64; // 'd'
const MSG_READY_FOR_QUERY = 0x5a; // 'Z'

type DataListener = (chunk: Buffer) => void;

/** The part of pg's socket (a node:net or node:tls socket) used here. */
interface WireSocket {
  listeners(event: "data"): DataListener[];
  on(event: "data", listener: DataListener): unknown;
  on(event: "close", listener: () => void): unknown;
  removeListener(event: "data", listener: DataListener): unknown;
  removeListener(event: "close", listener: () => void): unknown;
  emit(event: "data", chunk: Buffer): boolean;
  pause(): unknown;
  resume(): unknown;
}

/** The part of pg's Connection used here (pg's `Submittable` contract passes one to `submit`). */
interface WireConnection {
  stream: WireSocket;
  query(text: string): void;
  sendCopyFail(message: string): void;
}

/** Options for {@link CopyOut}. */
export interface CopyOutOptions {
  /** Size of the buffers handed to the sink (the last one may be shorter). */
  chunkBytes?: number;
}

/**
 * Runs one `COPY ... TO STDOUT` statement and feeds its data to a sink.
 *
 * @example
 * ```ts
 * const copy = new CopyOut("COPY (select 1) TO STDOUT", (chunk) => file.write(chunk));
 * client.query(copy);
 * const rows = await copy.done;
 * ```
 */
export class CopyOut {
  /** The statement sent to the server (simple query protocol). */
  readonly text: string;
  /**
   * Settles once the server is ready for the next statement and the sink has finished: with the
   * row count from CommandComplete, or with the server's error (a pg DatabaseError), the sink's
   * error, or the connection's error. After a sink error the COPY is cut off mid-stream and the
   * connection must be closed.
   */
  readonly done: Promise<number>;

  readonly #sink: (chunk: Uint8Array) => Promise<void>;
  readonly #chunkBytes: number;
  #resolve!: (rows: number) => void;
  #reject!: (e: unknown) => void;

  // Wiring.
  #socket: WireSocket | null = null;
  #pgOnData: DataListener | null = null;
  #attached = false;
  #paused = false;
  /** True while a message is being handed to pg's parser. */
  #forwarding = false;

  // Message parser state.
  readonly #header = new Uint8Array(5);
  #headerHave = 0;
  /** CopyData payload bytes still to come. */
  #dataLeft = 0;
  /** A non-CopyData message being gathered across buffers, with its header. */
  #message: Buffer | null = null;
  #messageHave = 0;

  // Output.
  #out: Uint8Array;
  #used = 0;
  #waiting: Uint8Array[] = [];
  #writing = false;

  // Outcome.
  #rowCount: number | null = null;
  #failure: { error: unknown } | null = null;
  /** Nothing more will come from the server for this statement. */
  #finished = false;
  /** The sink failed: stop everything. */
  #stopped = false;
  #settled = false;
  /** The server said ReadyForQuery and pg has the socket back. */
  #ready = false;

  /**
   * Prepares the statement; nothing is sent before `client.query()` submits it.
   *
   * @param text The complete `COPY ... TO STDOUT` statement.
   * @param sink Receives the data in order, one call at a time; each chunk is a fresh buffer the
   * sink may keep.
   */
  constructor(
    text: string,
    sink: (chunk: Uint8Array) => Promise<void>,
    options: CopyOutOptions = {},
  ) {
    this.text = text;
    this.#sink = sink;
    const size = options.chunkBytes ?? DEFAULT_COPY_CHUNK_BYTES;
    this.#chunkBytes = Number.isInteger(size) && size > 0 ? size : DEFAULT_COPY_CHUNK_BYTES;
    this.#out = new Uint8Array(this.#chunkBytes);
    this.done = new Promise<number>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Callers may attach their handler late; never report an unhandled rejection meanwhile.
    this.done.catch(() => {});
  }

  /**
   * Whether the connection can run another statement: true once the server finished this one
   * (also with an error). False after a sink failure, a protocol error or a lost connection: the
   * caller must close the connection then.
   */
  get reusable(): boolean {
    return this.#ready;
  }

  /** Called by pg when the statement's turn comes: takes the socket over and sends the query. */
  submit(connection: unknown): Error | undefined {
    const wire = connection as unknown as WireConnection;
    const socket = wire.stream;
    const listeners = socket.listeners("data");
    if (listeners.length !== 1) {
      return new Error(`Unexpected socket state for COPY (${listeners.length} data listeners)`);
    }
    this.#socket = socket;
    this.#pgOnData = listeners[0]!;
    socket.removeListener("data", this.#pgOnData);
    socket.on("data", this.#onData);
    socket.on("close", this.#onClose);
    this.#attached = true;
    wire.query(this.text);
    return undefined;
  }

  // -------------------------------------------------------------------------------------------
  // pg's callbacks (from messages handed to its parser, or from the client itself).

  /** CommandComplete: `COPY <n>`. */
  handleCommandComplete(msg: { text?: string }): void {
    const m = /^COPY (\d+)$/.exec(msg.text ?? "");
    if (m) this.#rowCount = Number(m[1]);
  }

  /**
   * A server error (handed over while parsing, ReadyForQuery follows) or a connection error
   * (from the client, nothing follows).
   */
  handleError(error: unknown): void {
    if (!this.#failure) this.#failure = { error };
    this.#waiting = []; // nothing more is written once the COPY failed
    if (!this.#forwarding) {
      // Not from a server message: the socket is gone, or the statement never got sent.
      this.#detach();
      this.#finished = true;
    }
    this.#maybeSettle();
  }

  /** ReadyForQuery: handled in the parser, which gives the socket back first. */
  handleReadyForQuery(): void {}

  /** A second COPY FROM STDIN in the same statement text: refuse it so the server moves on. */
  handleCopyInResponse(connection: unknown): void {
    (connection as unknown as WireConnection).sendCopyFail("COPY FROM STDIN is not supported");
  }

  /** Results of other statements in the same text carry nothing for a COPY: ignored. */
  handleRowDescription(): void {}
  /** Ignored (see {@link CopyOut.handleRowDescription}). */
  handleDataRow(): void {}
  /** Ignored (see {@link CopyOut.handleRowDescription}). */
  handleEmptyQuery(): void {}
  /** Ignored (see {@link CopyOut.handleRowDescription}). */
  handlePortalSuspended(): void {}
  /** Ignored (see {@link CopyOut.handleRowDescription}). */
  handleCopyData(): void {}

  // -------------------------------------------------------------------------------------------
  // The socket.

  readonly #onClose = (): void => {
    if (this.#finished) return;
    if (!this.#failure) {
      this.#failure = { error: new Error("Connection terminated unexpectedly during COPY") };
    }
    this.#waiting = [];
    this.#detach();
    this.#finished = true;
    this.#maybeSettle();
  };

  readonly #onData = (chunk: Buffer): void => {
    if (this.#stopped) return;
    try {
      this.#parse(chunk);
    } catch (e) {
      // A protocol violation: the connection cannot be trusted any more.
      this.#stop(e);
      return;
    }
    if (!this.#finished && !this.#paused && this.#waiting.length > MAX_WAITING) {
      this.#paused = true;
      this.#socket?.pause();
    }
  };

  /** Walks the messages in one received buffer. */
  #parse(chunk: Buffer): void {
    const len = chunk.length;
    const header = this.#header;
    let out = this.#out;
    let used = this.#used;
    let cap = out.length;
    let i = 0;
    while (i < len) {
      // The rest of a CopyData payload (begun in an earlier buffer, or larger than the space left).
      if (this.#dataLeft > 0) {
        let n = len - i;
        if (n > this.#dataLeft) n = this.#dataLeft;
        if (this.#failure) {
          // No data follows an error, but stay in step with the stream if some does.
          i += n;
          this.#dataLeft -= n;
          continue;
        }
        if (n > cap - used) n = cap - used;
        out.set(chunk.subarray(i, i + n), used);
        used += n;
        i += n;
        this.#dataLeft -= n;
        if (used === cap) {
          this.#used = used;
          this.#flushFull();
          out = this.#out;
          used = 0;
          cap = out.length;
        }
        continue;
      }
      // The rest of another message.
      if (this.#message) {
        const msg = this.#message;
        let n = len - i;
        if (n > msg.length - this.#messageHave) n = msg.length - this.#messageHave;
        msg.set(chunk.subarray(i, i + n), this.#messageHave);
        this.#messageHave += n;
        i += n;
        if (this.#messageHave < msg.length) break;
        this.#message = null;
        this.#used = used;
        if (this.#deliver(msg, chunk, i)) return;
        out = this.#out;
        used = this.#used;
        cap = out.length;
        continue;
      }
      // A message header: type byte and length (which counts itself, not the type).
      let type: number;
      let size: number;
      let headerInChunk: boolean;
      if (this.#headerHave === 0 && len - i >= 5) {
        type = chunk[i]!;
        size = ((chunk[i + 1]! << 24) | (chunk[i + 2]! << 16) | (chunk[i + 3]! << 8) |
          chunk[i + 4]!) >>> 0;
        i += 5;
        headerInChunk = true;
      } else {
        while (this.#headerHave < 5 && i < len) header[this.#headerHave++] = chunk[i++]!;
        if (this.#headerHave < 5) break;
        this.#headerHave = 0;
        type = header[0]!;
        size = ((header[1]! << 24) | (header[2]! << 16) | (header[3]! << 8) | header[4]!) >>> 0;
        headerInChunk = false;
      }
      if (size < 4) throw new Error(`Malformed message from the server (length ${size})`);
      const body = size - 4;

      if (type === MSG_COPY_DATA) {
        if (body <= len - i && body <= cap - used && !this.#failure) {
          if (body < SMALL_COPY) {
            for (let k = 0; k < body; k++) out[used + k] = chunk[i + k]!;
          } else {
            out.set(chunk.subarray(i, i + body), used);
          }
          used += body;
          i += body;
          if (used === cap) {
            this.#used = used;
            this.#flushFull();
            out = this.#out;
            used = 0;
            cap = out.length;
          }
        } else {
          this.#dataLeft = body;
        }
        continue;
      }

      // Anything else goes to pg whole.
      if (headerInChunk && body <= len - i) {
        const start = i - 5;
        i += body;
        this.#used = used;
        const msg = Buffer.from(chunk.buffer, chunk.byteOffset + start, 5 + body);
        if (this.#deliver(msg, chunk, i)) return;
        out = this.#out;
        used = this.#used;
        cap = out.length;
        continue;
      }
      const msg = Buffer.allocUnsafe(5 + body);
      msg[0] = type;
      msg.writeUInt32BE(size, 1);
      this.#message = msg;
      this.#messageHave = 5;
    }
    this.#used = used;
  }

  /**
   * Hands one whole message to pg. At ReadyForQuery the socket goes back to pg first, and what
   * follows in the buffer goes to whoever reads the socket next.
   *
   * @returns True when the statement is over and parsing must stop.
   */
  #deliver(msg: Buffer, chunk: Buffer, next: number): boolean {
    const type = msg[0];
    const pgOnData = this.#pgOnData!;
    if (type === MSG_READY_FOR_QUERY) {
      const socket = this.#socket!;
      this.#detach();
      this.#finished = true;
      this.#ready = true;
      // The last, partial buffer goes out before `done` settles.
      if (!this.#failure && this.#used > 0) {
        this.#waiting.push(this.#out.subarray(0, this.#used));
        this.#used = 0;
      }
      pgOnData(msg);
      if (next < chunk.length) {
        socket.emit(
          "data",
          Buffer.from(chunk.buffer, chunk.byteOffset + next, chunk.length - next),
        );
      }
      this.#pump();
      this.#maybeSettle();
      return true;
    }
    this.#forwarding = true;
    try {
      pgOnData(msg);
    } finally {
      this.#forwarding = false;
    }
    return false;
  }

  /** Gives the socket back to pg. */
  #detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    const socket = this.#socket!;
    socket.removeListener("data", this.#onData);
    socket.removeListener("close", this.#onClose);
    socket.on("data", this.#pgOnData!);
    if (this.#paused) {
      this.#paused = false;
      socket.resume();
    }
  }

  // -------------------------------------------------------------------------------------------
  // The sink.

  #flushFull(): void {
    this.#waiting.push(this.#out);
    this.#out = new Uint8Array(this.#chunkBytes);
    this.#used = 0;
    this.#pump();
  }

  #pump(): void {
    if (this.#writing || this.#stopped || this.#waiting.length === 0) return;
    const chunk = this.#waiting.shift()!;
    this.#writing = true;
    let p: Promise<void>;
    try {
      p = this.#sink(chunk);
    } catch (e) {
      p = Promise.reject(e);
    }
    Promise.resolve(p).then(
      () => {
        this.#writing = false;
        this.#pump();
        if (this.#paused && this.#waiting.length <= MAX_WAITING) {
          this.#paused = false;
          this.#socket?.resume();
        }
        this.#maybeSettle();
      },
      (e) => {
        this.#writing = false;
        this.#stop(e);
      },
    );
  }

  /**
   * Ends the COPY from this side (sink failure or protocol error): data is no longer read and the
   * connection must be closed by the caller.
   */
  #stop(error: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#waiting = [];
    this.#failure = { error };
    if (this.#attached && !this.#paused) {
      this.#paused = true;
      this.#socket?.pause();
    }
    this.#finished = true;
    this.#maybeSettle();
  }

  #maybeSettle(): void {
    if (this.#settled || !this.#finished || this.#writing) return;
    if (!this.#failure && this.#waiting.length > 0) return;
    this.#settled = true;
    if (this.#failure) this.#reject(this.#failure.error);
    else this.#resolve(this.#rowCount ?? 0);
  }
}
