/**
 * The host key policy of a tunnel hop, as strict as OpenSSH's `StrictHostKeyChecking yes`
 * (or `accept-new` when asked): a pinned fingerprint wins; else the key must be in known_hosts;
 * a host known with another key of the same type is a changed key; `@revoked` keys never pass.
 *
 * @module
 */

import { fingerprintOf, keyTypeOf } from "./fingerprint.ts";
import { hostMatches, type KnownHostEntry } from "./known_hosts.ts";

/** Where an accepted key was vouched for. */
export type HostKeySource = "pinned" | "known_hosts" | "accepted-new";

/** The outcome of checking one presented host key. */
export type HostKeyVerdict =
  | { ok: true; source: HostKeySource; fingerprint: string; type: string; where?: string }
  | {
    ok: false;
    /** `unknown`: nothing vouches for the host; `changed`: something vouches for another key. */
    kind: "unknown" | "changed" | "revoked";
    fingerprint: string;
    type: string;
    /** For `changed`: the fingerprint that was expected. */
    expected?: string;
    /** For `changed` and `revoked`: the pin or the file and line. */
    where?: string;
    /** For `unknown`: the key types known_hosts does hold for the host. */
    otherTypes?: string[];
  };

/** What the check needs to know about the hop. */
export interface HostKeyCheck {
  host: string;
  port: number;
  /** A fingerprint pinned in the profile. */
  pin?: string | undefined;
  /** Accept a host nothing vouches for (not a changed one). */
  acceptNew: boolean;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Checks a presented host key.
 *
 * @param blob The key blob the server presented.
 * @param hop Host, port, pin and accept-new setting.
 * @param entries known_hosts lines (ignored when a pin is set, except `@revoked`).
 * @returns The verdict.
 */
export function checkHostKey(
  blob: Uint8Array,
  hop: HostKeyCheck,
  entries: readonly KnownHostEntry[],
): HostKeyVerdict {
  const fingerprint = fingerprintOf(blob);
  const type = keyTypeOf(blob);
  const revoked = entries.find((e) =>
    e.marker === "revoked" && equalBytes(e.blob, blob) && hostMatches(e.hosts, hop.host, hop.port)
  );
  if (revoked) return { ok: false, kind: "revoked", fingerprint, type, where: revoked.where };
  if (hop.pin) {
    if (hop.pin === fingerprint) return { ok: true, source: "pinned", fingerprint, type };
    return { ok: false, kind: "changed", fingerprint, type, expected: hop.pin, where: "profile" };
  }
  const known = entries.filter((e) => !e.marker && hostMatches(e.hosts, hop.host, hop.port));
  const same = known.find((e) => equalBytes(e.blob, blob));
  if (same) return { ok: true, source: "known_hosts", fingerprint, type, where: same.where };
  const sameType = known.find((e) => e.type === type);
  if (sameType) {
    return {
      ok: false,
      kind: "changed",
      fingerprint,
      type,
      expected: fingerprintOf(sameType.blob),
      where: sameType.where,
    };
  }
  // Like OpenSSH, a host known only by keys of other types is not "changed"; it stays unknown
  // (and accept-new must not silently add a second identity for it).
  if (known.length > 0) {
    return {
      ok: false,
      kind: "unknown",
      fingerprint,
      type,
      otherTypes: [...new Set(known.map((e) => e.type))],
    };
  }
  if (hop.acceptNew) return { ok: true, source: "accepted-new", fingerprint, type };
  return { ok: false, kind: "unknown", fingerprint, type };
}

const SUPPORTED = new Set([
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
]);

/**
 * Host key algorithms to offer first, so the server presents a key type known_hosts holds for
 * it (OpenSSH orders its offer the same way).
 *
 * @param entries known_hosts lines.
 * @param host The host.
 * @param port The port.
 * @returns Algorithm names to put at the front, possibly none.
 */
export function preferredHostKeyAlgorithms(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.marker || !hostMatches(e.hosts, host, port)) continue;
    const algos = e.type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [e.type];
    for (const a of algos) if (SUPPORTED.has(a) && !out.includes(a)) out.push(a);
  }
  return out;
}
