/**
 * Doctor check: each profile's transport security: TLS turned off or unverified (the same rule
 * as the warnings at connect time, src/transport_warnings.ts), and SSH hops whose host key is not
 * pinned in the profile.
 *
 * @module
 */

import type { Profile, SshHop } from "../profile.ts";
import { tlsWarnings } from "../transport_warnings.ts";
import { type Finding, shellQuote } from "./finding.ts";

/** What this check needs of a profile (no secret). */
export type TransportProfile = Pick<Profile, "name" | "engine" | "host" | "tls" | "ssh">;

function hopName(h: SshHop): string {
  return `${h.host}:${h.port ?? 22}`;
}

/**
 * Judges one profile's TLS mode and SSH host-key pinning.
 *
 * @param p The profile.
 * @returns Findings (none for a verified TLS profile without an unpinned hop).
 */
export function checkTransport(p: TransportProfile): Finding[] {
  const out: Finding[] = [];
  const name = shellQuote(p.name);
  const warnings = tlsWarnings(p as Profile);
  if (warnings.length > 0) {
    // Off entirely: the login crosses the network in clear text; unverified: encrypted but open
    // to a man in the middle.
    const off = p.tls.mode === "disable";
    out.push({
      check: "tls",
      severity: off ? "error" : "warn",
      message: warnings[0]!,
      fix: `hecate server edit ${name} --tls verify (add --ca-file CA.pem for a private CA)`,
    });
  } else if (p.engine !== "sqlite" && p.tls.mode !== "verify") {
    out.push({
      check: "tls",
      severity: "info",
      message: `TLS is ${p.tls.mode} for profile "${p.name}" (a loopback host)`,
    });
  }
  if (p.tls.allowPlainAuth && p.tls.mode !== "verify") {
    out.push({
      check: "tls",
      severity: "warn",
      message: `Profile "${p.name}" answers cleartext or MD5 password requests over unverified TLS`,
      fix: `hecate server edit ${name} --no-allow-plain-auth`,
    });
  }
  const hops = p.ssh?.hops ?? [];
  hops.forEach((h, i) => {
    if (h.hostKey !== undefined) return;
    const pin = i === hops.length - 1 ? "SHA256:..." : `${hopName(h)}=SHA256:...`;
    const fix = `hecate server test ${name} (prints the fingerprint), then, once its owner ` +
      `confirms it: hecate server edit ${name} --ssh-host-key ${pin}`;
    if (p.ssh?.acceptNew) {
      out.push({
        check: "ssh",
        severity: "warn",
        message: `SSH hop ${hopName(h)} of profile "${p.name}" is not pinned and its key will be ` +
          `trusted on first use (--ssh-accept-new)`,
        fix,
      });
    } else {
      out.push({
        check: "ssh",
        severity: "info",
        message: `SSH hop ${hopName(h)} of profile "${p.name}" is not pinned: its key is ` +
          `checked against known_hosts only`,
        fix,
      });
    }
  });
  return out;
}
