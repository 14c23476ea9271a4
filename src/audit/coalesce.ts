/**
 * An audit sink that lets a successful `unlock` record wait for the record that follows it, so
 * that both reach the disk in one locked write and one flush (see docs/SECURITY.md, "Audit
 * trail"). For a caller that releases nothing between the two: `hecate query` with an API key,
 * whose next record is the `profile.read` that must be durable before the profile's secret is
 * used. Both records are then durable before that release, as with two separate writes.
 *
 * The caller must call {@link CoalescingAuditSink.flush} when it stops without another record
 * (e.g. the profile is outside the key's scope): the held record is written then, on its own.
 *
 * @module
 */

import type { AuditEvent, FileAuditLog } from "./log.ts";

/** Wraps a file trail; holds back a successful `unlock` until the next record or a flush. */
export class CoalescingAuditSink {
  readonly #inner: FileAuditLog;
  #held: AuditEvent | undefined;

  /** @param inner The trail that receives every record. */
  constructor(inner: FileAuditLog) {
    this.#inner = inner;
  }

  /**
   * Holds a successful `unlock` (resolving at once); writes any other record durably, together
   * with a held one, in one write.
   *
   * @param event The record.
   * @throws {HecateError} `audit_failed` when it cannot be written.
   */
  append(event: AuditEvent): Promise<void> {
    if (event.event === "unlock" && event.outcome === "ok" && this.#held === undefined) {
      this.#held = event;
      return Promise.resolve();
    }
    const held = this.#take();
    return held ? this.#inner.appendMany([held, event]) : this.#inner.append(event);
  }

  /**
   * Writes a held record on its own, if there is one; otherwise does nothing.
   *
   * @throws {HecateError} `audit_failed` when it cannot be written.
   */
  async flush(): Promise<void> {
    const held = this.#take();
    if (held) await this.#inner.append(held);
  }

  #take(): AuditEvent | undefined {
    const held = this.#held;
    this.#held = undefined;
    return held;
  }
}
