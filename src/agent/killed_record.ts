/**
 * The end record of an unlock agent that `hecate lock` (./client.ts) or a newer `hecate unlock`
 * (src/cli/commands/agent.ts) killed because it did not answer: the agent could not write it, so
 * the killer does, with the actor the agent's session file names (its unlock's) and the reason
 * `killed`. Loaded only on that path.
 *
 * @module
 */

import { FileAuditLog } from "../audit/log.ts";
import { policyAuditOptions } from "../policy/overrides.ts";
import type { Actor } from "../audit/entry.ts";
import type { AgentSession } from "./paths.ts";

const KINDS: readonly string[] = ["password", "apikey", "age", "pkcs11", "none"];

/** The session file's actor if it has the shape of one, else `none` (the file is not trusted). */
function actorOf(given: unknown): Actor {
  const a = given as Partial<Record<keyof Actor, unknown>> | null | undefined;
  const short = (v: unknown) => v === undefined || (typeof v === "string" && v.length <= 200);
  if (
    typeof a !== "object" || a === null || typeof a.kind !== "string" || !KINDS.includes(a.kind) ||
    !short(a.id) || !short(a.name)
  ) return { kind: "none" };
  return {
    kind: a.kind as Actor["kind"],
    ...(a.id !== undefined ? { id: a.id as string } : {}),
    ...(a.name !== undefined ? { name: a.name as string } : {}),
  };
}

/**
 * Writes `agent.end` (reason `killed`) for a killed agent, durably.
 *
 * @param home The vault home.
 * @param session The killed agent's session (never its token: only pid and actor are used).
 * @param by The command that killed it.
 * @throws {HecateError} `audit_failed` when it cannot be written (per the home's failure policy).
 */
export async function recordKilledAgent(
  home: string,
  session: Pick<AgentSession, "pid" | "actor">,
  by: "lock" | "unlock",
): Promise<void> {
  const audit = new FileAuditLog(home, await policyAuditOptions(home));
  await audit.append({
    event: "agent.end",
    actor: actorOf(session.actor),
    outcome: "ok",
    reason: "killed",
    detail: { pid: session.pid, by },
  });
  await audit.flush();
}
