/**
 * SSH public key blobs: their type and their OpenSSH SHA-256 fingerprint.
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * The OpenSSH fingerprint of a public key: `SHA256:` and the unpadded base64 of the SHA-256 of
 * the raw key blob (RFC 4253 section 6.6 encoding), as `ssh-keygen -lf` prints it.
 *
 * @param blob The key blob (the base64-decoded second field of a known_hosts or .pub line).
 * @returns The fingerprint.
 * @example
 * ```ts
 * import { fingerprintOf } from "./fingerprint.ts";
 * fingerprintOf(new Uint8Array([0, 0, 0, 0])); // "SHA256:3z..."
 * ```
 */
export function fingerprintOf(blob: Uint8Array): string {
  const digest = createHash("sha256").update(blob).digest("base64");
  return `SHA256:${digest.replace(/=+$/, "")}`;
}

/**
 * The key type named at the start of a key blob (e.g. `ssh-ed25519`, `ssh-rsa`).
 *
 * @param blob The key blob.
 * @returns The type, or `unknown` for a malformed blob.
 */
export function keyTypeOf(blob: Uint8Array): string {
  if (blob.length < 4) return "unknown";
  const len = new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(0);
  if (len > 64 || 4 + len > blob.length) return "unknown";
  return new TextDecoder().decode(blob.subarray(4, 4 + len));
}

/**
 * A short human name of a key type, as OpenSSH shows it (`ED25519`, `RSA`, `ECDSA`).
 *
 * @param type The blob type.
 * @returns The label.
 */
export function keyLabel(type: string): string {
  if (type === "ssh-ed25519") return "ED25519";
  if (type === "ssh-rsa") return "RSA";
  if (type.startsWith("ecdsa-")) return "ECDSA";
  if (type === "ssh-dss") return "DSA";
  return type;
}
