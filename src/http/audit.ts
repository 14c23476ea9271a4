/**
 * The audit trail seen from an HTTP surface: every record written while a request is handled
 * carries that request's id, client address, user agent and attributes (the console's session,
 * the gateway's key) in its `detail`, however deep in the library the record is written.
 *
 * @module
 */

import type { AuditEvent, DetailValue } from "../audit/entry.ts";
import { FileAuditLog, type FileAuditLogOptions } from "../audit/log.ts";
import { currentRequest } from "./context.ts";

/**
 * Adds the current request's context to an event's detail.
 *
 * @param event The event.
 * @returns The event with `detail.request_id`, `client`, `user_agent` and the attributes.
 */
export function withRequestDetail(event: AuditEvent): AuditEvent {
  const ctx = currentRequest();
  if (!ctx) return event;
  const detail: Record<string, DetailValue> = {
    ...(event.detail ?? {}),
    ...ctx.attributes,
    request_id: ctx.id,
    client: ctx.client,
    user_agent: ctx.userAgent,
  };
  return { ...event, detail };
}

/**
 * The home's audit trail, each record stamped with the current request (a subclass, so the
 * library still treats it as the file trail: chain start, retention).
 */
export class RequestAuditLog extends FileAuditLog {
  /**
   * @param home The home directory.
   * @param options As for FileAuditLog.
   */
  constructor(home: string, options: FileAuditLogOptions = {}) {
    super(home, options);
  }

  /** Records an event with the request's context. */
  override append(event: AuditEvent): Promise<void> {
    return super.append(withRequestDetail(event));
  }

  /** Queues an event with the request's context. */
  override enqueue(event: AuditEvent): void {
    super.enqueue(withRequestDetail(event));
  }

  /** Records several events with the request's context. */
  override appendMany(events: readonly AuditEvent[]): Promise<void> {
    return super.appendMany(events.map(withRequestDetail));
  }
}
