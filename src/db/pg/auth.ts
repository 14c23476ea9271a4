/**
 * Password authentication for the PostgreSQL protocol: cleartext, MD5 and SCRAM-SHA-256 (RFC 5802
 * and RFC 7677, as PostgreSQL implements them: the user name is taken from the startup message, so
 * the SCRAM `n=` attribute is left empty). The SCRAM client verifies the server's signature, so a
 * server that does not know the password cannot pretend the login succeeded.
 *
 * MD5 comes from `@noble/hashes` (WebCrypto has none), imported only when a server asks for it:
 * loading any npm package makes Deno set up its Node globals, which the SCRAM path avoids.
 *
 * No channel binding: a server that offers only SCRAM-SHA-256-PLUS is refused with a clear error.
 * Like npm `pg`, the password is used as given (no SASLprep); for ASCII passwords that is the same.
 *
 * @module
 */

import { toHex } from "../../vault/encoding.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Most PBKDF2 iterations a server may ask for: bounds the work a hostile server can cause. */
const MAX_SCRAM_ITERATIONS = 10_000_000;

/** An authentication exchange that cannot go on (bad server message, unsupported method). */
export class AuthProtocolError extends Error {
  /**
   * An authentication exchange error.
   *
   * @param message What went wrong (never a secret).
   */
  constructor(message: string) {
    super(message);
    this.name = "AuthProtocolError";
  }
}

/**
 * The answer to AuthenticationMD5Password: `md5` + md5hex(md5hex(password + user) + salt).
 *
 * @param user The login name.
 * @param password The password.
 * @param salt The 4-byte salt the server sent.
 * @returns The text for the PasswordMessage.
 *
 * @example
 * ```ts
 * import { md5Answer } from "./auth.ts";
 * console.log((await md5Answer("u", "p", new Uint8Array(4))).length); // 35
 * ```
 */
export async function md5Answer(
  user: string,
  password: string,
  salt: Uint8Array,
): Promise<string> {
  const { md5 } = await import("@noble/hashes/legacy.js");
  const inner = encoder.encode(toHex(md5(encoder.encode(password + user))));
  const salted = new Uint8Array(inner.length + salt.length);
  salted.set(inner);
  salted.set(salt, inner.length);
  return "md5" + toHex(md5(salted));
}

function fromBase64(text: string): Uint8Array {
  try {
    return Uint8Array.fromBase64(text);
  } catch {
    throw new AuthProtocolError("SCRAM: malformed base64 from the server");
  }
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    {
      name: "HMAC",
      hash: "SHA-256",
    },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data as Uint8Array<ArrayBuffer>));
}

/** Compares in constant time (for equal lengths). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Splits `a=x,b=y` into attributes; values may contain `=`. */
function attributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    if (eq !== 1) throw new AuthProtocolError("SCRAM: malformed message from the server");
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

/**
 * The client side of one SCRAM-SHA-256 exchange.
 *
 * @example
 * ```ts ignore
 * const scram = new ScramClient("secret");
 * const first = scram.clientFirst();                 // SASLInitialResponse data
 * const final = await scram.clientFinal(serverFirst); // SASLResponse data
 * await scram.verifyServerFinal(serverFinal);         // throws when the signature is wrong
 * ```
 */
export class ScramClient {
  /** The mechanism this client speaks. */
  static readonly MECHANISM = "SCRAM-SHA-256";
  readonly #password: string;
  readonly #nonce: string;
  readonly #user: string;
  #clientFirstBare = "";
  #serverSignature: Uint8Array | null = null;
  #verified = false;

  /**
   * A SCRAM client for one login.
   *
   * @param password The password.
   * @param options `nonce`: the client nonce (random when omitted; tests fix it). `user`: the name
   * in the client-first-message, sent as given (no escaping), empty by default: PostgreSQL takes
   * the name from the startup message; a name here is for test vectors.
   */
  constructor(password: string, options: { nonce?: string; user?: string } = {}) {
    this.#password = password;
    this.#nonce = options.nonce ?? crypto.getRandomValues(new Uint8Array(18)).toBase64();
    this.#user = options.user ?? "";
  }

  /**
   * Picks the mechanism from the server's list.
   *
   * @param offered The mechanisms in AuthenticationSASL.
   * @throws {AuthProtocolError} When SCRAM-SHA-256 is not among them.
   */
  static choose(offered: readonly string[]): string {
    if (offered.includes(ScramClient.MECHANISM)) return ScramClient.MECHANISM;
    if (offered.includes("SCRAM-SHA-256-PLUS")) {
      throw new AuthProtocolError(
        "the server requires SCRAM-SHA-256-PLUS (channel binding), which Hecate does not support",
      );
    }
    throw new AuthProtocolError(
      `the server offers no supported SASL mechanism (${offered.join(", ") || "none"})`,
    );
  }

  /** Whether the server proved it knows the password (after {@link ScramClient.verifyServerFinal}). */
  get verified(): boolean {
    return this.#verified;
  }

  /** The client-first-message (no channel binding: `n,,`). */
  clientFirst(): Uint8Array {
    this.#clientFirstBare = `n=${this.#user},r=${this.#nonce}`;
    return encoder.encode(`n,,${this.#clientFirstBare}`);
  }

  /**
   * Computes the client-final-message with the proof, from the server-first-message.
   *
   * @throws {AuthProtocolError} For a malformed message, a nonce that does not extend ours, or an
   * iteration count out of bounds.
   */
  async clientFinal(serverFirstBytes: Uint8Array): Promise<Uint8Array> {
    const serverFirst = decoder.decode(serverFirstBytes);
    const attrs = attributes(serverFirst);
    const nonce = attrs.get("r");
    const salt = attrs.get("s");
    const iterText = attrs.get("i");
    if (!nonce || salt === undefined || !iterText) {
      throw new AuthProtocolError("SCRAM: incomplete server-first-message");
    }
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) {
      throw new AuthProtocolError("SCRAM: the server's nonce does not extend the client's");
    }
    const iterations = Number(iterText);
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_SCRAM_ITERATIONS) {
      throw new AuthProtocolError(`SCRAM: iteration count out of bounds (${iterText})`);
    }
    const pwKey = await crypto.subtle.importKey(
      "raw",
      encoder.encode(this.#password),
      "PBKDF2",
      false,
      ["deriveBits"],
    );
    const salted = new Uint8Array(
      await crypto.subtle.deriveBits(
        {
          name: "PBKDF2",
          hash: "SHA-256",
          salt: fromBase64(salt) as Uint8Array<ArrayBuffer>,
          iterations,
        },
        pwKey,
        256,
      ),
    );
    const clientKey = await hmac(salted, encoder.encode("Client Key"));
    const storedKey = new Uint8Array(
      await crypto.subtle.digest("SHA-256", clientKey as Uint8Array<ArrayBuffer>),
    );
    const withoutProof = `c=biws,r=${nonce}`; // biws = base64("n,,")
    const authMessage = encoder.encode(
      `${this.#clientFirstBare},${serverFirst},${withoutProof}`,
    );
    const clientSignature = await hmac(storedKey, authMessage);
    const proof = new Uint8Array(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    const serverKey = await hmac(salted, encoder.encode("Server Key"));
    this.#serverSignature = await hmac(serverKey, authMessage);
    return encoder.encode(`${withoutProof},p=${proof.toBase64()}`);
  }

  /**
   * Checks the server-final-message's signature.
   *
   * @throws {AuthProtocolError} For a server error attribute, a malformed message, or a signature
   * that does not match (the server does not know the password: possibly not the real server).
   */
  verifyServerFinal(serverFinalBytes: Uint8Array): void {
    if (!this.#serverSignature) {
      throw new AuthProtocolError("SCRAM: unexpected server-final-message");
    }
    const attrs = attributes(decoder.decode(serverFinalBytes));
    const err = attrs.get("e");
    if (err !== undefined) throw new AuthProtocolError(`SCRAM: the server reported ${err}`);
    const v = attrs.get("v");
    if (v === undefined) throw new AuthProtocolError("SCRAM: no signature in server-final-message");
    if (!equalBytes(fromBase64(v), this.#serverSignature)) {
      throw new AuthProtocolError(
        "SCRAM: the server's signature does not match (it does not know the password)",
      );
    }
    this.#verified = true;
  }
}
