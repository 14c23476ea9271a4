/**
 * Part of the SQL Server TEST DOUBLE (see tests/support/tds_double.ts): LOGIN7 parsing (MS-TDS
 * 2.2.6.4) with password de-obfuscation and the FEDAUTH feature extension, and the server side of
 * NTLMv2 (MS-NLMP 3.3.2): a CHALLENGE message and verification of the AUTHENTICATE message's
 * NTProofStr against a known password. Not production code.
 *
 * @module
 */

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Reader, ucs2, Writer } from "./wire.ts";

/** What the double learns from a LOGIN7 message. */
export interface Login7 {
  tdsVersion: number;
  userName: string;
  /** The de-obfuscated password. */
  password: string;
  database: string;
  appName: string;
  /** SSPI (NTLM NEGOTIATE) bytes, when integrated security is used. */
  sspi: Uint8Array | undefined;
  /** The access token from the FEDAUTH feature extension (security-token library), if any. */
  fedAuthToken: string | undefined;
  /** TypeFlags fReadOnlyIntent (0x20): the client asked ApplicationIntent=ReadOnly. */
  readOnlyIntent: boolean;
}

/** Undoes LOGIN7 password obfuscation: XOR 0xA5, then swap the nibbles of each byte. */
export function deobfuscate(b: Uint8Array): string {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const x = b[i]! ^ 0xa5;
    out[i] = ((x & 0x0f) << 4) | (x >> 4);
  }
  return new TextDecoder("utf-16le").decode(out);
}

/** Parses a LOGIN7 payload. */
export function parseLogin7(payload: Uint8Array): Login7 {
  const r = new Reader(payload);
  r.pos = 4;
  const tdsVersion = r.u32();
  r.pos = 26;
  const typeFlags = r.u8();
  const optionFlags3 = r.u8();
  const field = (at: number): [number, number] => {
    r.pos = at;
    return [r.u16(), r.u16()];
  };
  const text = (at: number): string => {
    const [off, len] = field(at);
    return new TextDecoder("utf-16le").decode(payload.subarray(off, off + len * 2));
  };
  const [pwOff, pwLen] = field(44);
  const [sspiOff, sspiLen] = field(78);
  let fedAuthToken: string | undefined;
  if (optionFlags3 & 0x10) {
    const [extOff] = field(56);
    r.pos = extOff;
    r.pos = r.u32(); // the extension block holds the offset of the feature data
    for (;;) {
      const id = r.u8();
      if (id === 0xff) break;
      const len = r.u32();
      const data = new Reader(r.bytes(len));
      if (id === 0x02) {
        const options = data.u8();
        if (options >> 1 === 0x01) fedAuthToken = data.ucs2(data.u32() / 2);
      }
    }
  }
  return {
    tdsVersion,
    userName: text(40),
    password: deobfuscate(payload.subarray(pwOff, pwOff + pwLen * 2)),
    appName: text(48),
    database: text(68),
    sspi: sspiLen > 0 ? payload.slice(sspiOff, sspiOff + sspiLen) : undefined,
    fedAuthToken,
    readOnlyIntent: (typeFlags & 0x20) !== 0,
  };
}

const SIGNATURE = new TextEncoder().encode("NTLMSSP\0");

/** Builds an NTLM CHALLENGE message for a domain, with the server challenge. */
export function ntlmChallenge(domain: string, serverChallenge: Uint8Array): Uint8Array {
  const name = ucs2(domain);
  // AV pairs: MsvAvNbDomainName, then MsvAvEOL.
  const info = new Writer().u16(2).u16(name.length).bytes(name).u16(0).u16(0).finish();
  const headerLen = 56; // 48 bytes of fields + 8 bytes of version
  return new Writer()
    .bytes(SIGNATURE).u32(2)
    .u16(name.length).u16(name.length).u32(headerLen)
    .u32(0x00028233) // unicode, NTLM, target type domain, target info
    .bytes(serverChallenge)
    .bytes(new Uint8Array(8))
    .u16(info.length).u16(info.length).u32(headerLen + name.length)
    .bytes(new Uint8Array([6, 1, 0x1d, 0x1c, 0, 0, 0, 15]))
    .bytes(name)
    .bytes(info)
    .finish();
}

/** What the double checks in an NTLM AUTHENTICATE message. */
export interface NtlmAuthenticate {
  domain: string;
  user: string;
  /** Whether the NTLMv2 response proves knowledge of the password. */
  valid: boolean;
}

function field(r: Reader, at: number): [number, number] {
  r.pos = at;
  const len = r.u16();
  r.u16();
  return [len, r.u32()];
}

/**
 * Verifies an NTLM AUTHENTICATE message: NTProofStr = HMAC-MD5(NTOWFv2, serverChallenge ||
 * blob), NTOWFv2 = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) || domain)).
 */
export function verifyNtlm(
  msg: Uint8Array,
  serverChallenge: Uint8Array,
  password: string,
): NtlmAuthenticate {
  const r = new Reader(msg);
  const [ntLen, ntOff] = field(r, 20);
  const [domLen, domOff] = field(r, 28);
  const [userLen, userOff] = field(r, 36);
  const dec = new TextDecoder("utf-16le");
  const domain = dec.decode(msg.subarray(domOff, domOff + domLen));
  const user = dec.decode(msg.subarray(userOff, userOff + userLen));
  const proof = msg.subarray(ntOff, ntOff + 16);
  // The blob follows the proof; some clients declare only the proof's 16 bytes as the response
  // length and append the blob after it, so take everything up to the end in that case.
  const blob = ntLen > 16 ? msg.subarray(ntOff + 16, ntOff + ntLen) : msg.subarray(ntOff + 16);
  const ntHash = createHash("md4").update(ucs2(password)).digest();
  const ntowf = createHmac("md5", ntHash).update(ucs2(user.toUpperCase() + domain)).digest();
  const expected = createHmac("md5", ntowf).update(serverChallenge).update(blob).digest();
  const valid = proof.length === 16 && timingSafeEqual(expected, proof);
  return { domain, user, valid };
}
