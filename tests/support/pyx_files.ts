/**
 * Hecate Pyx 3.0-layout files built in the tests from the README's description, independently of
 * src/import/pyx.ts: `salt(32) | IV(16) | AES-256-CBC(PKCS #7) | HMAC-SHA256(32)`, with PBKDF2-SHA256
 * (100,000 iterations) asked for 64 bytes. Which key the HMAC uses and what it covers is the
 * writer's choice, so both are parameters.
 *
 * @module
 */

/** Which HMAC key a 3.0 writer used and what its tag covers. */
export interface Pyx30Mac {
  /** The second half of the 64-byte PBKDF2 output, the AES key itself, or a key nobody can know. */
  key: "second-half" | "aes-key" | "random";
  /** The bytes the tag is computed over. */
  covers: "iv+ct" | "salt+iv+ct" | "ct";
}

/** Options for {@link pyx30File}. */
export interface Pyx30Options {
  /** The HMAC's key and coverage. @default {{ key: "second-half", covers: "iv+ct" }} */
  mac?: Pyx30Mac;
  /** A fixed salt (32 bytes), e.g. so that a fuzz test derives the key once. @default {random} */
  salt?: Uint8Array<ArrayBuffer>;
}

/**
 * Encrypts a plaintext into the 3.0 layout.
 *
 * @param plain The plaintext (text is UTF-8 encoded).
 * @param password The Pyx master password.
 * @param options HMAC choice and salt.
 * @returns The file bytes.
 */
export async function pyx30File(
  plain: string | Uint8Array<ArrayBuffer>,
  password: string,
  options: Pyx30Options = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const mac = options.mac ?? { key: "second-half", covers: "iv+ct" };
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(16));
  const text = typeof plain === "string" ? new TextEncoder().encode(plain) : plain;
  const base = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const dk = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt, iterations: 100_000 },
      base,
      512,
    ),
  );
  const aes = await crypto.subtle.importKey("raw", dk.slice(0, 32), "AES-CBC", false, ["encrypt"]);
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv }, aes, text));
  const macKey = mac.key === "second-half"
    ? dk.slice(32)
    : mac.key === "aes-key"
    ? dk.slice(0, 32)
    : crypto.getRandomValues(new Uint8Array(32));
  const parts = mac.covers === "ct" ? [ct] : mac.covers === "iv+ct" ? [iv, ct] : [salt, iv, ct];
  const signed = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    signed.set(p, at);
    at += p.length;
  }
  const hk = await crypto.subtle.importKey(
    "raw",
    macKey,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const tag = new Uint8Array(await crypto.subtle.sign("HMAC", hk, signed));
  const out = new Uint8Array(48 + ct.length + 32);
  out.set(salt);
  out.set(iv, 32);
  out.set(ct, 48);
  out.set(tag, 48 + ct.length);
  return out;
}
