/**
 * The two public-key steps of vault format 2, through WebCrypto: Ed25519 signatures (the writer's
 * authority over the body) and X25519 key agreement (sealing an API-key slot to a key pair derived
 * from the API key's own secret, so re-sealing needs no stored symmetric slot key). No I/O.
 *
 * Private keys enter as 32-byte seeds wrapped in the fixed PKCS #8 prefix of RFC 8410, so a seed
 * kept in the sealed meta (Ed25519) or derived by HKDF (X25519) becomes a non-extractable
 * CryptoKey without any hand-written curve arithmetic.
 *
 * @module
 */

import { concatBytes, fromBase64Url } from "./encoding.ts";
import { AuthenticationFailure, KEY_BYTES, randomBytes } from "./primitives.ts";
import { SIGNATURE_BYTES } from "./format.ts";

const subtle = crypto.subtle;

// RFC 8410 PrivateKeyInfo for a 32-byte seed: SEQUENCE { version 0, AlgorithmIdentifier { OID },
// OCTET STRING { OCTET STRING seed } }. Only the OID's last byte differs between the curves.
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65];
const PKCS8_SEED = [0x04, 0x22, 0x04, 0x20];
const OID_X25519 = 0x6e;
const OID_ED25519 = 0x70;

function pkcs8(oid: number, seed: Uint8Array): Uint8Array<ArrayBuffer> {
  if (seed.length !== KEY_BYTES) throw new RangeError("A private key seed must be 32 bytes");
  return concatBytes(new Uint8Array([...PKCS8_PREFIX, oid, ...PKCS8_SEED]), seed);
}

/** The X25519 base point u = 9: deriving with it yields the public key of a private key. */
const BASE_POINT = (() => {
  const u = new Uint8Array(KEY_BYTES);
  u[0] = 9;
  return u;
})();

/** An Ed25519 key pair held as its seed and public key (the form kept in the sealed meta). */
export interface SigningKeyPair {
  /** The 32-byte private seed. */
  seed: Uint8Array<ArrayBuffer>;
  /** The 32-byte public key. */
  publicKey: Uint8Array<ArrayBuffer>;
}

/**
 * Makes a new random Ed25519 key pair.
 *
 * @returns Seed and public key.
 */
export async function newSigningKeyPair(): Promise<SigningKeyPair> {
  const seed = randomBytes(KEY_BYTES);
  // Extractable only for this one export of the public half; the key object is dropped at once.
  const key = await subtle.importKey("pkcs8", pkcs8(OID_ED25519, seed), "Ed25519", true, ["sign"]);
  const jwk = await subtle.exportKey("jwk", key);
  const publicKey = fromBase64Url(jwk.x ?? "");
  if (publicKey.length !== KEY_BYTES) throw new RangeError("Ed25519 public key has the wrong size");
  return { seed, publicKey };
}

/**
 * Signs a message with Ed25519.
 *
 * @param seed The 32-byte private seed.
 * @param message The bytes to sign.
 * @returns The 64-byte signature.
 */
export async function signEd25519(
  seed: Uint8Array<ArrayBuffer>,
  message: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  const key = await subtle.importKey("pkcs8", pkcs8(OID_ED25519, seed), "Ed25519", false, [
    "sign",
  ]);
  return new Uint8Array(await subtle.sign("Ed25519", key, message));
}

/**
 * Checks an Ed25519 signature.
 *
 * @param publicKey The 32-byte public key.
 * @param signature The 64-byte signature.
 * @param message The signed bytes.
 * @returns Whether the signature is valid (a malformed key or signature is simply invalid).
 */
export async function verifyEd25519(
  publicKey: Uint8Array<ArrayBuffer>,
  signature: Uint8Array<ArrayBuffer>,
  message: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
  if (publicKey.length !== KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  try {
    const key = await subtle.importKey("raw", publicKey, "Ed25519", false, ["verify"]);
    return await subtle.verify("Ed25519", key, signature, message);
  } catch {
    return false;
  }
}

function x25519Private(seed: Uint8Array): Promise<CryptoKey> {
  return subtle.importKey("pkcs8", pkcs8(OID_X25519, seed), "X25519", false, ["deriveBits"]);
}

/**
 * X25519(private, peer): the shared secret. Fails on a low-order peer key (all-zero result),
 * as RFC 7748 section 6.1 allows and age requires.
 *
 * @param seed The 32-byte private key.
 * @param peer The peer's 32-byte public key.
 * @returns The 32-byte shared secret.
 * @throws {AuthenticationFailure} When the peer key is invalid or of low order.
 */
export async function x25519(
  seed: Uint8Array<ArrayBuffer>,
  peer: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  if (peer.length !== KEY_BYTES) throw new AuthenticationFailure();
  try {
    const pub = await subtle.importKey("raw", peer, "X25519", false, []);
    const bits = await subtle.deriveBits(
      { name: "X25519", public: pub },
      await x25519Private(seed),
      KEY_BYTES * 8,
    );
    const out = new Uint8Array(bits);
    if (out.every((b) => b === 0)) throw new AuthenticationFailure();
    return out;
  } catch {
    throw new AuthenticationFailure();
  }
}

/**
 * The X25519 public key of a private key.
 *
 * @param seed The 32-byte private key.
 * @returns The 32-byte public key.
 */
export function x25519PublicKey(seed: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  return x25519(seed, BASE_POINT);
}
