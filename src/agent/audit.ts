/**
 * The agent's trail: the home's file trail, with one addition: a use of the agent (`agent.use`)
 * can be held and written in one locked write and flush with the record that follows it (the
 * `profile.read` before the profile's secret is used), as the API-key path does with its
 * `unlock` (src/audit/coalesce.ts). Both are on disk before anything is released.
 *
 * @module
 */

import { type AuditEvent, FileAuditLog } from "../audit/log.ts";

/** The file trail with a held `agent.use`. */
export class AgentAuditLog extends FileAuditLog {
  #held: AuditEvent | undefined;

  /**
   * Holds a record until the next one (or {@link AgentAuditLog.release}).
   *
   * @param event The record (an `agent.use`).
   */
  hold(event: AuditEvent): void {
    this.#held = event;
  }

  /**
   * Writes a held record on its own, if there is one.
   *
   * @throws {HecateError} `audit_failed` when it cannot be written.
   */
  async release(): Promise<void> {
    const held = this.#held;
    this.#held = undefined;
    if (held) await super.append(held);
  }

  /**
   * Writes a record durably, with a held one before it in the same write.
   *
   * @param event The record.
   * @throws {HecateError} `audit_failed` when it cannot be written.
   */
  override append(event: AuditEvent): Promise<void> {
    const held = this.#held;
    this.#held = undefined;
    return held ? this.appendMany([held, event]) : super.append(event);
  }
}
