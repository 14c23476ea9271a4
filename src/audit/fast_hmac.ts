/**
 * HMAC-SHA256 (RFC 2104) for the verifier's hot loop, over hash-wasm's synchronous SHA-256.
 *
 * Why not a library HMAC: the chain changes key on every entry. WebCrypto needs an awaited
 * importKey and sign per entry, and node:crypto's createHmac costs ~10 us per call here; both
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
const CLOSE_BRACE = new Uint8Array([0x7d]); // "}"

/** A reusable HMAC-SHA256 engine; create one with {@link FastHmac.create}. */
export class FastHmac {
  readonly #h: IHasher;
  readonly #ipad = new Uint8Array(BLOCK);
  readonly #opad = new Uint8Array(BLOCK);

  private constructor(h: IHasher) {
    this.#h = h;
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
    this.#ipad.fill(0x36);
    this.#opad.fill(0x5c);
    for (let i = 0; i < key.length; i++) {
      this.#ipad[i]! ^= key[i]!;
      this.#opad[i]! ^= key[i]!;
    }
  }

  #outer(inner: Uint8Array): Uint8Array {
    return this.#h.init().update(this.#opad).update(inner).digest("binary");
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
    const h = this.#h.init().update(this.#ipad);
    for (const p of parts) h.update(p);
    return this.#outer(h.digest("binary"));
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
    const inner = this.#h.init().update(this.#ipad).update(prev).update(body).update(CLOSE_BRACE)
      .digest("binary");
    const mac = this.#outer(inner);
    const stepInner = this.#h.init().update(this.#ipad).update(STEP_LABEL).digest("binary");
    return { mac, next: this.#outer(stepInner) };
  }

  /**
   * The key step alone: `HMAC-SHA256(key, STEP_LABEL)`.
   *
   * @param key `A(n-1)`.
   * @returns `A(n)`.
   */
  next(key: Uint8Array): Uint8Array {
    return this.mac(key, STEP_LABEL);
  }
}
