/**
 * How a newly unlocked agent takes the place of the running one, and how an ending agent gives its
 * place up. The new agent has unlocked and bound its socket under a temporary name in `HOME/agent/`
 * before anything here runs, so a failed unlock never reaches the running agent. Then, under the
 * handover lock (./lock.ts): while an agent answers on the socket, it is asked to end (`lock`,
 * reason `replaced`; asked outside the lock, since it removes its files under it); once none
 * answers, the new session file and then the socket (a rename keeps the bound inode) are put in
 * place. An ending agent removes only the socket with its own inode and the session file with its
 * own pid, under the same lock.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { lockAgent, pingAgent, readSession } from "./client.ts";
import { withHandoverLock } from "./lock.ts";
import { agentPaths, type AgentSession } from "./paths.ts";

/** What identifies an agent's own files: its pid (in the session file) and its socket's inode. */
export interface OwnFiles {
  pid: number;
  dev: number;
  ino: number;
  /** The temporary socket name it bound (gone once it took its place). */
  temp: string;
}

/** A replaced agent that answers but does not end within this many asks is an error. */
const MAX_ASKS = 10;

/**
 * The temporary socket name of agent `pid`: short, since a socket path is limited to 107 bytes
 * and the final `agent.sock` must fit wherever this one did.
 *
 * @param home The vault home.
 * @param pid The new agent's pid.
 * @returns `HOME/agent/s<pid>`.
 */
export function tempSocket(home: string, pid: number): string {
  return `${agentPaths(home).dir}/s${pid}`;
}

/**
 * Ends the running agent (if one answers) and puts this agent's session file and socket in place.
 *
 * @param home The vault home.
 * @param own This agent's socket (bound at `own.temp`).
 * @param session This agent's session.
 * @returns The session file this one replaced while its agent did not answer (stopped, hung, or
 * dead: `hecate unlock` kills it if `ps` still shows it, as `hecate lock` does), if there was one.
 * @throws {HecateError} `internal` when the running agent answers but does not end.
 */
export async function takePlace(
  home: string,
  own: OwnFiles,
  session: AgentSession,
): Promise<AgentSession | undefined> {
  const p = agentPaths(home);
  for (let asks = 0;; asks++) {
    let displaced: AgentSession | undefined;
    const placed = await withHandoverLock(home, async () => {
      if (await pingAgent(home)) return false;
      // An agent that ended removed its session file first: one still here did not answer.
      const before = await readSession(home);
      if (before && before.pid !== own.pid) displaced = before;
      // The session first: until the socket follows, a client finds no agent (it asks) rather
      // than a new socket with the old token (a false bad_token record).
      const temp = `${p.session}.${own.pid}.tmp`;
      await Deno.remove(temp).catch(() => {});
      await Deno.writeTextFile(temp, JSON.stringify(session), { mode: 0o600, createNew: true });
      await Deno.rename(temp, p.session);
      await Deno.rename(own.temp, p.socket);
      return true;
    });
    if (placed) return displaced;
    if (asks >= MAX_ASKS) {
      throw new HecateError("internal", "The running unlock agent did not end");
    }
    await lockAgent(home, "replaced");
  }
}

/**
 * Removes this agent's own files: its temporary socket, the socket if it still has this agent's
 * inode, the session file if it still names this agent's pid. Never another agent's.
 *
 * @param home The vault home.
 * @param own This agent's files.
 */
export async function removeOwnFiles(home: string, own: OwnFiles): Promise<void> {
  const p = agentPaths(home);
  await withHandoverLock(home, async () => {
    await Deno.remove(own.temp).catch(() => {});
    if (await isOwnSocket(home, own)) await Deno.remove(p.socket).catch(() => {});
    if (await sessionPid(p.session) === own.pid) await Deno.remove(p.session).catch(() => {});
  }).catch(() => {
    // The directory is gone: so are the files.
  });
}

/** The pid a session file names, or undefined (absent, torn). */
async function sessionPid(path: string): Promise<number | undefined> {
  try {
    return (JSON.parse(await Deno.readTextFile(path)) as Partial<AgentSession>).pid;
  } catch {
    return undefined;
  }
}

/**
 * Whether `HOME/agent/agent.sock` is still this agent's socket (same device and inode).
 *
 * @param home The vault home.
 * @param own This agent's files.
 * @returns False when it is gone or is another agent's.
 */
export async function isOwnSocket(home: string, own: OwnFiles): Promise<boolean> {
  try {
    const info = await Deno.lstat(agentPaths(home).socket);
    return info.isSocket === true && info.ino === own.ino && info.dev === own.dev;
  } catch {
    return false;
  }
}
