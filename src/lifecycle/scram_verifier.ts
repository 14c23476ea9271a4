/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password, computed on the client (as libpq's
 * PQencryptPasswordConn does), so `ALTER ROLE ... PASSWORD` never carries the plaintext.
 *
 * @module
 */

const enc = new TextEncoder();

/** Standard padded base64, as the verifier format uses. */
function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

async function hmac(key: Uint8Array<ArrayBuffer>, text: string): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(text)));
}

/**
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` for a password (RFC 5802/7677).
 * Generated passwords are printable ASCII, for which SASLprep changes nothing.
 *
 * @param password The new password.
 * @param iterations PBKDF2 iterations. @default {4096}
 * @param salt 16 random bytes unless given (tests).
 * @returns The verifier text.
 */
export async function scramVerifier(
  password: string,
  iterations = 4096,
  salt: Uint8Array<ArrayBuffer> = crypto.getRandomValues(new Uint8Array(16)),
): Promise<string> {
  const base = await crypto.subtle.importKey("raw", enc.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const salted = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt, iterations },
      base,
      256,
    ),
  );
  const clientKey = await hmac(salted, "Client Key");
  const storedKey = new Uint8Array(await crypto.subtle.digest("SHA-256", clientKey));
  const serverKey = await hmac(salted, "Server Key");
  return `SCRAM-SHA-256$${iterations}:${toBase64(salt)}$${toBase64(storedKey)}:${
    toBase64(serverKey)
  }`;
}
