/**
 * `COPY ... TO STDOUT` through the simple query protocol, its data gathered into large chunks for
 * a sink. The loop walks the buffered messages and copies CopyData payloads straight into the
 * chunk being filled; a full chunk goes to the sink while the next one fills. At most one sink
 * call runs at a time; when a second chunk is full before it ends, reading waits, so memory stays
 * flat however slow the sink is.
 *
 * Other messages of the statement text (results of other statements, notices, a second COPY's
 * header) are skipped; a COPY FROM STDIN is refused with CopyFail. A server error stops the data
 * and is reported once ReadyForQuery came (the session stays usable); a sink error stops at once
 * and leaves the session mid-stream (the caller must close it).
 *
 * @module
 */

import { Msg, parseCommandTag, parseError, type PgServerError } from "./backend.ts";
import { ProtocolError } from "./reader.ts";
import type { PgWire } from "./session.ts";

/** CopyData payloads shorter than this are copied byte by byte (cheaper than a subarray). */
const SMALL_COPY = 64;

/**
 * One `COPY ... TO STDOUT` run.
 *
 * @example
 * ```ts ignore
 * const copy = new CopyOut(wire, async (chunk) => await file.write(chunk), 256 * 1024);
 * const rows = await copy.run("COPY (select 1) TO STDOUT WITH (FORMAT csv)");
 * ```
 */
export class CopyOut {
  readonly #wire: PgWire;
  readonly #sink: (chunk: Uint8Array) => Promise<void>;
  readonly #chunkBytes: number;
  #reusable = false;

  /**
   * A COPY run on an idle session.
   *
   * @param wire The session (idle).
   * @param sink Receives the data in order, one call at a time; each chunk is a fresh buffer the
   * sink may keep. Every chunk but the last is exactly `chunkBytes` long.
   * @param chunkBytes Size of the chunks.
   */
  constructor(wire: PgWire, sink: (chunk: Uint8Array) => Promise<void>, chunkBytes: number) {
    this.#wire = wire;
    this.#sink = sink;
    this.#chunkBytes = chunkBytes;
  }

  /** Whether the session can run another statement (the server finished this one). */
  get reusable(): boolean {
    return this.#reusable;
  }

  /**
   * Sends the statement and streams its data into the sink.
   *
   * @param text The complete `COPY ... TO STDOUT` statement (simple protocol).
   * @returns The row count from the last `COPY n` tag.
   * @throws The server's error (session reusable), the sink's error, or the connection's.
   */
  async run(text: string): Promise<number> {
    const wire = this.#wire;
    wire.writer.query(text);
    await wire.send();
    const r = wire.reader;
    const size = this.#chunkBytes;
    let out = new Uint8Array(size);
    let used = 0;
    let rowCount: number | null = null;
    let serverError: PgServerError | null = null;
    let writing: Promise<void> | null = null;
    let sinkFailure: { error: unknown } | null = null;

    /** Hands a chunk to the sink once the previous call ended. */
    const emit = async (chunk: Uint8Array) => {
      if (writing) await writing;
      if (sinkFailure) throw sinkFailure.error;
      let p: Promise<void>;
      try {
        p = this.#sink(chunk);
      } catch (e) {
        p = Promise.reject(e);
      }
      writing = Promise.resolve(p).then(
        () => {
          writing = null;
        },
        (e) => {
          writing = null;
          sinkFailure ??= { error: e };
        },
      );
    };

    for (;;) {
      let ready = false;
      try {
        while (r.take()) {
          const type = r.type;
          if (type === Msg.CopyData) {
            if (serverError) continue;
            const buf = r.buf;
            let from = r.start;
            const to = r.end;
            while (from < to) {
              let n = to - from;
              if (n > size - used) n = size - used;
              if (n < SMALL_COPY) {
                for (let k = 0; k < n; k++) out[used + k] = buf[from + k]!;
              } else {
                out.set(buf.subarray(from, from + n), used);
              }
              used += n;
              from += n;
              if (used === size) {
                // Read on while the sink writes; the message body stays valid (a read ahead
                // only fills the free space behind the data).
                r.prefetch();
                await emit(out);
                out = new Uint8Array(size);
                used = 0;
              }
            }
            continue;
          }
          switch (type) {
            case Msg.CommandComplete: {
              const m = /^COPY (\d+)$/.exec(parseCommandTag(r.buf, r.start, r.end));
              if (m) rowCount = Number(m[1]);
              break;
            }
            case Msg.ErrorResponse:
              serverError ??= parseError(r.buf, r.start, r.end);
              break;
            case Msg.CopyInResponse:
              wire.writer.copyFail("COPY FROM STDIN is not supported");
              wire.send().catch(() => {}); // a failed write shows as a lost connection
              break;
            case Msg.ReadyForQuery:
              ready = true;
              break;
            case Msg.CopyOutResponse:
            case Msg.CopyDone:
            case Msg.RowDescription:
            case Msg.DataRow:
            case Msg.EmptyQueryResponse:
            case Msg.NoticeResponse:
            case Msg.ParameterStatus:
            case Msg.NotificationResponse:
              break;
            default:
              throw new ProtocolError(
                `Unexpected message during COPY (type ${String.fromCharCode(type)})`,
              );
          }
          if (ready) break;
        }
      } catch (e) {
        if (e instanceof ProtocolError) wire.close();
        throw e;
      }
      if (ready) break;
      try {
        await r.fill();
      } catch (e) {
        wire.dead = true;
        throw serverError ?? e;
      }
    }

    this.#reusable = true;
    if (!serverError && used > 0) await emit(out.subarray(0, used));
    if (writing) await writing;
    if (sinkFailure) throw (sinkFailure as { error: unknown }).error;
    if (serverError) throw serverError;
    return rowCount ?? 0;
  }
}
