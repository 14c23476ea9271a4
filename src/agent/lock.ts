/**
 * The handover lock of a home's agent directory (`HOME/agent/handover.lock`, an flock): every
 * change of who owns `agent.sock` and `session.json` happens while holding it: a new agent putting
 * its socket and session in place, an ending agent removing its own, `hecate lock` removing those
 * of a dead one. So an ending agent's clean-up can never remove a newer agent's files, and two
 * `hecate unlock` racing each other cannot interleave their files. The kernel drops the lock when
 * its holder dies; a holder only does bounded work (a ping with a time limit, renames).
 *
 * @module
 */

import { agentPaths } from "./paths.ts";

/**
 * Runs `fn` holding the home's agent handover lock.
 *
 * @param home The vault home.
 * @param fn The critical section (must not wait for another agent's clean-up).
 * @returns What `fn` returns.
 * @throws {Deno.errors.NotFound} When `HOME/agent/` does not exist (there is nothing to hand over).
 */
export async function withHandoverLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  const lock = await Deno.open(agentPaths(home).lock, { create: true, write: true, mode: 0o600 });
  try {
    await lock.lock(true);
    return await fn();
  } finally {
    // Closing the descriptor releases the lock even if unlock was never reached.
    lock.close();
  }
}
