/**
 * SHA-256 (FIPS 180-4) in plain JavaScript: the compression function for the audit verifier's hot
 * loop, and {@link sha256} for everything else that needs a synchronous digest (the audit writer's
 * chain, statement digests, token cache keys).
 *
 * Why our own: verifying the audit chain hashes three short messages per entry (the HMAC's inner
 * and outer hash and the key step). Per call, node:crypto and hash-wasm cost more in crossing into
 * native code or WebAssembly and copying than the few blocks cost to compress; a compression the
 * caller feeds words directly (no allocation, no copies, fixed blocks such as HMAC pads built as
 * words) does the whole entry faster. And the cron path must not load an npm package or a `node:`
 * module (either starts Deno's Node compatibility layer, tens of milliseconds per run; see
 * docs/PERFORMANCE.md), while WebCrypto's digest is asynchronous. Checked against node:crypto on
 * random inputs and the FIPS 180-4 vectors in tests/audit_fast_verify_test.ts.
 *
 * @module
 */

// deno-fmt-ignore
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** The initial hash value H(0). */
export const SHA256_IV: Int32Array = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

/**
 * One message schedule and the compression function. Fill `w[0..15]` with the block's big-endian
 * words (directly, or with {@link Sha256Core.load}), then call {@link Sha256Core.compress}.
 */
export class Sha256Core {
  /** The message schedule; the caller writes the block into its first 16 words. */
  readonly w: Int32Array = new Int32Array(64);

  /**
   * Loads one 64-byte block as big-endian words into `w[0..15]`.
   *
   * @param b The bytes.
   * @param off Where the block starts; 64 bytes must follow.
   */
  load(b: Uint8Array, off: number): void {
    const w = this.w;
    for (let i = 0; i < 16; i++, off += 4) {
      w[i] = (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
    }
  }

  /**
   * Compresses the block in `w[0..15]` into the hash state `s` (8 words), in place.
   *
   * @param s The chaining value, updated.
   */
  compress(s: Int32Array): void {
    const w = this.w;
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!, y = w[i - 2]!;
      w[i] = (w[i - 16]! + (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
        w[i - 7]! + (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10))) | 0;
    }
    let a = s[0]!, b_ = s[1]!, c = s[2]!, d = s[3]!, e = s[4]!, f = s[5]!, g = s[6]!, h = s[7]!;
    let t = 0;
    // Eight rounds per iteration, the variables renamed instead of shifted.
    for (let i = 0; i < 64; i += 8) {
      t = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
      d = (d + t) | 0;
      h = (t + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
        ((a & b_) ^ (a & c) ^ (b_ & c))) | 0;
      t = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) +
        ((d & e) ^ (~d & f)) + K[i + 1]! + w[i + 1]!) | 0;
      c = (c + t) | 0;
      g = (t + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) +
        ((h & a) ^ (h & b_) ^ (a & b_))) | 0;
      t = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) +
        ((c & d) ^ (~c & e)) + K[i + 2]! + w[i + 2]!) | 0;
      b_ = (b_ + t) | 0;
      f = (t + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) +
        ((g & h) ^ (g & a) ^ (h & a))) | 0;
      t =
        (e + (((b_ >>> 6) | (b_ << 26)) ^ ((b_ >>> 11) | (b_ << 21)) ^ ((b_ >>> 25) | (b_ << 7))) +
          ((b_ & c) ^ (~b_ & d)) + K[i + 3]! + w[i + 3]!) | 0;
      a = (a + t) | 0;
      e = (t + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) +
        ((f & g) ^ (f & h) ^ (g & h))) | 0;
      t = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) +
        ((a & b_) ^ (~a & c)) + K[i + 4]! + w[i + 4]!) | 0;
      h = (h + t) | 0;
      d = (t + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) +
        ((e & f) ^ (e & g) ^ (f & g))) | 0;
      t = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) +
        ((h & a) ^ (~h & b_)) + K[i + 5]! + w[i + 5]!) | 0;
      g = (g + t) | 0;
      c = (t + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) +
        ((d & e) ^ (d & f) ^ (e & f))) | 0;
      t = (b_ + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) +
        ((g & h) ^ (~g & a)) + K[i + 6]! + w[i + 6]!) | 0;
      f = (f + t) | 0;
      b_ = (t + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) +
        ((c & d) ^ (c & e) ^ (d & e))) | 0;
      t = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) +
        ((f & g) ^ (~f & h)) + K[i + 7]! + w[i + 7]!) | 0;
      e = (e + t) | 0;
      a =
        (t + (((b_ >>> 2) | (b_ << 30)) ^ ((b_ >>> 13) | (b_ << 19)) ^ ((b_ >>> 22) | (b_ << 10))) +
          ((b_ & c) ^ (b_ & d) ^ (c & d))) | 0;
    }
    s[0] = (s[0]! + a) | 0;
    s[1] = (s[1]! + b_) | 0;
    s[2] = (s[2]! + c) | 0;
    s[3] = (s[3]! + d) | 0;
    s[4] = (s[4]! + e) | 0;
    s[5] = (s[5]! + f) | 0;
    s[6] = (s[6]! + g) | 0;
    s[7] = (s[7]! + h) | 0;
  }
}

/**
 * SHA-256 of a message.
 *
 * @param data The message.
 * @returns The 32-byte digest.
 */
export function sha256(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const core = new Sha256Core();
  const s = Int32Array.from(SHA256_IV);
  const whole = data.length - (data.length % 64);
  for (let off = 0; off < whole; off += 64) {
    core.load(data, off);
    core.compress(s);
  }
  // The last bytes, 0x80, zeros, and the length in bits as a 64-bit big-endian number.
  const rest = data.length - whole;
  const tail = new Uint8Array(rest < 56 ? 64 : 128);
  tail.set(data.subarray(whole));
  tail[rest] = 0x80;
  new DataView(tail.buffer).setBigUint64(tail.length - 8, BigInt(data.length) * 8n);
  for (let off = 0; off < tail.length; off += 64) {
    core.load(tail, off);
    core.compress(s);
  }
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) view.setInt32(4 * i, s[i]!);
  return out;
}
