/**
 * Reading OpenSSH known_hosts files: plain, wildcard and negated host patterns, `[host]:port`
 * entries for ports other than 22, hashed entries (`|1|salt|hash`, HMAC-SHA1 of the host name
 * keyed with the salt) and the `@revoked` marker. `@cert-authority` lines are skipped: Hecate
 * does not accept host certificates.
 *
 * @module
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";

/** One key line of a known_hosts file. */
export interface KnownHostEntry {
  /** Comma-separated host patterns, or one hashed name. */
  hosts: string;
  /** `revoked` for an `@revoked` line. */
  marker?: "revoked";
  /** The key type field. */
  type: string;
  /** The key blob. */
  blob: Uint8Array;
  /** File and line, for messages. */
  where: string;
}

/**
 * Parses known_hosts text. Malformed lines are skipped, as OpenSSH does.
 *
 * @param text The file content.
 * @param file The file name, for {@link KnownHostEntry.where}.
 * @returns The key lines.
 */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0]?.startsWith("@")) {
      const m = fields.shift();
      if (m !== "@revoked") continue;
      marker = "revoked";
    }
    const [hosts, type, b64] = fields;
    if (!hosts || !type || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) continue;
    const blob = new Uint8Array(Buffer.from(b64, "base64"));
    out.push({ hosts, type, blob, where: `${file}:${i + 1}`, ...(marker ? { marker } : {}) });
  }
  return out;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(
    /\?/g,
    ".",
  );
  return new RegExp(`^${body}$`, "i");
}

function hashedMatch(field: string, name: string): boolean {
  const parts = field.split("|");
  if (parts.length !== 4 || parts[1] !== "1") return false;
  const salt = Buffer.from(parts[2]!, "base64");
  const want = Buffer.from(parts[3]!, "base64");
  const got = createHmac("sha1", salt).update(name).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

/**
 * Whether a host-patterns field names the host. A negated pattern (`!pat`) that matches wins
 * over any positive one, as in OpenSSH.
 *
 * @param field The first field of a known_hosts line.
 * @param host The host name or address as written in the profile.
 * @param port The SSH port.
 * @returns Whether the line applies.
 */
export function hostMatches(field: string, host: string, port: number): boolean {
  const name = hostKeyName(host, port);
  if (field.startsWith("|")) return hashedMatch(field, name);
  let positive = false;
  for (const pat of field.split(",")) {
    const negated = pat.startsWith("!");
    const p = negated ? pat.slice(1) : pat;
    if (!globToRegExp(p).test(name)) continue;
    if (negated) return false;
    positive = true;
  }
  return positive;
}

/**
 * Reads known_hosts files, skipping any that do not exist.
 *
 * @param files Paths, in order.
 * @returns All key lines.
 */
export async function readKnownHosts(files: readonly string[]): Promise<KnownHostEntry[]> {
  const out: KnownHostEntry[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(f);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    out.push(...parseKnownHosts(text, f));
  }
  return out;
}
