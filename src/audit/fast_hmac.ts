/**
 * HMAC-SHA256 (RFC 2104) and the chain's key step for the verifier's hot loop, over hash-wasm's
 * synchronous SHA-256.
 *
 * Why not a library HMAC: the chain changes key on every entry. WebCrypto needs an awaited
 * importKey and sign per entry, and node:crypto costs several microseconds per call here; both
 * stay far below the goal of verifying 200,000 entries/s. hash-wasm's own HMAC binds one key per
 * (asynchronously created) instance. The construction below is the textbook one for keys no
 * longer than a block (ours are 32 bytes), and tests/audit_chain_test.ts checks it against
 * node:crypto and the RFC 4231 vectors.
 *
 * @module
 */

import { createSHA256, type IHasher } from "hash-wasm";
import { STEP_LABEL } from "./chain.ts";

const BLOCK = 64;
const DIGEST = 32;

/** A reusable HMAC-SHA256 engine; create one with {@link FastHmac.create}. */
export class FastHmac {
  readonly #h: IHasher;
  // Each hash is fed one contiguous buffer: every update is a call into WebAssembly, and on a
  // busy machine the calls, not the compression function, dominate.
  #inner = new Uint8Array(BLOCK + DIGEST + 1024);
  readonly #outer = new Uint8Array(BLOCK + DIGEST);
  readonly #stepInput = new Uint8Array(STEP_LABEL.length + DIGEST);

  private constructor(h: IHasher) {
    this.#h = h;
    this.#stepInput.set(STEP_LABEL);
  }

  /**
   * Instantiates the WebAssembly SHA-256.
   *
   * @returns A ready engine.
   */
  static async create(): Promise<FastHmac> {
    return new FastHmac(await createSHA256());
  }

  #setKey(key: Uint8Array): void {
    if (key.length > BLOCK) throw new RangeError("HMAC keys longer than a block are not used here");
    const inner = this.#inner, outer = this.#outer;
    for (let i = 0; i < BLOCK; i++) {
      const k = i < key.length ? key[i]! : 0;
      inner[i] = k ^ 0x36;
      outer[i] = k ^ 0x5c;
    }
  }

  #hash(bytes: Uint8Array): Uint8Array {
    return this.#h.init().update(bytes).digest("binary");
  }

  #finish(innerDigest: Uint8Array): Uint8Array {
    this.#outer.set(innerDigest, BLOCK);
    return this.#hash(this.#outer);
  }

  #room(n: number): Uint8Array {
    if (this.#inner.length < n) {
      const bigger = new Uint8Array(Math.max(n, this.#inner.length * 2));
      bigger.set(this.#inner.subarray(0, BLOCK));
      this.#inner = bigger;
    }
    return this.#inner;
  }

  /**
   * HMAC-SHA256 of the concatenation of `parts`.
   *
   * @param key Up to 64 bytes.
   * @param parts The message, in pieces.
   * @returns The 32-byte tag.
   */
  mac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
    this.#setKey(key);
    const n = parts.reduce((a, p) => a + p.length, BLOCK);
    const buf = this.#room(n);
    let at = BLOCK;
    for (const p of parts) {
      buf.set(p, at);
      at += p.length;
    }
    return this.#finish(this.#hash(buf.subarray(0, n)));
  }

  /**
   * One chain step for a verifier: the entry MAC and the next key, sharing the key schedule.
   * The canonical bytes are `body || "}"` where `body` is the line up to its mac member.
   *
   * @param key `A(n-1)`.
   * @param prev `mac(n-1)`.
   * @param body The line's bytes before `,"mac":"`.
   * @returns `mac(n)` and `A(n)`.
   */
  step(key: Uint8Array, prev: Uint8Array, body: Uint8Array): { mac: Uint8Array; next: Uint8Array } {
    this.#setKey(key);
    const n = BLOCK + prev.length + body.length + 1;
    const buf = this.#room(n);
    buf.set(prev, BLOCK);
    buf.set(body, BLOCK + prev.length);
    buf[n - 1] = 0x7d; // "}"
    const mac = this.#finish(this.#hash(buf.subarray(0, n)));
    return { mac, next: this.next(key) };
  }

  /**
   * The key step: `SHA-256(STEP_LABEL || key)` (see chain.ts).
   *
   * @param key `A(n-1)`, 32 bytes.
   * @returns `A(n)`.
   */
  next(key: Uint8Array): Uint8Array {
    this.#stepInput.set(key, STEP_LABEL.length);
    return this.#hash(this.#stepInput);
  }
}
