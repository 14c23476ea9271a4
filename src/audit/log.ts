/**
 * The audit trail writer: one JSON line per event, appended under an exclusive lock and flushed
 * to disk before the caller goes on. Callers describe what happened with {@link AuditEvent};
 * the writer adds time, process and host. Never pass a secret or a parameter value here.
 *
 * @module
 */

import { HecateError } from "../errors.ts";

/** File name of the trail inside the home directory. */
export const AUDIT_FILE = "audit.jsonl";
const AUDIT_LOCK = "audit.lock";

/**
 * Who is acting.
 *
 * @example
 * ```ts
 * import type { Actor } from "./log.ts";
 * const actor: Actor = { kind: "password" };
 * console.log(actor.kind);
 * ```
 */
export interface Actor {
  /** `password` for the master password; later `apikey`. */
  kind: "password" | "apikey" | "none";
  /** Key id or name where there is one. */
  id?: string;
}

/**
 * What happened, as reported by a layer above.
 *
 * @example
 * ```ts
 * import type { AuditEvent } from "./log.ts";
 * const e: AuditEvent = { event: "unlock", actor: { kind: "password" }, outcome: "ok" };
 * console.log(e.event);
 * ```
 */
export interface AuditEvent {
  /** Event name, e.g. `unlock`, `profile.read`, `query`, `profile.add`. */
  event: string;
  /** Who acted. */
  actor: Actor;
  /** Profile name, when the event concerns one. */
  profile?: string;
  /** Whether it succeeded. */
  outcome: "ok" | "fail";
  /** Failure class (an error code) and a short reason; never a secret. */
  reason?: string;
  /** Rows returned or affected, for queries. */
  rows?: number;
  /** Duration in milliseconds, for queries. */
  durationMs?: number;
  /** SHA-256 (hex) of the SQL text, for queries: identifies the statement without storing it. */
  sqlSha256?: string;
  /** The program started by `hecate run` (its name only: never its arguments or environment). */
  command?: string;
  /** The exit code of that program. */
  exitCode?: number;
}

/**
 * A destination for audit events.
 *
 * @example
 * ```ts ignore
 * const events: AuditEvent[] = [];
 * const sink: AuditSink = { append: (e) => (events.push(e), Promise.resolve()) };
 * const vault = await openVault({ password, audit: sink });
 * ```
 */
export interface AuditSink {
  /**
   * Records an event durably.
   *
   * @throws {HecateError} `audit_failed` when it cannot be written.
   */
  append(event: AuditEvent): Promise<void>;
}

/** Options for {@link FileAuditLog}. */
export interface FileAuditLogOptions {
  /** Clock, injectable for tests. @default {() => new Date()} */
  now?: () => Date;
  /** Host name recorded in each line. @default {Deno.hostname()} */
  host?: string;
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/** Appends JSON lines to `audit.jsonl` in the home directory. */
export class FileAuditLog implements AuditSink {
  readonly #home: string;
  readonly #now: () => Date;
  readonly #host: string;

  /**
   * @param home The home directory.
   * @param options Clock and host.
   */
  constructor(home: string, options: FileAuditLogOptions = {}) {
    this.#home = home;
    this.#now = options.now ?? (() => new Date());
    this.#host = options.host ?? hostName();
  }

  /** Path of the trail file. */
  get path(): string {
    return `${this.#home}/${AUDIT_FILE}`;
  }

  /** {@inheritDoc AuditSink.append} */
  async append(event: AuditEvent): Promise<void> {
    const line = JSON.stringify({
      time: this.#now().toISOString(),
      event: event.event,
      actor: event.actor,
      ...(event.profile !== undefined ? { profile: event.profile } : {}),
      outcome: event.outcome,
      ...(event.reason !== undefined ? { reason: event.reason } : {}),
      ...(event.rows !== undefined ? { rows: event.rows } : {}),
      ...(event.durationMs !== undefined ? { duration_ms: event.durationMs } : {}),
      ...(event.sqlSha256 !== undefined ? { sql_sha256: event.sqlSha256 } : {}),
      ...(event.command !== undefined ? { command: event.command } : {}),
      ...(event.exitCode !== undefined ? { exit_code: event.exitCode } : {}),
      pid: Deno.pid,
      host: this.#host,
    }) + "\n";
    try {
      const lock = await Deno.open(`${this.#home}/${AUDIT_LOCK}`, {
        create: true,
        write: true,
        mode: 0o600,
      });
      try {
        await lock.lock(true);
        const f = await Deno.open(this.path, { create: true, append: true, mode: 0o600 });
        try {
          // One write of the whole line: with O_APPEND and the lock, lines never interleave.
          const bytes = new TextEncoder().encode(line);
          let n = 0;
          while (n < bytes.length) n += await f.write(bytes.subarray(n));
          await f.syncData();
        } finally {
          f.close();
        }
      } finally {
        lock.close();
      }
    } catch (e) {
      throw new HecateError("audit_failed", `Cannot write the audit record to "${this.path}"`, {
        cause: e,
        hint: "nothing was released; fix the permissions or free disk space and retry",
      });
    }
  }
}
