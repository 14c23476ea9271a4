/**
 * `keyring:SERVICE/ACCOUNT`: a secret in the operating system's keyring: the Secret Service on
 * Linux and the BSDs (GNOME Keyring, KWallet 5.97+, KeePassXC), the login Keychain on macOS, the
 * Credential Manager on Windows.
 *
 * Two ways in, one result: the `@napi-rs/keyring` binding in-process
 * (providers/sources/keyring_native.ts) wherever it loads, else the command-line programs,
 * `secret-tool` from libsecret (Linux/BSD) and `security` (macOS), with the secret through pipes
 * only, never argv. On the Secret Service both match an item on the attributes `service` and
 * `username` (the convention of Python's keyring and the Rust keyring crate), so each reads what
 * the other wrote. Windows has no command-line reader: without the binding it is unreachable.
 *
 * @module
 */

import { childEnv, hasControl } from "./child_env.ts";
import { malformedRef, sourceError } from "./errors.ts";
import type { ParsedRef, Resolved, SecretSource, SourceContext } from "./source.ts";
import { runCaptured } from "../../src/run/spawn.ts";
import { NativeKeyringError, nativeKeyringFor } from "./keyring_native.ts";

const TITLE = "OS keyring";
const ENV = ["DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY", "USER"];

/** The reader's argv for this platform, or undefined where no reader exists (Windows). */
function lookupArgs(service: string, account: string): [string, string[]] | undefined {
  if (Deno.build.os === "darwin") {
    return ["security", ["find-generic-password", "-s", service, "-a", account, "-w"]];
  }
  if (Deno.build.os === "windows") return undefined;
  // `--` ends secret-tool's options: a part starting with `-` stays an attribute value.
  return ["secret-tool", ["lookup", "--", "service", service, "username", account]];
}

/**
 * Splits `SERVICE/ACCOUNT` at the first `/` (an account may hold more, e.g. `vault/profile`).
 *
 * @param rest The text after `keyring:`.
 * @returns Service and account, or undefined when malformed.
 */
export function splitKeyringRef(rest: string): { service: string; account: string } | undefined {
  const at = rest.indexOf("/");
  if (at <= 0 || at === rest.length - 1 || rest.length > 1024 || hasControl(rest)) return undefined;
  // Parts starting with `-` are fine: secret-tool gets them after `--`, security as the values
  // of -s and -a (a vault id, base64url, may start with `-`).
  return { service: rest.slice(0, at), account: rest.slice(at + 1) };
}

/**
 * Runs a keyring program with the secret (if any) on stdin.
 *
 * @returns Exit status, stdout bytes, and whether stderr said anything.
 */
export async function keyringProgram(
  cmd: string,
  args: string[],
  ctx: Pick<SourceContext, "env" | "signal">,
  input?: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: boolean }> {
  const out = await runCaptured(cmd, args, {
    env: childEnv(ctx as SourceContext, ENV),
    clearEnv: true,
    signal: ctx.signal,
    ...(input ? { input } : {}),
  });
  return { code: out.code, stdout: out.stdout, stderr: out.stderr.length > 0 };
}

const UNREACHABLE_HINT = Deno.build.os === "darwin"
  ? "check that the login Keychain is unlocked"
  : Deno.build.os === "windows"
  ? "check the Credential Manager of this user"
  : "check that a Secret Service runs and is unlocked in this session (DBUS_SESSION_BUS_ADDRESS)";

/** How a user creates the item, per platform (the secret is prompted for or read from stdin). */
function storeHint(service: string, account: string): string {
  if (Deno.build.os === "darwin") {
    return `store it with: security add-generic-password -s ${service} -a ${account} -w`;
  }
  if (Deno.build.os === "windows") {
    // keyring-rs's Windows store names a generic credential ACCOUNT.SERVICE.
    return `store it with: cmdkey /generic:${account}.${service} /user:${account} /pass`;
  }
  return `store it with: secret-tool store --label=NAME -- service ${service} username ${account}`;
}

/**
 * Reads the item with `secret-tool` or `security` (where the binding does not load).
 *
 * @returns The value, or null when there is no such item.
 */
async function lookupWithProgram(
  ref: ParsedRef,
  service: string,
  account: string,
  ctx: SourceContext,
): Promise<string | null> {
  const argv = lookupArgs(service, account);
  if (!argv) {
    throw sourceError(
      TITLE,
      ref.raw,
      "unreachable",
      "on Windows Hecate reads the Credential Manager through the @napi-rs/keyring binding, " +
        "which did not load here (run from source or a compiled binary, with --allow-ffi); " +
        "else keep the secret in the vault or use env:/file:",
      "no keyring reader on this platform",
    );
  }
  let r;
  try {
    r = await keyringProgram(argv[0], argv[1], ctx);
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    throw sourceError(
      TITLE,
      ref.raw,
      "unreachable",
      Deno.build.os === "darwin"
        ? "check /usr/bin/security"
        : "install libsecret-tools (secret-tool)",
      `${argv[0]} is not installed`,
    );
  }
  if (r.code !== 0) {
    // secret-tool and security exit non-zero with no message for a missing item; a message
    // means the service itself failed (no D-Bus session, a locked keyring it could not open).
    if (!r.stderr || (Deno.build.os === "darwin" && r.code === 44)) return null;
    throw sourceError(TITLE, ref.raw, "unreachable", UNREACHABLE_HINT, `${argv[0]} exit ${r.code}`);
  }
  // `security -w` ends the password with a newline; secret-tool does not when piped.
  const value = new TextDecoder().decode(r.stdout);
  return Deno.build.os === "darwin" ? value.replace(/\n$/, "") : value;
}

/** The `keyring:` source. */
export const keyringSource: SecretSource = {
  schemes: ["keyring"],
  title: TITLE,
  parse(scheme: string, rest: string): ParsedRef {
    const parts = splitKeyringRef(rest);
    if (!parts) {
      throw malformedRef(
        TITLE,
        `${scheme}:${rest.slice(0, 80)}`,
        "not SERVICE/ACCOUNT",
        "use keyring:SERVICE/ACCOUNT, e.g. keyring:billing-db/app",
      );
    }
    return { scheme, raw: `${scheme}:${rest}`, parts };
  },
  async resolve(ref: ParsedRef, ctx: SourceContext): Promise<Resolved> {
    const { service, account } = ref.parts as { service: string; account: string };
    const native = await nativeKeyringFor(ctx.env);
    const value = native
      ? await native.get(service, account, ctx.signal).catch((e) => {
        if (ctx.signal.aborted || !(e instanceof NativeKeyringError)) throw e;
        throw sourceError(TITLE, ref.raw, "unreachable", UNREACHABLE_HINT, e.message);
      })
      : await lookupWithProgram(ref, service, account, ctx);
    if (value === null) {
      throw sourceError(TITLE, ref.raw, "not_found", storeHint(service, account), "no such item");
    }
    return { fields: { value } };
  },
};
