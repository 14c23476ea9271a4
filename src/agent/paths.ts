/**
 * Where the unlock agent lives: a directory `agent/` (0700) inside the vault home (itself 0700),
 * holding the socket (0600), the session file (0600: the agent's pid and the per-session
 * secret a client must present) and the handover lock. See docs/GATEWAY.md, "Unlock agent".
 *
 * @module
 */

import type { Actor } from "../audit/entry.ts";

/** The argument that makes `hecate` run as the agent (not a command: absent from help). */
export const AGENT_ARG = "__agent";

/** The agent's directory inside the home. */
export const AGENT_DIR = "agent";

/** The agent's files for one home. */
export interface AgentPaths {
  /** `HOME/agent` (0700). */
  dir: string;
  /** `HOME/agent/agent.sock` (0600). */
  socket: string;
  /** `HOME/agent/session.json` (0600). */
  session: string;
  /** `HOME/agent/handover.lock` (0600): held while the socket and session file change hands. */
  lock: string;
}

/**
 * The agent's paths for a home.
 *
 * @param home The vault home (absolute).
 * @returns The directory, socket and session file.
 */
export function agentPaths(home: string): AgentPaths {
  const dir = `${home}/${AGENT_DIR}`;
  return {
    dir,
    socket: `${dir}/agent.sock`,
    session: `${dir}/session.json`,
    lock: `${dir}/handover.lock`,
  };
}

/** What the session file holds (no secret but the token, which only opens the socket). */
export interface AgentSession {
  /** The agent's process id. */
  pid: number;
  /** The per-session secret (base64url of 32 random bytes) a client sends with each request. */
  token: string;
  /** When the agent ends at the latest (ISO 8601). */
  expires: string;
  /**
   * The agent process's start time as `ps` gave it to `hecate unlock` (./process_start.ts; absent
   * without `ps`): with the pid, what lets `hecate lock` end a hung agent and never another
   * process.
   */
  started?: string;
  /** Who unlocked it (as on its `agent.start` record), for the end record `lock` writes then. */
  actor?: Actor;
}
