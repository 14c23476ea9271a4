/**
 * A buffering byte sink for streamed query output. Formatters push many small strings (one per
 * row); the sink merges them and awaits the underlying writer only once per large chunk, so the
 * hot loop stays synchronous and memory stays bounded by the threshold.
 *
 * @module
 */

/** Default flush threshold: 256 KiB. */
export const DEFAULT_SINK_THRESHOLD = 256 * 1024;

/** Options for {@link ChunkedSink}. */
export interface ChunkedSinkOptions {
  /**
   * Buffered size (bytes, with pending text counted in UTF-16 code units) above which a push
   * flushes. @default {262144}
   */
  threshold?: number;
}

const encoder = new TextEncoder();

/**
 * Buffers text and bytes and writes them to `write` in large chunks, in order.
 *
 * Usage in a hot loop: `const p = sink.push(s); if (p) await p;`. A push returns a promise only
 * when it started a flush; callers must await that promise before pushing again, which keeps
 * memory bounded and surfaces write errors.
 */
export class ChunkedSink {
  readonly #write: (chunk: Uint8Array) => Promise<void>;
  readonly #threshold: number;
  /** Pending strings not yet encoded. */
  #texts: string[] = [];
  /** Total length of `#texts` in UTF-16 code units. */
  #textLength = 0;
  /** Pending byte pieces (pending text is encoded into a piece before any bytes are added). */
  #pieces: Uint8Array[] = [];
  /** Total length of `#pieces` in bytes. */
  #pieceLength = 0;
  /** The write in progress (or the last one), so writes never overlap and stay in order. */
  #last: Promise<void> = Promise.resolve();
  #writes = 0;
  #bytes = 0;

  /**
   * Creates a sink.
   *
   * @param write Writes one whole chunk; the sink never calls it again before the returned
   * promise settles. The chunk is not reused by the sink afterwards.
   * @param options Buffering options.
   */
  constructor(write: (chunk: Uint8Array) => Promise<void>, options: ChunkedSinkOptions = {}) {
    this.#write = write;
    const threshold = options.threshold ?? DEFAULT_SINK_THRESHOLD;
    if (!Number.isFinite(threshold) || threshold < 1) {
      throw new RangeError(`ChunkedSink threshold must be a positive number, got ${threshold}`);
    }
    this.#threshold = threshold;
  }

  /** Number of calls made to the underlying writer so far. */
  get writeCount(): number {
    return this.#writes;
  }

  /** Number of bytes handed to the underlying writer so far. */
  get bytesWritten(): number {
    return this.#bytes;
  }

  /**
   * Appends text. Returns a promise (to await) only when the buffer passed the threshold and a
   * flush started; otherwise `undefined`.
   *
   * @param text Text to append (encoded as UTF-8).
   */
  push(text: string): Promise<void> | undefined {
    if (text.length === 0) return undefined;
    this.#texts.push(text);
    this.#textLength += text.length;
    if (this.#textLength + this.#pieceLength >= this.#threshold) return this.flush();
    return undefined;
  }

  /**
   * Appends raw bytes (not copied: do not modify them until the next flush settles). Returns a
   * promise only when a flush started.
   *
   * @param bytes Bytes to append.
   */
  pushBytes(bytes: Uint8Array): Promise<void> | undefined {
    if (bytes.length === 0) return undefined;
    this.#sealText();
    this.#pieces.push(bytes);
    this.#pieceLength += bytes.length;
    if (this.#pieceLength >= this.#threshold) return this.flush();
    return undefined;
  }

  /** Writes everything buffered so far and waits for all writes to finish. */
  flush(): Promise<void> {
    this.#sealText();
    const pieces = this.#pieces;
    const total = this.#pieceLength;
    this.#pieces = [];
    this.#pieceLength = 0;
    if (total > 0) {
      const chunk = pieces.length === 1 ? pieces[0]! : concat(pieces, total);
      this.#last = this.#last.then(() => {
        this.#writes++;
        this.#bytes += chunk.length;
        return this.#write(chunk);
      });
    }
    return this.#last;
  }

  /** Encodes pending text into one byte piece. */
  #sealText(): void {
    if (this.#textLength === 0) return;
    const text = this.#texts.length === 1 ? this.#texts[0]! : this.#texts.join("");
    this.#texts = [];
    this.#textLength = 0;
    const bytes = encoder.encode(text);
    this.#pieces.push(bytes);
    this.#pieceLength += bytes.length;
  }
}

function concat(pieces: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

/**
 * Adapts a `Deno.stdout`-like writer (whose `write` may write only part of a chunk) to the
 * whole-chunk writer {@link ChunkedSink} expects.
 *
 * @param writer Anything with `write(p): Promise<number>`, e.g. `Deno.stdout` or a `Deno.FsFile`.
 * @returns A function that writes the whole chunk.
 */
export function writeAllTo(
  writer: { write(p: Uint8Array): Promise<number> },
): (chunk: Uint8Array) => Promise<void> {
  return async (chunk) => {
    let at = 0;
    while (at < chunk.length) {
      at += await writer.write(at === 0 ? chunk : chunk.subarray(at));
    }
  };
}
