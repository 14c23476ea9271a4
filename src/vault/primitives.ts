/**
 * The cryptographic steps of the vault, all through WebCrypto: AES-256-GCM sealing, PBKDF2 and
 * HKDF key derivation, HMAC-SHA256. No I/O, no clock: randomness is the platform CSPRNG.
 *
 * Sealed layout: `nonce (12 bytes) || ciphertext || tag (16 bytes)`. Every seal draws a fresh
 * random 96-bit nonce; with one key sealing at most a few thousand messages over a vault's life
 * (each record and slot has its own key, re-made on rotation), the random-nonce collision bound
 * of NIST SP 800-38D (2^32 messages per key) is never approached.
 *
 * @module
 */

import { concatBytes, toBase64Url } from "./encoding.ts";

/** Bytes in every symmetric key (AES-256, HMAC-SHA256 keys). */
export const KEY_BYTES = 32;
/** Bytes in an AES-GCM nonce. */
export const NONCE_BYTES = 12;
/** Bytes in an AES-GCM tag. */
export const TAG_BYTES = 16;

const subtle = crypto.subtle;

/**
 * Returns `n` bytes from the platform CSPRNG.
 *
 * @param n How many bytes.
 * @returns Fresh random bytes.
 */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  // getRandomValues fills at most 65536 bytes per call.
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/**
 * A random 8-byte key-slot id whose base64url text does not start with `-`, so that
 * `hecate slot remove ID` never reads it as an option (1 draw in 64 would).
 *
 * @returns The id bytes.
 */
export function randomSlotId(): Uint8Array<ArrayBuffer> {
  let id = randomBytes(8);
  while (toBase64Url(id).startsWith("-")) id = randomBytes(8);
  return id;
}

/** Thrown by {@link open} when the ciphertext, tag, key or associated data do not match. */
export class AuthenticationFailure extends Error {
  constructor() {
    super("Authentication tag mismatch");
    this.name = "AuthenticationFailure";
  }
}

function aesKey(key: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  if (key.length !== KEY_BYTES) throw new RangeError("AES key must be 32 bytes");
  return subtle.importKey("raw", key, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/**
 * Encrypts and authenticates with AES-256-GCM under a fresh random nonce.
 *
 * @param key A 32-byte key.
 * @param plaintext The message.
 * @param aad Associated data bound to the ciphertext but not stored in it.
 * @returns `nonce || ciphertext || tag`.
 */
export async function seal(
  key: Uint8Array<ArrayBuffer>,
  plaintext: Uint8Array<ArrayBuffer>,
  aad: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  const nonce = randomBytes(NONCE_BYTES);
  const ct = await subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: TAG_BYTES * 8 },
    await aesKey(key),
    plaintext,
  );
  return concatBytes(nonce, new Uint8Array(ct));
}

/**
 * Decrypts and verifies a value made by {@link seal}.
 *
 * @param key The 32-byte key.
 * @param sealed `nonce || ciphertext || tag`.
 * @param aad The same associated data as at sealing.
 * @returns The plaintext.
 * @throws {AuthenticationFailure} When anything does not match; no plaintext is released.
 */
export async function open(
  key: Uint8Array<ArrayBuffer>,
  sealed: Uint8Array<ArrayBuffer>,
  aad: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new AuthenticationFailure();
  try {
    const pt = await subtle.decrypt(
      {
        name: "AES-GCM",
        iv: sealed.subarray(0, NONCE_BYTES),
        additionalData: aad,
        tagLength: TAG_BYTES * 8,
      },
      await aesKey(key),
      sealed.subarray(NONCE_BYTES),
    );
    return new Uint8Array(pt);
  } catch {
    throw new AuthenticationFailure();
  }
}

/**
 * Derives a 32-byte key from a password with PBKDF2-HMAC-SHA256.
 *
 * @param password The password's UTF-8 bytes.
 * @param salt A random per-slot salt.
 * @param iterations The iteration count.
 * @returns The derived key.
 */
export async function pbkdf2Sha256(
  password: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const base = await subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    base,
    KEY_BYTES * 8,
  );
  return new Uint8Array(bits);
}

/**
 * Derives a 32-byte key with HKDF-SHA256 (RFC 5869).
 *
 * @param ikm Input key material (must already be uniformly random, e.g. a root key).
 * @param salt Salt bytes (may be empty).
 * @param info A fixed label that names what the key is for.
 * @returns The derived key.
 */
export async function hkdfSha256(
  ikm: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  info: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  const base = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info },
    base,
    KEY_BYTES * 8,
  );
  return new Uint8Array(bits);
}

/**
 * Computes HMAC-SHA256.
 *
 * @param key The MAC key.
 * @param data The message.
 * @returns The 32-byte tag.
 */
export async function hmacSha256(
  key: Uint8Array<ArrayBuffer>,
  data: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

/**
 * Computes SHA-256.
 *
 * @param data The message.
 * @returns The 32-byte digest.
 */
export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await subtle.digest("SHA-256", data));
}
