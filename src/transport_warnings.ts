/**
 * The one place that decides which transport-security warnings a profile gets and shows them:
 * every path that hands a profile's login to a server or to another program (a driver
 * connection, `hecate run`, `hecate env`, `server test`, the library) goes through
 * {@link reportTransportWarnings} in src/connect.ts before the login leaves the process.
 *
 * @module
 */

import type { Profile } from "./profile.ts";

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/;

/**
 * Warnings a person should see each time a profile connects with weakened transport security.
 *
 * @param p The profile.
 * @returns Zero or more one-line warnings.
 *
 * @example
 * ```ts ignore
 * console.log(tlsWarnings(profile)); // ['TLS is disabled for profile "billing": ...']
 * ```
 */
export function tlsWarnings(p: Profile): string[] {
  if (p.engine === "sqlite") return [];
  return [...databaseWarnings(p), ...vaultWarnings(p)];
}

function databaseWarnings(p: Profile): string[] {
  if (p.tls.mode === "insecure") {
    return [`TLS certificate verification is off for profile "${p.name}" (--tls insecure)`];
  }
  if (p.tls.mode === "disable" && !LOOPBACK.test(p.host ?? "")) {
    return [`TLS is disabled for profile "${p.name}": the login travels unencrypted`];
  }
  return [];
}

/** The profile's HashiCorp Vault settings (docs/SOURCES.md), when it weakens their TLS. */
function vaultWarnings(p: Profile): string[] {
  const mode = p.params?.["vault.tls"];
  if (mode === "insecure") {
    return [
      `Vault TLS certificate verification is off for profile "${p.name}" (--vault-tls insecure)`,
    ];
  }
  let host = "";
  try {
    host = new URL(p.params?.["vault.addr"] ?? "").hostname;
  } catch {
    // no address in the profile: VAULT_ADDR, which must then be https://
  }
  if (mode === "disable" && host && !LOOPBACK.test(host)) {
    return [`Vault TLS is disabled for profile "${p.name}": the Vault token travels unencrypted`];
  }
  return [];
}

/** Warnings already written to stderr by this process (the default sink shows each once). */
const shown = new Set<string>();

/**
 * Shows a profile's transport warnings: to `onWarning` when given (every time), else on stderr as
 * `hecate: warning: ...`, once per process (a pool opening many connections warns once).
 *
 * @param p The profile.
 * @param onWarning Where the warnings go instead of stderr.
 * @returns The warnings.
 */
export function reportTransportWarnings(
  p: Profile,
  onWarning?: (message: string) => void,
): string[] {
  const warnings = tlsWarnings(p);
  for (const w of warnings) {
    if (onWarning) {
      onWarning(w);
    } else if (!shown.has(w)) {
      shown.add(w);
      console.error(`hecate: warning: ${w}`);
    }
  }
  return warnings;
}
