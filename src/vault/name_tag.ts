/**
 * Record name tags (format 4, docs/FORMAT.md "Record table"): a keyed, truncated HMAC-SHA256 of a
 * record's kind and name, stored in clear in the record table so that a master-password reader finds a
 * profile by name without opening the profile index. The key is derived from the root key, which
 * API-key holders do not have, so to them a tag is 16 random-looking bytes; to anyone it reveals
 * only whether two records (of this vault, in any of its generations) have the same kind and name.
 *
 * Synchronous (the JavaScript SHA-256 of src/sha256.ts): lookups by name are synchronous, and a
 * tag is two compressions of a short message.
 *
 * @module
 */

import { sha256 } from "../sha256.ts";
import { utf8 } from "./encoding.ts";
import { NAME_TAG_BYTES, type RecordKind } from "./format.ts";

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
   * The tag of a record's name: `HMAC-SHA256(K_tag, m)` truncated, where `m` is
   * `utf8(JSON(name))` for a profile and `utf8(JSON(["secret", name]))` for a stored secret, and a
   * name that is absent or not a string counts as `null`. The two message sets cannot meet (a
   * JSON string or `null` against a JSON array), so a secret's tag is never a profile's of the same
   * name: profiles and secrets are separate namespaces.
   *
   * @param name The record's `name` member.
   * @param kind The record's kind (`profile` by default).
   * @returns {@link NAME_TAG_BYTES} bytes.
   */
  tag(name: unknown, kind: RecordKind = "profile"): Uint8Array<ArrayBuffer> {
    const n = typeof name === "string" ? name : null;
    const msg = utf8(JSON.stringify(kind === "secret" ? ["secret", n] : n));
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
