/**
 * What names one unlock agent process for its whole life: its pid with its start time, as `ps`
 * reports them (`lstart`, in UTC). A pid the kernel hands to another process comes with another
 * start time, so `hecate lock` can end a hung agent with SIGKILL without ever signalling a process
 * that merely inherited the agent's pid. `ps` is asked because Deno lets a program read
 * `/proc/PID` only with every permission; it runs through src/run/spawn.ts, so only processes
 * with `--allow-run` (`hecate unlock`, `hecate lock`) use this; the agent itself never does.
 * Where `ps` is missing, nothing is known and nothing is signalled.
 *
 * @module
 */

import { runCaptured } from "../run/spawn.ts";
import { AGENT_ARG } from "./paths.ts";

/** What `ps` says of a process: its owner, start time and command line. */
interface PsLine {
  uid: number;
  started: string;
  args: string;
}

/** One `ps` line for a pid, or undefined (no such process, no `ps`, unexpected output). */
async function ps(pid: number): Promise<PsLine | undefined> {
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  let out: Deno.CommandOutput;
  try {
    out = await runCaptured("ps", ["-o", "uid=", "-o", "lstart=", "-o", "args=", "-p", `${pid}`], {
      env: { LC_ALL: "C", TZ: "UTC" },
      stderr: "null",
    });
  } catch {
    return undefined;
  }
  if (!out.success) return undefined;
  // "  1000 Thu Dec  3 20:25:54 2026 deno run ... __agent": the start time is five words.
  const m = /^\s*(\d+)\s+(\S+\s+\S+\s+\d+\s+\d\d:\d\d:\d\d\s+\d+)\s+(.*)$/.exec(
    new TextDecoder().decode(out.stdout).trim(),
  );
  if (!m) return undefined;
  return { uid: Number(m[1]), started: m[2]!.replace(/\s+/g, " "), args: m[3]! };
}

/**
 * A process's start time, as `ps` gives it in UTC (one-second steps).
 *
 * @param pid The process id.
 * @returns The start time, or undefined when it cannot be known.
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  return (await ps(pid))?.started;
}

/** Whether the pid still names this user's agent process started at `started`. */
async function isTheAgent(pid: number, started: string): Promise<boolean> {
  const p = await ps(pid);
  return p !== undefined && p.started === started && p.uid === Deno.uid() &&
    p.args.split(" ").includes(AGENT_ARG);
}

/**
 * Ends an unlock agent with SIGKILL if, and only if, the pid still names this user's agent
 * process that started at `started`; then waits (up to `waitMs`) until it is gone, so what it held
 * (the vault in its memory, its locks) is released when this returns true.
 *
 * @param pid The agent's pid (from its session file).
 * @param started Its start time as recorded at its start ({@link processStartTime}).
 * @param waitMs How long to wait for it to be gone.
 * @returns True when it was that agent and it is gone; false when nothing was signalled (or it
 * outlived `waitMs`).
 */
export async function killIfSameAgent(
  pid: number,
  started: string,
  waitMs = 5_000,
): Promise<boolean> {
  if (pid === Deno.pid || !await isTheAgent(pid, started)) return false;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    return false; // gone meanwhile, or not allowed to signal it
  }
  const until = Date.now() + waitMs;
  // A zombie no longer shows the agent's command line: it holds nothing any more.
  while (await isTheAgent(pid, started)) {
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
