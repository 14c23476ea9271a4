/**
 * Keeping a profile's password in the OS keyring instead of the vault
 * (`hecate server add --store keyring`): the secret goes to `secret-tool store` on stdin, under
 * service `hecate` and account `<vault id>/<profile>`; the vault keeps only the reference
 * `keyring:hecate/<vault id>/<profile>`. `hecate server remove` clears that entry again.
 *
 * Linux and the BSDs only (the Secret Service): macOS's `security` takes a new password only in
 * argv or from a terminal, and Windows has no command-line writer, so both are refused.
 *
 * @module
 */

import { HecateError } from "../../src/errors.ts";
import { keyringProgram } from "./keyring.ts";

/** The keyring service Hecate's own entries live under. */
export const HECATE_KEYRING_SERVICE = "hecate";

/**
 * The reference Hecate stores for a profile's password kept in the keyring.
 *
 * @param vaultId The vault's id.
 * @param profile The profile name.
 * @returns `keyring:hecate/<vault id>/<profile>`.
 */
export function hecateKeyringRef(vaultId: string, profile: string): string {
  return `keyring:${HECATE_KEYRING_SERVICE}/${vaultId}/${profile}`;
}

function supported(): void {
  if (Deno.build.os === "darwin" || Deno.build.os === "windows") {
    throw new HecateError(
      "usage",
      `--store keyring is not supported on ${Deno.build.os} yet`,
      {
        hint:
          "keep the password in the vault, or store it yourself and use --secret-ref keyring:SERVICE/ACCOUNT",
      },
    );
  }
}

const never = new AbortController().signal;

/**
 * Stores a secret in the Secret Service (replacing an entry with the same attributes).
 *
 * @param vaultId The vault id.
 * @param profile The profile name.
 * @param secret The secret (sent on stdin only).
 * @param env The environment reader (for DBUS_SESSION_BUS_ADDRESS and PATH).
 * @throws {HecateError} `usage` on an unsupported platform; `secret_unresolved` (exit 18) when
 * secret-tool is missing or the service refuses.
 */
export async function storeInKeyring(
  vaultId: string,
  profile: string,
  secret: string,
  env: (name: string) => string | undefined,
): Promise<void> {
  supported();
  const account = `${vaultId}/${profile}`;
  let r;
  try {
    r = await keyringProgram(
      "secret-tool",
      [
        "store",
        `--label=Hecate: ${profile}`,
        "--",
        "service",
        HECATE_KEYRING_SERVICE,
        "username",
        account,
      ],
      { env, signal: never },
      new TextEncoder().encode(secret),
    );
  } catch {
    throw new HecateError("secret_unresolved", "OS keyring: secret-tool is not installed", {
      hint: "install libsecret-tools, or leave out --store keyring",
    });
  }
  if (r.code !== 0) {
    throw new HecateError(
      "secret_unresolved",
      `OS keyring: storing failed (secret-tool exit ${r.code})`,
      {
        hint: "check that a Secret Service runs and is unlocked in this session",
      },
    );
  }
}

/**
 * Removes Hecate's keyring entry for a profile.
 *
 * @returns Whether secret-tool reported success (false also when there was no such entry).
 */
export async function clearFromKeyring(
  vaultId: string,
  profile: string,
  env: (name: string) => string | undefined,
): Promise<boolean> {
  try {
    const r = await keyringProgram(
      "secret-tool",
      ["clear", "--", "service", HECATE_KEYRING_SERVICE, "username", `${vaultId}/${profile}`],
      { env, signal: never },
    );
    return r.code === 0;
  } catch {
    return false;
  }
}
