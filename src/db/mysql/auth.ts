/**
 * The password answers of the MySQL/MariaDB authentication plugins Hecate speaks:
 *
 * - `mysql_native_password`: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))).
 * - `caching_sha2_password` (MySQL): the fast path's SHA256(password) XOR
 *   SHA256(SHA256(SHA256(password)) + nonce); the full path sends the password itself, either
 *   over TLS or encrypted with the server's RSA key (RSA-OAEP with SHA-1, the password NUL-ended
 *   and XORed with the nonce first).
 * - `client_ed25519` (MariaDB): an Ed25519 signature of the nonce, made with the password in the
 *   place of the 32-byte seed (RFC 8032 hashes the seed with SHA-512; MariaDB hashes the password
 *   instead, whatever its length).
 *
 * SHA-1, SHA-256, SHA-512 and RSA-OAEP come from WebCrypto; Ed25519's point arithmetic from
 * `@noble/curves` (WebCrypto's Ed25519 takes only a 32-byte seed), imported only when a server
 * asks for `client_ed25519`, so other logins load no npm package.
 *
 * @module
 */

const encoder = new TextEncoder();

async function digest(alg: "SHA-1" | "SHA-256" | "SHA-512", ...parts: Uint8Array[]) {
  let total = 0;
  for (const p of parts) total += p.length;
  const all = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest(alg, all));
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
}

/**
 * The `mysql_native_password` answer.
 *
 * @param password The password (empty: an empty answer).
 * @param nonce The server's 20-byte nonce.
 * @returns The 20-byte answer.
 */
export async function nativePasswordAnswer(
  password: string,
  nonce: Uint8Array,
): Promise<Uint8Array> {
  if (password === "") return new Uint8Array(0);
  const h1 = await digest("SHA-1", encoder.encode(password));
  const h2 = await digest("SHA-1", h1);
  return xor(h1, await digest("SHA-1", nonce, h2));
}

/**
 * The `caching_sha2_password` fast-path answer.
 *
 * @param password The password (empty: an empty answer).
 * @param nonce The server's 20-byte nonce.
 * @returns The 32-byte answer.
 */
export async function cachingSha2Answer(
  password: string,
  nonce: Uint8Array,
): Promise<Uint8Array> {
  if (password === "") return new Uint8Array(0);
  const h1 = await digest("SHA-256", encoder.encode(password));
  const h2 = await digest("SHA-256", h1);
  return xor(h1, await digest("SHA-256", h2, nonce));
}

/** Little-endian bytes to a bigint. */
function leInt(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

/** A bigint below 2^256 to 32 little-endian bytes. */
function le32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/**
 * The `client_ed25519` answer: the Ed25519 signature (R || S, 64 bytes) of the nonce, with
 * SHA-512(password) as the expanded secret key.
 *
 * @param password The password.
 * @param nonce The server's 32-byte nonce.
 * @returns The 64-byte signature.
 */
export async function ed25519Answer(password: string, nonce: Uint8Array): Promise<Uint8Array> {
  const { ed25519 } = await import("@noble/curves/ed25519.js");
  const L = ed25519.Point.Fn.ORDER;
  const B = ed25519.Point.BASE;
  const h = await digest("SHA-512", encoder.encode(password));
  const a = h.slice(0, 32);
  a[0]! &= 248;
  a[31]! &= 127;
  a[31]! |= 64;
  const s = leInt(a) % L; // B has order L: the same point, and multiply wants a reduced scalar
  const pub = B.multiply(s).toBytes();
  const r = leInt(await digest("SHA-512", h.subarray(32), nonce)) % L;
  const R = B.multiply(r === 0n ? L : r).toBytes();
  const k = leInt(await digest("SHA-512", R, pub, nonce)) % L;
  const S = (r + k * s) % L;
  const sig = new Uint8Array(64);
  sig.set(R, 0);
  sig.set(le32(S), 32);
  return sig;
}

/**
 * The password for `caching_sha2_password`'s full path without TLS: the NUL-ended password
 * XORed with the nonce, encrypted with the server's RSA public key (RSA-OAEP, SHA-1).
 *
 * @param password The password.
 * @param nonce The server's 20-byte nonce.
 * @param publicKeyPem The server's RSA public key (PEM, `BEGIN PUBLIC KEY`).
 * @returns The ciphertext.
 * @throws {TypeError} When the key is not an RSA public key in PEM.
 */
export async function rsaPasswordAnswer(
  password: string,
  nonce: Uint8Array,
  publicKeyPem: string,
): Promise<Uint8Array> {
  const m = /-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----/.exec(
    publicKeyPem,
  );
  if (!m) throw new TypeError("the server's RSA key is not a PEM public key");
  const der = Uint8Array.from(atob(m[1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey(
    "spki",
    der,
    { name: "RSA-OAEP", hash: "SHA-1" },
    false,
    ["encrypt"],
  );
  const plain = xor(encoder.encode(password + "\0"), nonce);
  return new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, key, plain));
}

/** The public key of a `client_ed25519` password (what MariaDB stores), for tests and checks. */
export async function ed25519PublicKey(password: string): Promise<Uint8Array> {
  const { ed25519 } = await import("@noble/curves/ed25519.js");
  const h = await digest("SHA-512", encoder.encode(password));
  const a = h.slice(0, 32);
  a[0]! &= 248;
  a[31]! &= 127;
  a[31]! |= 64;
  return ed25519.Point.BASE.multiply(leInt(a) % ed25519.Point.Fn.ORDER).toBytes();
}
