/**
 * `keyring:SERVICE/ACCOUNT`: a secret in the operating system's keyring. On Linux (and the
 * BSDs) the Secret Service (GNOME Keyring, KWallet 5.97+, KeePassXC) through `secret-tool`
 * from libsecret, with the attributes `service` and `username` that Python's keyring and the
 * Rust keyring crate use; on macOS the login Keychain through `security`. The secret reaches
 * those programs and comes back through pipes only, never argv.
 *
 * Why programs and not a native binding (`@napi-rs/keyring`): a Node-API addon needs Deno's
 * `--allow-ffi`, which Hecate's permission set leaves out on purpose.
 *
 * @module
 */

import { childEnv, hasControl } from "./child_env.ts";
import { malformedRef, sourceError } from "./errors.ts";
import type { ParsedRef, Resolved, SecretSource, SourceContext } from "./source.ts";
import { runCaptured } from "../../src/run/spawn.ts";

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
    const argv = lookupArgs(ref.parts.service!, ref.parts.account!);
    if (!argv) {
      throw sourceError(
        TITLE,
        ref.raw,
        "unreachable",
        "on Windows keep the secret in the vault or use env:/file:",
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
      if (!r.stderr || (Deno.build.os === "darwin" && r.code === 44)) {
        throw sourceError(
          TITLE,
          ref.raw,
          "not_found",
          `store it with: secret-tool store --label=NAME -- service ${ref.parts.service} username ${ref.parts.account}`,
          "no such item",
        );
      }
      throw sourceError(
        TITLE,
        ref.raw,
        "unreachable",
        "check that a Secret Service runs and is unlocked in this session (DBUS_SESSION_BUS_ADDRESS)",
        `${argv[0]} exit ${r.code}`,
      );
    }
    // `security -w` ends the password with a newline; secret-tool does not when piped.
    let value = new TextDecoder().decode(r.stdout);
    if (Deno.build.os === "darwin") value = value.replace(/\n$/, "");
    return { fields: { value } };
  },
};
