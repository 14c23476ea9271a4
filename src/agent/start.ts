/**
 * `hecate unlock`'s side of starting the agent: start this program again as the agent process
 * (`hecate __agent`, no secret in its argv or environment), hand it the start message (with the
 * password, the age identity's text or the token's PIN) on its stdin, relay a request for the
 * vault's one-time code, and wait for its verdict. The agent then lives on alone; this process
 * exits.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { spawnBackground } from "../run/spawn.ts";
import { AGENT_ARG, type AgentSession } from "./paths.ts";
import { processStartTime } from "./process_start.ts";
import type { WireError } from "./protocol.ts";
import type { StartMessage } from "./server.ts";

/**
 * Permissions of the agent when it runs from source: those of `hecate` without `--allow-run`
 * (the agent starts no process) and without `--allow-ffi` (added only for a token unlock,
 * {@link agentCommand}).
 */
export const AGENT_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys=hostname,uid",
];

/**
 * How to start this program again as the agent: the compiled binary, or Deno and main.ts.
 * `ffi`: the agent unlocks with a token, whose module it loads (`--allow-ffi`).
 */
function agentCommand(ffi: boolean): { command: string; args: string[]; cwd: string } {
  const exec = Deno.execPath();
  const base = exec.slice(exec.lastIndexOf("/") + 1);
  if (!base.startsWith("deno")) return { command: exec, args: [AGENT_ARG], cwd: "/" };
  const main = new URL(Deno.mainModule).pathname;
  // From source: run in the directory of main.ts, so that Deno finds the same deno.json (imports,
  // flags). The bundle (scripts/bundle.ts) needs no config and must not pick one up.
  const cwd = main.slice(0, main.lastIndexOf("/")) || "/";
  const flags = main.endsWith(".ts")
    ? ["--quiet"]
    : ["--quiet", "--no-config", "--unstable-lazy-dynamic-imports"];
  const permissions = ffi ? [...AGENT_PERMISSIONS, "--allow-ffi"] : AGENT_PERMISSIONS;
  return { command: exec, args: ["run", ...flags, ...permissions, main, AGENT_ARG], cwd };
}

/** What the agent said when it started. */
export interface Started {
  pid: number;
  expires: string;
  /** The agent it replaced without an answer from it (pid, start time, actor), if any. */
  hung?: Pick<AgentSession, "pid" | "actor"> & { started: string };
}

/**
 * Starts an agent for a home.
 *
 * @param start The start message (home absolute, one credential, limits).
 * @param askCode Asked for the vault's one-time code when the agent needs one.
 * @returns The agent's pid and end time.
 * @throws {HecateError} The error the unlock failed with (auth_failed, totp_failed, ...).
 */
export async function startAgent(
  start: StartMessage,
  askCode: (what: string) => Promise<string | undefined>,
): Promise<Started> {
  const { command, args, cwd } = agentCommand(start.pkcs11 !== undefined);
  const child = spawnBackground(command, args, cwd);
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const nextLine = async (): Promise<string | undefined> => {
    for (;;) {
      const i = buf.indexOf("\n");
      if (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) return undefined;
      buf += value;
    }
  };
  try {
    // What lets `hecate lock` later tell this agent from a process that reuses its pid.
    const started = await processStartTime(child.pid);
    await writer.write(enc.encode(JSON.stringify({ ...start, started }) + "\n"));
    for (;;) {
      const line = await nextLine();
      if (line === undefined) {
        throw new HecateError("internal", "The unlock agent ended before it started");
      }
      const msg = JSON.parse(line) as
        | { need: "totp"; what: string }
        | ({ ok: true } & Started)
        | { ok: false; error: WireError };
      if ("need" in msg) {
        await writer.write(enc.encode(`${(await askCode(msg.what)) ?? ""}\n`));
      } else if (msg.ok) {
        child.unref();
        return {
          pid: msg.pid,
          expires: msg.expires,
          ...(msg.hung && typeof msg.hung.started === "string" && Number.isSafeInteger(msg.hung.pid)
            ? { hung: msg.hung }
            : {}),
        };
      } else {
        const e = msg.error;
        throw new HecateError(e.code, e.message, e.hint === undefined ? {} : { hint: e.hint });
      }
    }
  } finally {
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
  }
}
