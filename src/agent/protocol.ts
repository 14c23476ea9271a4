/**
 * What crosses the agent's socket. A request is one JSON line (the session token, an operation
 * and its arguments); the answer is a sequence of frames, each one type byte, a 4-byte big-endian
 * length and the payload: `D` bytes of output, `E` an error (JSON: code, message, hint) that
 * ends the answer, `O` success (JSON) that ends it, `U` "unavailable" (the agent is ending: the
 * client falls back to asking). Secrets never cross it: the agent runs the operation and sends
 * only its output (see docs/SECURITY.md, "Unlock agent").
 *
 * @module
 */

import type { ErrorCode } from "../errors.ts";

/** Protocol version; an agent refuses another. */
export const PROTOCOL_VERSION = 1;

/** Largest request line accepted (a statement and its parameters). */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/** A `query` request. */
export interface QueryRequest {
  op: "query";
  profile: string;
  sql: string;
  params: string[];
  format: "table" | "csv" | "tsv" | "json" | "ndjson";
  color: boolean;
  /** A one-time code for a profile that requires one (never the vault's: asked at unlock). */
  totp?: string;
}

/** `list` (the profiles, no secrets) and `show` (one profile, secrets masked). */
export type ProfileRequest = { op: "list" } | { op: "show"; profile: string };

/** A request as sent. */
export type AgentRequest =
  & { v: number; token: string }
  & (QueryRequest | ProfileRequest | { op: "ping" } | LockRequest);

/**
 * A `lock` request. `reason: "replaced"`: a newer agent of the home, already unlocked, ends this
 * one to take its place (recorded as the `agent.end` reason; an agent that does not know the field
 * records `lock`).
 */
export interface LockRequest {
  op: "lock";
  reason?: "replaced";
}

/** An error as sent in an `E` frame. */
export interface WireError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

/** Frame types. */
export const FRAME = { data: 0x44, error: 0x45, ok: 0x4f, unavailable: 0x55 } as const;

/**
 * Encodes one frame.
 *
 * @param type One of {@link FRAME}.
 * @param payload The payload.
 * @returns The frame's bytes.
 */
export function frame(type: number, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(5 + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

/** Reads frames from a stream of bytes. */
export class FrameReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);

  /** @param stream The connection's readable side. */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length < n) {
      const { value, done } = await this.#reader.read();
      if (done) return false;
      const next = new Uint8Array(this.#buf.length + value.length);
      next.set(this.#buf);
      next.set(value, this.#buf.length);
      this.#buf = next;
    }
    return true;
  }

  /**
   * The next frame, or undefined when the stream ended (at a frame boundary or not).
   */
  async next(): Promise<{ type: number; payload: Uint8Array } | undefined> {
    if (!await this.#fill(5)) return undefined;
    const len = new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(1);
    if (!await this.#fill(5 + len)) return undefined;
    const type = this.#buf[0]!;
    const payload = this.#buf.slice(5, 5 + len);
    this.#buf = this.#buf.subarray(5 + len);
    return { type, payload };
  }

  /** Releases the stream. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}
