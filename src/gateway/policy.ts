/**
 * The zero-trust checks of an API key, evaluated per request: the client address against CIDR
 * blocks, the User-Agent against a pattern, and a token-bucket rate. Pure except the bucket
 * table, which lives in the gateway process (a restart refills every bucket).
 *
 * @module
 */

import { parseDuration } from "../access/duration.ts";
import { HecateError } from "../errors.ts";
import type { ApiKeyPolicy } from "../vault/apikey.ts";

/** An address as bytes (4 for IPv4, 16 for IPv6), or undefined when it is not one. */
function addressBytes(text: string): Uint8Array | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((n) => n <= 255) ? Uint8Array.from(b) : undefined;
  }
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return undefined;
  const mapped = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let head = text;
  let tail: number[] = [];
  if (mapped) {
    const four = addressBytes(mapped[2]!);
    if (!four) return undefined;
    head = mapped[1]! + "0:0";
    tail = [...four];
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string) => s === "" ? [] : s.split(":");
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - left.length - right.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  const all = [...left, ...Array(fill).fill("0"), ...right];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i]!)) return undefined;
    const n = parseInt(all[i]!, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  if (mapped) out.set(tail, 12);
  return out;
}

/** A parsed CIDR block. */
interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

/**
 * Parses a CIDR block (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a single host).
 *
 * @param text The block.
 * @returns The block.
 * @throws {HecateError} `usage` when it is not one.
 */
export function parseCidr(text: string): Cidr {
  const [addr, len, extra] = text.split("/");
  const bytes = addressBytes(addr ?? "");
  const max = bytes ? bytes.length * 8 : 0;
  const bits = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!bytes || extra !== undefined || !(bits >= 0 && bits <= max)) {
    throw new HecateError("usage", `Invalid CIDR block "${text}" (e.g. 10.0.0.0/8)`);
  }
  return { bytes, bits };
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) as the IPv4 address it is. */
function unmapped(b: Uint8Array): Uint8Array {
  if (b.length === 16 && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return b.slice(12);
  }
  return b;
}

/**
 * Whether `address` is in `block`.
 *
 * @param address The client address as the socket reports it.
 * @param block A CIDR block.
 * @returns True when inside.
 */
export function inCidr(address: string, block: string): boolean {
  const a = addressBytes(address);
  if (!a) return false;
  const c = parseCidr(block);
  const x = unmapped(a), y = unmapped(c.bytes);
  const bits = y.length === c.bytes.length ? c.bits : c.bits - 96;
  if (x.length !== y.length || bits < 0) return false;
  for (let i = 0; i < bits; i++) {
    const bit = (v: Uint8Array) => (v[i >> 3]! >> (7 - (i & 7))) & 1;
    if (bit(x) !== bit(y)) return false;
  }
  return true;
}

/**
 * Whether a User-Agent matches a pattern: `*` is any run of characters, the rest is literal and
 * case-sensitive, and the whole header must match.
 *
 * @param userAgent The header.
 * @param pattern The key's pattern.
 * @returns True on a match.
 */
export function userAgentMatches(userAgent: string, pattern: string): boolean {
  const re = new RegExp(
    "^" + pattern.split("*").map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$",
    "s",
  );
  return re.test(userAgent);
}

/** A parsed rate: `tokens` per `periodMs`. */
export interface Rate {
  /** Bucket size and refill per period. */
  tokens: number;
  /** The period. */
  periodMs: number;
}

/**
 * Parses `N/PERIOD` (`100/1m`, `5/1s`).
 *
 * @param text The rate.
 * @returns The rate.
 * @throws {HecateError} `usage` when malformed.
 */
export function parseRate(text: string): Rate {
  const m = /^(\d{1,9})\/(.+)$/.exec(text);
  const tokens = m ? Number(m[1]) : 0;
  if (!m || tokens < 1) {
    throw new HecateError("usage", `Invalid rate "${text}": give N/PERIOD, e.g. 100/1m`);
  }
  return { tokens, periodMs: parseDuration(m[2]!, "rate period") };
}

/**
 * Checks a policy's text at `apikey create`, so a key never carries a check that cannot run.
 *
 * @param policy The policy.
 * @returns The same policy, without empty members.
 * @throws {HecateError} `usage` for a bad CIDR, rate or empty pattern.
 */
export function validatePolicy(policy: ApiKeyPolicy): ApiKeyPolicy {
  const out: ApiKeyPolicy = {};
  if (policy.allowFrom?.length) {
    for (const c of policy.allowFrom) parseCidr(c);
    out.allowFrom = [...policy.allowFrom];
  }
  if (policy.userAgent !== undefined) {
    if (policy.userAgent === "") throw new HecateError("usage", "An empty --user-agent pattern");
    out.userAgent = policy.userAgent;
  }
  if (policy.rate !== undefined) {
    parseRate(policy.rate);
    out.rate = policy.rate;
  }
  if (policy.credentials !== undefined) out.credentials = policy.credentials;
  if (policy.level !== undefined) {
    if (policy.level !== "read" && policy.level !== "write") {
      throw new HecateError("usage", `Invalid level "${policy.level}": give read or write`);
    }
    out.level = policy.level;
  }
  return out;
}

/** Token buckets per key id. */
export class RateBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #now: () => number;

  /** @param now Clock in ms. */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Takes one token from the key's bucket.
   *
   * @param keyId The key id.
   * @param rate The key's rate.
   * @returns 0 when a token was taken, else the seconds until one is there (for Retry-After).
   */
  take(keyId: string, rate: Rate): number {
    const now = this.#now();
    const b = this.#buckets.get(keyId) ?? { tokens: rate.tokens, at: now };
    const perMs = rate.tokens / rate.periodMs;
    b.tokens = Math.min(rate.tokens, b.tokens + (now - b.at) * perMs);
    b.at = now;
    this.#buckets.set(keyId, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
  }
}
