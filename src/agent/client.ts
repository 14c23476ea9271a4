/**
 * The client side of the unlock agent: find it, present the session token, run an operation,
 * stream its output. Anything short of an answer from a live agent of this user (no session
 * file, a file that is not this user's private file, a dead or foreign socket, an agent that is
 * ending) is "no agent": the caller falls back to asking for the password. Kept free of the CLI
 * and the drivers, so the cron path pays only for this module when it asks the agent.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { withHandoverLock } from "./lock.ts";
import { agentPaths, type AgentSession } from "./paths.ts";
import {
  type AgentRequest,
  FRAME,
  FrameReader,
  type LockRequest,
  type ProfileRequest,
  PROTOCOL_VERSION,
  type QueryRequest,
  type WireError,
} from "./protocol.ts";

/**
 * Reads the session file when it is a regular file of this user that no one else can read;
 * otherwise (absent, foreign, too open, torn) undefined.
 *
 * @param home The vault home.
 * @returns The session, or undefined.
 */
export async function readSession(home: string): Promise<AgentSession | undefined> {
  const path = agentPaths(home).session;
  try {
    const info = await Deno.lstat(path);
    if (!info.isFile || info.uid !== Deno.uid() || ((info.mode ?? 0) & 0o077) !== 0) {
      return undefined;
    }
    const s = JSON.parse(await Deno.readTextFile(path)) as AgentSession;
    return typeof s.token === "string" && typeof s.pid === "number" ? s : undefined;
  } catch {
    return undefined;
  }
}

/** An open exchange with the agent. */
interface Exchange {
  conn: Deno.UnixConn;
  frames: FrameReader;
}

async function open(
  home: string,
  request: QueryRequest | ProfileRequest | { op: "ping" } | LockRequest,
): Promise<Exchange | undefined> {
  const session = await readSession(home);
  if (!session) return undefined;
  let conn: Deno.UnixConn;
  try {
    // The token and the request go only to a socket of this user (a foreign one is no agent).
    const socket = agentPaths(home).socket;
    const info = await Deno.lstat(socket);
    if (!info.isSocket || info.uid !== Deno.uid()) return undefined;
    conn = await Deno.connect({ transport: "unix", path: socket });
  } catch {
    return undefined; // dead or foreign socket: not an error, the caller asks instead
  }
  const body: AgentRequest = { v: PROTOCOL_VERSION, token: session.token, ...request };
  try {
    const bytes = new TextEncoder().encode(JSON.stringify(body) + "\n");
    let n = 0;
    while (n < bytes.length) n += await conn.write(bytes.subarray(n));
  } catch {
    conn.close();
    return undefined;
  }
  return { conn, frames: new FrameReader(conn.readable) };
}

function close(x: Exchange): void {
  try {
    x.conn.close();
  } catch {
    // already closed by the reader
  }
}

function wireError(payload: Uint8Array): HecateError {
  const e = JSON.parse(new TextDecoder().decode(payload)) as WireError;
  return new HecateError(e.code, e.message, e.hint === undefined ? {} : { hint: e.hint });
}

/**
 * Runs `query` in the agent, writing its output as it arrives.
 *
 * @param home The vault home.
 * @param request The statement, its parameters and the output format.
 * @param write Receives each chunk of output.
 * @returns True when the agent ran it; false when there is no usable agent (nothing was written).
 * @throws {HecateError} The error the operation ended with, under its own code.
 */
export async function queryViaAgent(
  home: string,
  request: Omit<QueryRequest, "op">,
  write: (chunk: Uint8Array) => Promise<void>,
): Promise<boolean> {
  const x = await open(home, { op: "query", ...request });
  if (!x) return false;
  let answered = false;
  try {
    for (;;) {
      const f = await x.frames.next();
      if (f === undefined) {
        if (!answered) return false; // it closed without a word: a stale or foreign listener
        throw new HecateError("internal", "The unlock agent ended in the middle of an answer");
      }
      if (f.type === FRAME.unavailable && !answered) return false;
      answered = true;
      if (f.type === FRAME.data) await write(f.payload);
      else if (f.type === FRAME.error) throw wireError(f.payload);
      else if (f.type === FRAME.ok) return true;
      else throw new HecateError("internal", "The unlock agent sent an unknown answer");
    }
  } finally {
    close(x);
  }
}

/**
 * Asks the agent for profile information (`list`, `show`): no secret crosses, only what the
 * command prints (summaries; a profile with its secrets masked).
 *
 * @param home The vault home.
 * @param request The operation.
 * @returns The answer's JSON value, or undefined when there is no usable agent.
 * @throws {HecateError} The error the operation ended with (e.g. `profile_not_found`).
 */
export async function profilesViaAgent(
  home: string,
  request: ProfileRequest,
): Promise<unknown> {
  const x = await open(home, request);
  if (!x) return undefined;
  try {
    const f = await x.frames.next();
    if (f === undefined || f.type === FRAME.unavailable) return undefined;
    if (f.type === FRAME.error) throw wireError(f.payload);
    if (f.type !== FRAME.ok) {
      throw new HecateError("internal", "The unlock agent sent an unknown answer");
    }
    return JSON.parse(new TextDecoder().decode(f.payload));
  } finally {
    close(x);
  }
}

/** How long a ping may take before the agent counts as not answering. */
export const PING_MS = 5_000;

/**
 * Whether a live agent answers on the home's socket with the session file's token.
 *
 * @param home The vault home.
 * @param ms How long to wait for the answer.
 * @returns True when it answered `ok` in time.
 */
export async function pingAgent(home: string, ms = PING_MS): Promise<boolean> {
  const x = await open(home, { op: "ping" });
  if (!x) return false;
  // A hung listener (stopped, or blocked) is no agent: closing the connection ends the read.
  const timer = setTimeout(() => close(x), ms);
  try {
    return (await x.frames.next())?.type === FRAME.ok;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    close(x);
  }
}

/**
 * What {@link lockAgent} found: an agent that ended, none, or one that took the request and did
 * not answer within {@link PING_MS} (stopped or blocked; its files are then removed, so nothing can
 * reach it, and it ends itself when it runs again: its socket is gone); `killed`: such an agent
 * (or one whose socket no longer answers) was ended with SIGKILL, after its pid and start time
 * were checked against its session file (./process_start.ts).
 */
export type LockOutcome = "ended" | "none" | "hung" | "killed";

/** Options of {@link lockAgent}. */
export interface LockOptions {
  /**
   * End an agent that does not answer with SIGKILL (needs `--allow-run`, which the agent itself
   * lacks), and record its end (`agent.end`, reason `killed`).
   */
  kill?: boolean;
}

/**
 * Asks the agent of a home to end at once.
 *
 * @param home The vault home.
 * @param reason `replaced` when a newer agent asks (recorded as the old one's end reason).
 * @param ms How long to wait for its answer.
 * @param options Whether to kill an agent that does not answer.
 * @returns What happened; stale or hung agents' files are removed.
 * @throws {HecateError} `audit_failed` when a killed agent's end cannot be recorded.
 */
export async function lockAgent(
  home: string,
  reason?: "replaced",
  ms = PING_MS,
  options: LockOptions = {},
): Promise<LockOutcome> {
  const x = await open(home, { op: "lock", ...(reason ? { reason } : {}) });
  let outcome: LockOutcome = "none";
  if (x) {
    // A stopped agent reads nothing: closing the connection ends the wait (as for a ping).
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      close(x);
    }, ms);
    try {
      const f = await x.frames.next().catch(() => undefined);
      if (f?.type === FRAME.ok) return "ended";
      if (late) outcome = "hung";
    } finally {
      clearTimeout(timer);
      close(x);
    }
  }
  const killed = await removeStale(home, options.kill ?? false);
  if (!killed) return outcome;
  // Its end is recorded here, as the agent would have (after the handover lock is let go).
  const { recordKilledAgent } = await import("./killed_record.ts");
  await recordKilledAgent(home, killed, "lock");
  return "killed";
}

/**
 * Removes the files of an agent that no longer answers (this user's own home only). Under the
 * handover lock, and only if still no agent answers: a new agent may have taken the place since.
 * With `kill`, first ends the process the session file names, if it is still that process.
 *
 * @returns The session of the agent that was killed, if one was.
 */
async function removeStale(home: string, kill: boolean): Promise<AgentSession | undefined> {
  const p = agentPaths(home);
  let killed: AgentSession | undefined;
  await withHandoverLock(home, async () => {
    if (await pingAgent(home)) return;
    const s = kill ? await readSession(home) : undefined;
    if (s?.started) {
      // Loaded only here: the cron path, which also reads the session file, never signals.
      const { killIfSameAgent } = await import("./process_start.ts");
      if (await killIfSameAgent(s.pid, s.started)) killed = s;
    }
    for (const f of [p.session, p.socket]) await Deno.remove(f).catch(() => {});
  }).catch(() => {
    // No agent directory (nothing was left behind), or one this user cannot write.
  });
  return killed;
}
