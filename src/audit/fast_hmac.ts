/**
 * HMAC-SHA256 (RFC 2104) and the chain's key step for the verifier's hot loop and batched writes,
 * over the plain-JavaScript SHA-256 compression in sha256.ts.
 *
 * Why not a library HMAC: the chain changes key on every entry. WebCrypto needs an awaited
 * importKey and sign per entry; node:crypto and hash-wasm cost microseconds per call in crossing
 * into native code or WebAssembly and in copies, more than the dozen blocks an entry needs. Here
 * the pads and the outer hash's second block are built as words and nothing is allocated per
 * entry on the word-level paths ({@link FastHmac.macInto}, {@link FastHmac.nextInto}). The
 * construction is the textbook one for keys no longer than a block (ours are 32 bytes), and
 * tests/audit_test.ts checks it against node:crypto and the RFC 4231 vectors.
 *
 * @module
 */

import { SHA256_IV, Sha256Core } from "../sha256.ts";

/** The label of the chain's one-way key step (see chain.ts). */
export const STEP_LABEL: Uint8Array<ArrayBuffer> = new TextEncoder().encode(
  "hecate-audit-v1 next key",
);

const BLOCK = 64;
const IPAD = 0x36363636;
const OPAD = 0x5c5c5c5c;

/** Big-endian words of `b` (zero-padded to a multiple of 4 bytes). */
function wordsOf(b: Uint8Array, out: Int32Array): Int32Array {
  out.fill(0);
  for (let i = 0; i < b.length; i++) out[i >> 2]! |= b[i]! << (24 - 8 * (i & 3));
  return out;
}

/** A reusable HMAC-SHA256 engine; create one with {@link FastHmac.create}. */
export class FastHmac {
  readonly #core = new Sha256Core();
  readonly #s = new Int32Array(8);
  readonly #inner = new Int32Array(8);
  readonly #key = new Int32Array(16);
  readonly #out = new Int32Array(8);
  // The message after the inner pad, with room for its padding; grows for long messages.
  #msg = new Uint8Array(1024);
  readonly #label = wordsOf(STEP_LABEL, new Int32Array(6));

  /**
   * Makes an engine. Asynchronous for the callers' sake (it once instantiated WebAssembly).
   *
   * @returns A ready engine.
   */
  static create(): Promise<FastHmac> {
    return Promise.resolve(new FastHmac());
  }

  #room(n: number): Uint8Array {
    if (this.#msg.length < n) this.#msg = new Uint8Array(Math.max(n, this.#msg.length * 2));
    return this.#msg;
  }

  /** HMAC over `#msg[0..len)` with the key in `#key` (16 words), into `out` at `oo`. */
  #hmac(len: number, out: Int32Array, oo: number): void {
    const core = this.#core, w = core.w, s = this.#s, k = this.#key;
    s.set(SHA256_IV);
    for (let i = 0; i < 16; i++) w[i] = k[i]! ^ IPAD;
    core.compress(s);
    // Pad the message: 0x80, zeros, then the bit length (including the pad block) in 8 bytes.
    const total = (len + 9 + 63) & ~63;
    const m = this.#room(total);
    m[len] = 0x80;
    m.fill(0, len + 1, total - 4);
    const bits = (BLOCK + len) * 8;
    m[total - 4] = bits >>> 24;
    m[total - 3] = bits >>> 16;
    m[total - 2] = bits >>> 8;
    m[total - 1] = bits;
    for (let off = 0; off < total; off += 64) {
      core.load(m, off);
      core.compress(s);
    }
    const inner = this.#inner;
    inner.set(s);
    s.set(SHA256_IV);
    for (let i = 0; i < 16; i++) w[i] = k[i]! ^ OPAD;
    core.compress(s);
    // The outer message is the 32-byte inner digest: one block with its padding.
    for (let i = 0; i < 8; i++) w[i] = inner[i]!;
    w[8] = 0x80000000 | 0;
    for (let i = 9; i < 15; i++) w[i] = 0;
    w[15] = (BLOCK + 32) * 8;
    core.compress(s);
    for (let i = 0; i < 8; i++) out[oo + i] = s[i]!;
  }

  /**
   * The entry MAC on words, allocation-free: `HMAC(key, prev || body || "}")`.
   *
   * @param keys Holds the key as 8 big-endian words at `ko`.
   * @param ko Offset of the key in `keys`.
   * @param prev The previous MAC, 32 bytes.
   * @param body The line's bytes before `,"mac":"`.
   * @param out Receives the MAC as 8 big-endian words.
   */
  macInto(keys: Int32Array, ko: number, prev: Uint8Array, body: Uint8Array, out: Int32Array): void {
    const k = this.#key;
    for (let i = 0; i < 8; i++) k[i] = keys[ko + i]!;
    k.fill(0, 8);
    const len = prev.length + body.length + 1;
    const m = this.#room(len + 72);
    m.set(prev, 0);
    m.set(body, prev.length);
    m[len - 1] = 0x7d; // "}"
    this.#hmac(len, out, 0);
  }

  /**
   * The key step on words, allocation-free: `SHA-256(STEP_LABEL || key)` (see chain.ts).
   *
   * @param keys Holds `A(n-1)` as 8 big-endian words at `ko`.
   * @param ko Offset of the key in `keys`.
   * @param out Receives `A(n)` as 8 words at `oo` (may be `keys` itself).
   * @param oo Offset in `out`.
   */
  nextInto(keys: Int32Array, ko: number, out: Int32Array, oo: number): void {
    const core = this.#core, w = core.w, s = this.#s, label = this.#label;
    // 24 label bytes + 32 key bytes = 56: the padding spills into a second, constant block.
    s.set(SHA256_IV);
    for (let i = 0; i < 6; i++) w[i] = label[i]!;
    for (let i = 0; i < 8; i++) w[6 + i] = keys[ko + i]!;
    w[14] = 0x80000000 | 0;
    w[15] = 0;
    core.compress(s);
    w.fill(0, 0, 15);
    w[15] = 56 * 8;
    core.compress(s);
    for (let i = 0; i < 8; i++) out[oo + i] = s[i]!;
  }

  /**
   * HMAC-SHA256 of the concatenation of `parts`.
   *
   * @param key Up to 64 bytes.
   * @param parts The message, in pieces.
   * @returns The 32-byte tag.
   */
  mac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
    if (key.length > BLOCK) throw new RangeError("HMAC keys longer than a block are not used here");
    wordsOf(key, this.#key);
    const len = parts.reduce((a, p) => a + p.length, 0);
    const m = this.#room(len + 72);
    let at = 0;
    for (const p of parts) {
      m.set(p, at);
      at += p.length;
    }
    this.#hmac(len, this.#out, 0);
    return bytesOf(this.#out);
  }

  /**
   * One chain step for a verifier: the entry MAC and the next key.
   * The canonical bytes are `body || "}"` where `body` is the line up to its mac member.
   *
   * @param key `A(n-1)`, 32 bytes.
   * @param prev `mac(n-1)`.
   * @param body The line's bytes before `,"mac":"`.
   * @returns `mac(n)` and `A(n)`.
   */
  step(key: Uint8Array, prev: Uint8Array, body: Uint8Array): { mac: Uint8Array; next: Uint8Array } {
    const k = wordsOf(key, new Int32Array(8));
    const out = new Int32Array(8);
    this.macInto(k, 0, prev, body, out);
    const mac = bytesOf(out);
    this.nextInto(k, 0, k, 0);
    return { mac, next: bytesOf(k) };
  }

  /**
   * The key step: `SHA-256(STEP_LABEL || key)` (see chain.ts).
   *
   * @param key `A(n-1)`, 32 bytes.
   * @returns `A(n)`.
   */
  next(key: Uint8Array): Uint8Array {
    const k = wordsOf(key, new Int32Array(8));
    this.nextInto(k, 0, k, 0);
    return bytesOf(k);
  }
}

/**
 * Big-endian bytes of 8 words (a key or MAC).
 *
 * @param w The words.
 * @returns 32 bytes.
 */
export function bytesOf(w: Int32Array): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(w.length * 4);
  for (let i = 0; i < w.length; i++) {
    b[4 * i] = w[i]! >>> 24;
    b[4 * i + 1] = w[i]! >>> 16;
    b[4 * i + 2] = w[i]! >>> 8;
    b[4 * i + 3] = w[i]!;
  }
  return b;
}

/**
 * Big-endian words of a 32-byte key or MAC.
 *
 * @param b The bytes.
 * @returns 8 words.
 */
export function keyWords(b: Uint8Array): Int32Array {
  return wordsOf(b, new Int32Array(8));
}
