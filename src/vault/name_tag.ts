/**
 * Record name tags (format 4, docs/FORMAT.md "Record table"): a keyed, truncated HMAC-SHA256 of a
 * profile's name, stored in clear in the record table so that a master-password reader finds a
 * profile by name without opening the profile index. The key is derived from the root key, which
 * API-key holders do not have, so to them a tag is 16 random-looking bytes; to anyone it reveals
 * only whether two records (of this vault, in any of its generations) have the same name.
 *
 * Synchronous (the JavaScript SHA-256 of src/sha256.ts): lookups by name are synchronous, and a
 * tag is two compressions of a short message.
 *
 * @module
 */

import { sha256 } from "../sha256.ts";
import { utf8 } from "./encoding.ts";
import { NAME_TAG_BYTES } from "./format.ts";

/** HMAC-SHA256 with one key, truncated to {@link NAME_TAG_BYTES}. */
export class NameTagger {
  readonly #inner: Uint8Array;
  readonly #outer: Uint8Array;

  /**
   * @param key The name-tag key (32 bytes, `K_tag` in docs/FORMAT.md).
   */
  constructor(key: Uint8Array) {
    if (key.length > 64) throw new Error("name-tag key too long");
    // RFC 2104: the key zero-padded to the block size, XORed with the two pads.
    this.#inner = new Uint8Array(64).fill(0x36);
    this.#outer = new Uint8Array(64).fill(0x5c);
    for (let i = 0; i < key.length; i++) {
      this.#inner[i]! ^= key[i]!;
      this.#outer[i]! ^= key[i]!;
    }
  }

  /**
   * The tag of a profile name: `HMAC-SHA256(K_tag, utf8(JSON(name)))` truncated, where a name
   * that is absent or not a string counts as `null`.
   *
   * @param name The profile's `name` member.
   * @returns {@link NAME_TAG_BYTES} bytes.
   */
  tag(name: unknown): Uint8Array<ArrayBuffer> {
    const msg = utf8(JSON.stringify(typeof name === "string" ? name : null));
    const a = new Uint8Array(64 + msg.length);
    a.set(this.#inner);
    a.set(msg, 64);
    const b = new Uint8Array(64 + 32);
    b.set(this.#outer);
    b.set(sha256(a), 64);
    return sha256(b).slice(0, NAME_TAG_BYTES);
  }

  /** Zeroes the pads (the key is derivable from them). */
  wipe(): void {
    this.#inner.fill(0);
    this.#outer.fill(0);
  }
}
