/**
 * The whole PKCS#11 (Cryptoki) surface Hecate uses, through Deno's FFI: load a module, find a
 * token by label, log in, find or make an AES-256 key that never leaves the token, and run
 * AES-GCM on the token. Nothing else in Hecate calls `Deno.dlopen`; this module is imported only
 * when a PKCS#11 slot is used, so the rest of Hecate needs no `--allow-ffi`.
 *
 * Why FFI: the npm bindings (`pkcs11js`, `graphene-pk11`) are node-gyp addons that must be
 * compiled at install time, which `deno install` here did not do (no prebuilt binary ships).
 *
 * ABI: the module's exported `C_*` functions (PKCS#11 v2.40, which SoftHSM2 and every common
 * module export by name). `CK_ULONG` is C `unsigned long`: 8 bytes on the 64-bit Unix targets
 * Deno runs on (LP64); Windows (LLP64, 4 bytes) is not supported here. Structures use the
 * platform's natural alignment (PKCS#11 asks for no packing on Unix).
 *
 * @module
 */

import { utf8 } from "../encoding.ts";

// Return values (CKR_*) Hecate tells apart; any other is reported by its number.
const CKR_OK = 0x0;
const CKR_PIN_INCORRECT = 0xa0;
const CKR_PIN_INVALID = 0xa1;
const CKR_PIN_LEN_RANGE = 0xa2;
const CKR_PIN_EXPIRED = 0xa3;
const CKR_PIN_LOCKED = 0xa4;
const CKR_USER_ALREADY_LOGGED_IN = 0x100;
const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;

const CKF_RW_SESSION = 0x2n;
const CKF_SERIAL_SESSION = 0x4n;
const CKU_USER = 1n;

const CKA_CLASS = 0x0n;
const CKA_TOKEN = 0x1n;
const CKA_PRIVATE = 0x2n;
const CKA_LABEL = 0x3n;
const CKA_KEY_TYPE = 0x100n;
const CKA_SENSITIVE = 0x103n;
const CKA_ENCRYPT = 0x104n;
const CKA_DECRYPT = 0x105n;
const CKA_VALUE_LEN = 0x161n;
const CKA_EXTRACTABLE = 0x162n;
const CKO_SECRET_KEY = 0x4n;
const CKK_AES = 0x1fn;
const CKM_AES_KEY_GEN = 0x1080n;
const CKM_AES_GCM = 0x1087n;

/** Bytes of `CK_ULONG` and of a pointer (LP64). */
const WORD = 8;
/** `CK_TOKEN_INFO` is 208 bytes on LP64; the label is its first 32 bytes (blank-padded). */
const TOKEN_INFO_BYTES = 256;
const TOKEN_LABEL_BYTES = 32;
/** AES-GCM tag on the token, bits. */
const GCM_TAG_BITS = 128n;

const SYMBOLS = {
  // CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
  C_Initialize: { parameters: ["pointer"], result: "u64" },
  // CK_RV C_Finalize(CK_VOID_PTR pReserved)
  C_Finalize: { parameters: ["pointer"], result: "u64" },
  // CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
  C_GetSlotList: { parameters: ["u8", "buffer", "buffer"], result: "u64" },
  // CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
  C_GetTokenInfo: { parameters: ["u64", "buffer"], result: "u64" },
  // CK_RV C_OpenSession(slotID, CK_FLAGS flags, pApplication, Notify, CK_SESSION_HANDLE_PTR)
  C_OpenSession: {
    parameters: ["u64", "u64", "pointer", "pointer", "buffer"],
    result: "u64",
  },
  // CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
  C_CloseSession: { parameters: ["u64"], result: "u64" },
  // CK_RV C_Login(hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
  C_Login: { parameters: ["u64", "u64", "buffer", "u64"], result: "u64" },
  // CK_RV C_Logout(hSession)
  C_Logout: { parameters: ["u64"], result: "u64" },
  // CK_RV C_FindObjectsInit(hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
  C_FindObjectsInit: { parameters: ["u64", "buffer", "u64"], result: "u64" },
  // CK_RV C_FindObjects(hSession, CK_OBJECT_HANDLE_PTR phObject, ulMaxObjectCount, pulCount)
  C_FindObjects: { parameters: ["u64", "buffer", "u64", "buffer"], result: "u64" },
  // CK_RV C_FindObjectsFinal(hSession)
  C_FindObjectsFinal: { parameters: ["u64"], result: "u64" },
  // CK_RV C_GenerateKey(hSession, CK_MECHANISM_PTR, CK_ATTRIBUTE_PTR, ulCount, phKey)
  C_GenerateKey: { parameters: ["u64", "buffer", "buffer", "u64", "buffer"], result: "u64" },
  // CK_RV C_EncryptInit(hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
  C_EncryptInit: { parameters: ["u64", "buffer", "u64"], result: "u64" },
  // CK_RV C_Encrypt(hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen)
  C_Encrypt: { parameters: ["u64", "buffer", "u64", "buffer", "buffer"], result: "u64" },
  // CK_RV C_DecryptInit(hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
  C_DecryptInit: { parameters: ["u64", "buffer", "u64"], result: "u64" },
  // CK_RV C_Decrypt(hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen)
  C_Decrypt: { parameters: ["u64", "buffer", "u64", "buffer", "buffer"], result: "u64" },
} as const satisfies Deno.ForeignLibraryInterface;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Where a token session failed, for the caller to map onto a Hecate error. */
export type TokenFailure =
  | "module" // the module could not be loaded
  | "token" // no initialised token with that label
  | "pin" // wrong PIN (CKR_PIN_INCORRECT / CKR_PIN_INVALID / CKR_PIN_LEN_RANGE)
  | "pin_locked" // the token locked its PIN (CKR_PIN_LOCKED / CKR_PIN_EXPIRED)
  | "key" // no key with that label on the token
  | "decrypt" // the token's key does not open the ciphertext (GCM tag, length)
  | "call"; // any other refusal

/** A refusal by the module or token; `message` names the call and CKR value, never a PIN. */
export class TokenError extends Error {
  /** What failed. */
  readonly failure: TokenFailure;

  /**
   * @param failure What failed.
   * @param message One line, no secret.
   */
  constructor(failure: TokenFailure, message: string) {
    super(message);
    this.name = "TokenError";
    this.failure = failure;
  }
}

const hex = (rv: number) => `CKR 0x${rv.toString(16)}`;

/**
 * A copy of `bytes` in its own `ArrayBuffer`: V8 keeps small typed arrays inside its heap, where a
 * collection may move them, but never moves an `ArrayBuffer`'s backing store, whose address a
 * structure below then holds.
 */
function held(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(Math.max(1, bytes.length)));
  out.set(bytes);
  return out;
}

/** The address of a buffer made by {@link held}, to store in a structure. */
function ptr(buf: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/**
 * `CK_ATTRIBUTE` array: `{ CK_ULONG type; CK_VOID_PTR pValue; CK_ULONG ulValueLen; }`, 24 bytes
 * each. The value buffers are returned too, to stay referenced (not collected) during the call.
 */
function attributes(
  list: [bigint, Uint8Array][],
): { buf: Uint8Array<ArrayBuffer>; keep: Uint8Array[] } {
  const buf = held(new Uint8Array(list.length * 3 * WORD));
  const view = new DataView(buf.buffer);
  const keep = list.map(([, v]) => held(v));
  list.forEach(([type, value], i) => {
    view.setBigUint64(i * 24, type, true);
    view.setBigUint64(i * 24 + 8, value.length === 0 ? 0n : ptr(keep[i]!), true);
    view.setBigUint64(i * 24 + 16, BigInt(value.length), true);
  });
  return { buf, keep };
}

const bool = (b: boolean) => new Uint8Array([b ? 1 : 0]); // CK_BBOOL: one byte
function ulong(n: bigint): Uint8Array {
  const b = new Uint8Array(WORD);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}

/** `CK_MECHANISM`: `{ CK_MECHANISM_TYPE mechanism; CK_VOID_PTR pParameter; CK_ULONG len; }`. */
function mechanism(type: bigint, param?: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const buf = held(new Uint8Array(3 * WORD));
  const view = new DataView(buf.buffer);
  view.setBigUint64(0, type, true);
  view.setBigUint64(8, param ? ptr(param) : 0n, true);
  view.setBigUint64(16, BigInt(param?.length ?? 0), true);
  return buf;
}

/**
 * `CK_GCM_PARAMS` of v2.40 (what SoftHSM2 2.6 implements): `{ CK_BYTE_PTR pIv; CK_ULONG ulIvLen;
 * CK_ULONG ulIvBits; CK_BYTE_PTR pAAD; CK_ULONG ulAADLen; CK_ULONG ulTagBits; }`, 48 bytes.
 */
function gcmParams(
  iv: Uint8Array,
  aad: Uint8Array,
): { buf: Uint8Array<ArrayBuffer>; keep: Uint8Array[] } {
  const buf = held(new Uint8Array(6 * WORD));
  const view = new DataView(buf.buffer);
  const keep = [held(iv), held(aad)];
  view.setBigUint64(0, ptr(keep[0]!), true);
  view.setBigUint64(8, BigInt(iv.length), true);
  view.setBigUint64(16, BigInt(iv.length * 8), true);
  view.setBigUint64(24, aad.length === 0 ? 0n : ptr(keep[1]!), true);
  view.setBigUint64(32, BigInt(aad.length), true);
  view.setBigUint64(40, GCM_TAG_BITS, true);
  return { buf, keep };
}

/** Holds the buffers a structure points into until after the call that reads them. */
function keepAlive(s: { keep: Uint8Array[] }): void {
  if (s.keep.length < 0) throw new Error("unreachable");
}

function readUlong(buf: Uint8Array, at = 0): bigint {
  return new DataView(buf.buffer, buf.byteOffset).getBigUint64(at, true);
}

/** A logged-in session on one token. Obtain one with {@link withToken}. */
export class TokenSession {
  readonly #lib: Lib;
  readonly #session: bigint;

  /** @internal */
  constructor(lib: Lib, session: bigint) {
    this.#lib = lib;
    this.#session = session;
  }

  #check(rv: number | bigint, call: string, failure: TokenFailure = "call"): void {
    const n = Number(rv);
    if (n !== CKR_OK) throw new TokenError(failure, `The token refused ${call} (${hex(n)})`);
  }

  /**
   * Finds the AES secret key with this label on the token.
   *
   * @param label `CKA_LABEL`.
   * @returns Its handle, or undefined when there is none.
   * @throws {TokenError} `call` when several keys share the label (ambiguous) or a call fails.
   */
  findKey(label: string): bigint | undefined {
    const l = this.#lib;
    const s = this.#session;
    const tpl = attributes([
      [CKA_CLASS, ulong(CKO_SECRET_KEY)],
      [CKA_KEY_TYPE, ulong(CKK_AES)],
      [CKA_LABEL, utf8(label)],
    ]);
    this.#check(l.C_FindObjectsInit(s, tpl.buf, 3n), "C_FindObjectsInit");
    keepAlive(tpl);
    const handles = new Uint8Array(2 * WORD);
    const count = new Uint8Array(WORD);
    try {
      this.#check(l.C_FindObjects(s, handles, 2n, count), "C_FindObjects");
    } finally {
      l.C_FindObjectsFinal(s);
    }
    const n = readUlong(count);
    if (n > 1n) throw new TokenError("call", `Several keys on the token are labelled "${label}"`);
    return n === 1n ? readUlong(handles) : undefined;
  }

  /**
   * Makes an AES-256 key on the token that can never be read out: `CKA_TOKEN` (kept),
   * `CKA_PRIVATE` (needs the PIN), `CKA_SENSITIVE`, `CKA_EXTRACTABLE` false, encrypt/decrypt only.
   *
   * @param label `CKA_LABEL`.
   * @returns Its handle.
   */
  generateKey(label: string): bigint {
    const tpl = attributes([
      [CKA_CLASS, ulong(CKO_SECRET_KEY)],
      [CKA_KEY_TYPE, ulong(CKK_AES)],
      [CKA_VALUE_LEN, ulong(32n)],
      [CKA_LABEL, utf8(label)],
      [CKA_TOKEN, bool(true)],
      [CKA_PRIVATE, bool(true)],
      [CKA_SENSITIVE, bool(true)],
      [CKA_EXTRACTABLE, bool(false)],
      [CKA_ENCRYPT, bool(true)],
      [CKA_DECRYPT, bool(true)],
    ]);
    const handle = new Uint8Array(WORD);
    this.#check(
      this.#lib.C_GenerateKey(this.#session, mechanism(CKM_AES_KEY_GEN), tpl.buf, 10n, handle),
      "C_GenerateKey",
    );
    keepAlive(tpl);
    return readUlong(handle);
  }

  /**
   * AES-GCM encryption on the token (128-bit tag).
   *
   * @param key The key handle.
   * @param iv A fresh 12-byte IV.
   * @param aad Associated data.
   * @param plain The plaintext.
   * @returns Ciphertext followed by the tag.
   */
  encrypt(key: bigint, iv: Uint8Array, aad: Uint8Array, plain: Uint8Array): Uint8Array {
    const params = gcmParams(iv, aad);
    // The parameters are copied by the token at Init (PKCS#11 5.2: the mechanism is read then).
    this.#check(
      this.#lib.C_EncryptInit(this.#session, mechanism(CKM_AES_GCM, params.buf), key),
      "C_EncryptInit",
    );
    keepAlive(params);
    const out = new Uint8Array(plain.length + 16);
    const len = ulong(BigInt(out.length));
    this.#check(
      this.#lib.C_Encrypt(this.#session, plain, BigInt(plain.length), out, len),
      "C_Encrypt",
    );
    return out.slice(0, Number(readUlong(len)));
  }

  /**
   * AES-GCM decryption on the token.
   *
   * @param key The key handle.
   * @param iv The IV used to encrypt.
   * @param aad The associated data used to encrypt.
   * @param sealed Ciphertext followed by the tag.
   * @returns The plaintext.
   * @throws {TokenError} `decrypt` when the tag does not match (another key, altered data).
   */
  decrypt(key: bigint, iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
    const params = gcmParams(iv, aad);
    this.#check(
      this.#lib.C_DecryptInit(this.#session, mechanism(CKM_AES_GCM, params.buf), key),
      "C_DecryptInit",
    );
    keepAlive(params);
    const out = new Uint8Array(sealed.length);
    const len = ulong(BigInt(out.length));
    const rv = Number(
      this.#lib.C_Decrypt(this.#session, sealed, BigInt(sealed.length), out, len),
    );
    // A tag mismatch is CKR_ENCRYPTED_DATA_INVALID by the standard; SoftHSM2 answers
    // CKR_GENERAL_ERROR. Init accepted key and parameters, so any refusal here is "not this key".
    if (rv !== CKR_OK) {
      throw new TokenError("decrypt", `The token's key does not open this slot (${hex(rv)})`);
    }
    const plain = out.slice(0, Number(readUlong(len)));
    out.fill(0);
    return plain;
  }
}

/** Loads the module, mapping a refusal (missing file, no permission) to a {@link TokenError}. */
function load(module: string): Deno.DynamicLibrary<typeof SYMBOLS> {
  if (Deno.build.os === "windows") {
    // CK_ULONG is 4 bytes there (LLP64) and PKCS#11 structures are packed: other layouts.
    throw new TokenError("module", "PKCS#11 slots are not supported on Windows by this build");
  }
  try {
    return Deno.dlopen(module, SYMBOLS);
  } catch (e) {
    const why = e instanceof Deno.errors.NotCapable
      ? "FFI is not permitted for it (run with --allow-ffi for its directory)"
      : "it is missing or not a PKCS#11 module";
    throw new TokenError("module", `The PKCS#11 module ${module} could not be loaded: ${why}`);
  }
}

/** The slot holding the initialised token with this label (blank-padded in `CK_TOKEN_INFO`). */
function slotOf(lib: Lib, label: string): bigint {
  const count = new Uint8Array(WORD);
  let rv = Number(lib.C_GetSlotList(1, null, count));
  if (rv !== CKR_OK) throw new TokenError("call", `The module refused C_GetSlotList (${hex(rv)})`);
  const n = Number(readUlong(count));
  const slots = new Uint8Array(Math.max(1, n) * WORD);
  rv = Number(lib.C_GetSlotList(1, slots, count));
  if (rv !== CKR_OK) throw new TokenError("call", `The module refused C_GetSlotList (${hex(rv)})`);
  const want = utf8(label);
  for (let i = 0; i < Number(readUlong(count)); i++) {
    const slot = readUlong(slots, i * WORD);
    const info = new Uint8Array(TOKEN_INFO_BYTES);
    if (Number(lib.C_GetTokenInfo(slot, info)) !== CKR_OK) continue;
    const field = info.subarray(0, TOKEN_LABEL_BYTES);
    let end = TOKEN_LABEL_BYTES;
    while (end > 0 && (field[end - 1] === 0x20 || field[end - 1] === 0)) end--;
    if (end === want.length && want.every((b, j) => field[j] === b)) return slot;
  }
  throw new TokenError("token", `No token labelled "${label}" is present`);
}

/**
 * Runs `fn` in a logged-in read-write session on the token with this label, then logs out,
 * closes the session, finalises the module and unloads it, whatever `fn` did. The PIN's bytes
 * are zeroed once `C_Login` has them.
 *
 * @param module Path of the PKCS#11 module (a shared library).
 * @param token The token's label.
 * @param pin The user PIN.
 * @param fn The work.
 * @returns What `fn` returned.
 * @throws {TokenError} See {@link TokenFailure}.
 */
export function withToken<T>(
  module: string,
  token: string,
  pin: string,
  fn: (session: TokenSession) => T,
): T {
  const dl = load(module);
  const lib = dl.symbols;
  try {
    const rv = Number(lib.C_Initialize(null));
    if (rv !== CKR_OK && rv !== CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      throw new TokenError("module", `The PKCS#11 module refused C_Initialize (${hex(rv)})`);
    }
    try {
      const slot = slotOf(lib, token);
      const handle = new Uint8Array(WORD);
      const opened = Number(
        lib.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, null, null, handle),
      );
      if (opened !== CKR_OK) {
        throw new TokenError("token", `The token refused C_OpenSession (${hex(opened)})`);
      }
      const session = readUlong(handle);
      try {
        const pinBytes = utf8(pin);
        let login: number;
        try {
          login = Number(lib.C_Login(session, CKU_USER, pinBytes, BigInt(pinBytes.length)));
        } finally {
          pinBytes.fill(0);
        }
        if (
          login === CKR_PIN_INCORRECT || login === CKR_PIN_INVALID || login === CKR_PIN_LEN_RANGE
        ) {
          throw new TokenError("pin", `Wrong PIN for token "${token}"`);
        }
        if (login === CKR_PIN_LOCKED || login === CKR_PIN_EXPIRED) {
          throw new TokenError("pin_locked", `Token "${token}" has locked or expired its PIN`);
        }
        if (login !== CKR_OK && login !== CKR_USER_ALREADY_LOGGED_IN) {
          throw new TokenError("call", `The token refused C_Login (${hex(login)})`);
        }
        try {
          return fn(new TokenSession(lib, session));
        } finally {
          lib.C_Logout(session);
        }
      } finally {
        lib.C_CloseSession(session);
      }
    } finally {
      lib.C_Finalize(null);
    }
  } finally {
    dl.close();
  }
}
