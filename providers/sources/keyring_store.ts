/**
 * Keeping a profile's password in the OS keyring instead of the vault
 * (`hecate server add --store keyring`): the secret is stored under service `hecate` and account
 * `<vault id>/<profile>`; the vault keeps only the reference `keyring:hecate/<vault id>/<profile>`.
 * `hecate server remove` clears that entry again.
 *
 * Through the `@napi-rs/keyring` binding wherever it loads (Secret Service, macOS Keychain,
 * Windows Credential Manager); else, on Linux and the BSDs, `secret-tool store` with the secret on
 * stdin. Without the binding macOS and Windows are refused: macOS's `security` takes a new
 * password only in argv or from a terminal, and Windows has no command-line writer.
 *
 * @module
 */

import { HecateError } from "../../src/errors.ts";
import { keyringProgram } from "./keyring.ts";
import { NativeKeyringError, nativeKeyringFor } from "./keyring_native.ts";

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

/** Where no program can write (macOS, Windows) and the binding did not load. */
function supported(): void {
  if (Deno.build.os === "darwin" || Deno.build.os === "windows") {
    throw new HecateError(
      "usage",
      `--store keyring on ${Deno.build.os} needs the @napi-rs/keyring binding, which did not load here`,
      {
        hint: "run Hecate from source or a compiled binary (not the bundle) with --allow-ffi; or " +
          "keep the password in the vault, or store it yourself and use --secret-ref keyring:SERVICE/ACCOUNT",
      },
    );
  }
}

/**
 * The command a user runs to remove Hecate's entry for a profile by hand.
 *
 * @param vaultId The vault id.
 * @param profile The profile name.
 * @returns A one-line command for this platform.
 */
export function keyringClearCommand(vaultId: string, profile: string): string {
  const account = `${vaultId}/${profile}`;
  if (Deno.build.os === "darwin") {
    return `security delete-generic-password -s ${HECATE_KEYRING_SERVICE} -a ${account}`;
  }
  if (Deno.build.os === "windows") return `cmdkey /delete:${account}.${HECATE_KEYRING_SERVICE}`;
  return `secret-tool clear -- service ${HECATE_KEYRING_SERVICE} username ${account}`;
}

const never = new AbortController().signal;

/**
 * Stores a secret in the OS keyring (replacing an entry with the same service and account).
 *
 * @param vaultId The vault id.
 * @param profile The profile name.
 * @param secret The secret (sent on stdin only).
 * @param env The environment reader (for DBUS_SESSION_BUS_ADDRESS and PATH).
 * @throws {HecateError} `usage` on macOS/Windows without the binding; `secret_unresolved`
 * (exit 18) when the keyring refuses or, without the binding, secret-tool is missing.
 */
export async function storeInKeyring(
  vaultId: string,
  profile: string,
  secret: string,
  env: (name: string) => string | undefined,
): Promise<void> {
  const account = `${vaultId}/${profile}`;
  const native = await nativeKeyringFor(env);
  if (native) {
    try {
      await native.set(HECATE_KEYRING_SERVICE, account, secret);
      return;
    } catch (e) {
      if (!(e instanceof NativeKeyringError)) throw e;
      throw new HecateError("secret_unresolved", `OS keyring: storing failed (${e.kind})`, {
        hint: "check that the OS keyring runs and is unlocked in this session",
      });
    }
  }
  supported();
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
 * @returns Whether the keyring reported success (false also when there was no such entry).
 */
export async function clearFromKeyring(
  vaultId: string,
  profile: string,
  env: (name: string) => string | undefined,
): Promise<boolean> {
  const native = await nativeKeyringFor(env);
  if (native) {
    return await native.remove(HECATE_KEYRING_SERVICE, `${vaultId}/${profile}`).catch(() => false);
  }
  if (Deno.build.os === "darwin" || Deno.build.os === "windows") return false;
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
