/**
 * The audit trail writer: one chained, MACed JSON line per event (see chain.ts and
 * docs/SECURITY.md "Audit trail"), appended under an exclusive lock and flushed to disk before the
 * caller goes on; then the chain key steps forward and the state file is replaced. Needs only the
 * state file, never the master password, so any process that may use a profile can append.
 *
 * Fail closed: when the entry cannot be written the append throws `audit_failed` and the caller
 * releases nothing, unless `HECATE_AUDIT_FAILURE=warn` relaxes that to a warning.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { fromBase64Url, toBase64Url } from "../vault/encoding.ts";
import { randomBytes } from "../vault/primitives.ts";
import { CHAIN_BYTES, entryMac, nextKey, ZERO_MAC } from "./chain.ts";
import { FastHmac } from "./fast_hmac.ts";
import { type AuditEvent, canonicalEntry, sealedLine, seqOf, splitLine } from "./entry.ts";
import {
  AUDIT_FILE,
  AUDIT_LOCK,
  closedSegments,
  SEGMENT_DIR,
  segmentName,
  syncDir,
} from "./segments.ts";
import { retentionAuth, retentionKey } from "./retention.ts";
import {
  type ChainState,
  HeldState,
  initialState,
  removeStaleTempFiles,
  removeStaleTemps,
  STATE_FILE,
  writeState,
  writeStateSync,
} from "./state.ts";

export type { Actor, AuditEvent, DetailValue } from "./entry.ts";
export { AUDIT_FILE } from "./segments.ts";

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
  /**
   * Records an event without waiting for the disk: it goes out with the next group write. For
   * per-statement records on busy connections; never for a record that must precede a release.
   *
   * @throws {HecateError} `audit_failed` when an earlier enqueued record could not be written.
   */
  enqueue?(event: AuditEvent): void;
  /**
   * Throws if an earlier enqueued record could not be written (checked before each statement).
   *
   * @throws {HecateError} `audit_failed`.
   */
  assertWritable?(): void;
  /**
   * Waits until every enqueued record is on disk.
   *
   * @throws {HecateError} `audit_failed` when one could not be written.
   */
  flush?(): Promise<void>;
}

/**
 * Longest wait before deferred records are written (see {@link FileAuditLog.enqueue}): bounds what
 * a crash can lose, and lets a busy pool's records share few flushes.
 */
export const DEFERRED_WRITE_DELAY_MS = 25;

/**
 * Longest time one process keeps the audit lock for consecutive group writes (see
 * {@link FileAuditLog.append}); then it lets other processes have their turn.
 */
export const LOCK_HOLD_MS = 25;

/**
 * How long a hold that has seen concurrent records waits for the next one before it writes the
 * state and lets the lock go: a pool's next statements arrive after a round trip to the server.
 */
export const HOLD_IDLE_MS = 2;

/** How long the next group write waits for more of the callers that took part in earlier ones. */
export const GATHER_MS = 1;

/**
 * Longest span of write times among the lines crash recovery adopts (see FileAuditLog's
 * reconcile): one hold of the lock lasts {@link LOCK_HOLD_MS} plus one write, so this leaves room
 * for a slow disk while lines written long after an older state (a state file put back from an
 * old copy) stay for `audit verify` to report.
 */
export const RECOVERY_SPAN_MS = 5_000;

/** Default size at which the active segment is closed: 64 MiB. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Default age at which the active segment is closed: 30 days. */
export const DEFAULT_SEGMENT_AGE_MS = 30 * 24 * 3600 * 1000;

/** Options for {@link FileAuditLog}; each defaults to its environment setting. */
export interface FileAuditLogOptions {
  /** Clock, injectable for tests. @default {() => new Date()} */
  now?: () => Date;
  /** Host name recorded in each line. @default {Deno.hostname()} */
  host?: string;
  /** Close the active segment at this size. @default {$HECATE_AUDIT_SEGMENT_BYTES or 64 MiB} */
  segmentBytes?: number;
  /** Close it at this age; 0 = never. @default {$HECATE_AUDIT_SEGMENT_AGE or 30 days} */
  segmentAgeMs?: number;
  /** Keep at most this many closed segments; undefined = all. @default {$HECATE_AUDIT_KEEP_SEGMENTS} */
  keepSegments?: number | undefined;
  /** `closed`: a failed write throws; `warn`: it warns. @default {$HECATE_AUDIT_FAILURE or closed} */
  failure?: "closed" | "warn";
  /** Receives warnings in `warn` mode. @default {a `hecate: warning:` line on stderr} */
  onWarning?: (message: string) => void;
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the defaults apply (and failure stays closed)
  }
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

function usage(name: string, value: string): HecateError {
  return new HecateError("usage", `Invalid ${name} "${value}"`, {
    hint: "see docs/SECURITY.md, 'Audit trail settings'",
  });
}

/**
 * Parses a duration such as `30d`, `12h`, `15m`, `90s`, or `0` (off).
 *
 * @param text The duration.
 * @returns Milliseconds.
 * @throws {HecateError} `usage` when malformed.
 */
export function parseDuration(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) throw usage("duration", text);
  const unit = { "": 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2]!]!;
  return Number(m[1]) * unit;
}

function intSetting(name: string): number | undefined {
  const v = env(name);
  if (v === undefined || v === "") return undefined;
  if (!/^\d+$/.test(v)) throw usage(name, v);
  return Number(v);
}

/**
 * The settings in effect, from options and the environment.
 *
 * @param o Explicit options.
 * @returns Resolved settings.
 */
export function auditSettings(o: FileAuditLogOptions = {}): {
  segmentBytes: number;
  segmentAgeMs: number;
  keepSegments: number | undefined;
  failure: "closed" | "warn";
} {
  const ageText = env("HECATE_AUDIT_SEGMENT_AGE");
  const failure = o.failure ?? env("HECATE_AUDIT_FAILURE") ?? "closed";
  if (failure !== "closed" && failure !== "warn") throw usage("HECATE_AUDIT_FAILURE", failure);
  return {
    segmentBytes: o.segmentBytes ?? intSetting("HECATE_AUDIT_SEGMENT_BYTES") ??
      DEFAULT_SEGMENT_BYTES,
    segmentAgeMs: o.segmentAgeMs ??
      (ageText ? parseDuration(ageText) : DEFAULT_SEGMENT_AGE_MS),
    keepSegments: "keepSegments" in o ? o.keepSegments : intSetting("HECATE_AUDIT_KEEP_SEGMENTS"),
    failure,
  };
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let n = 0;
  while (n < bytes.length) n += await f.write(bytes.subarray(n));
}

/**
 * Runs `fn` holding the exclusive audit lock.
 *
 * @param home The home directory.
 * @param fn The critical section.
 * @returns What `fn` returns.
 */
export async function withAuditLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  // Opening is a lookup in the kernel's caches: made synchronously, as a hop to the blocking
  // thread pool costs more CPU than the call. Taking the lock waits for other holders: async.
  const lock = Deno.openSync(`${home}/${AUDIT_LOCK}`, { create: true, write: true, mode: 0o600 });
  try {
    await lock.lock(true);
    return await fn();
  } finally {
    lock.close(); // releases the lock
  }
}

/** The first entry of a chain started for a vault that had none (made before the trail). */
export const CHAIN_START_EVENT: AuditEvent = {
  event: "audit.start",
  actor: { kind: "password" },
  outcome: "ok",
};

/**
 * Starts a new chain in a home: a fresh first key A0, its first entry, and the state file for
 * the entry after it; any earlier trail files are moved aside (they belong to another chain).
 * The first entry is on disk before the state file exists, so the state never holds A0 (which
 * would let its reader forge the whole trail): it starts at `A(1)`. Store the returned key in
 * the vault.
 *
 * @param home The home directory.
 * @param now Current time.
 * @param first The chain's first entry (`init` for a new vault).
 * @returns A0.
 */
export async function startChain(
  home: string,
  now: Date = new Date(),
  first: AuditEvent = CHAIN_START_EVENT,
): Promise<Uint8Array> {
  const a0 = randomBytes(CHAIN_BYTES);
  await withAuditLock(home, async () => {
    await removeStaleTemps(home);
    const stamp = now.toISOString().replaceAll(":", "-");
    for (const name of [AUDIT_FILE, SEGMENT_DIR, STATE_FILE]) {
      await Deno.rename(`${home}/${name}`, `${home}/${name}.before-${stamp}`).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
    const canonical = canonicalEntry(1, now.toISOString(), first, Deno.pid, hostName());
    const mac = entryMac(a0, ZERO_MAC, new TextEncoder().encode(canonical));
    const line = new TextEncoder().encode(sealedLine(canonical, mac));
    const f = await Deno.open(`${home}/${AUDIT_FILE}`, {
      createNew: true,
      write: true,
      mode: 0o600,
    });
    try {
      await writeAll(f, line);
      await f.syncData();
    } finally {
      f.close();
    }
    await syncDir(home);
    const state = initialState(nextKey(a0), now.getTime());
    await writeState(home, { ...state, seq: 1, mac, size: line.length });
  });
  return a0;
}

/** A record waiting for a group write, with its caller's settlement. */
interface Queued {
  event: AuditEvent;
  done: () => void;
  failed: (e: unknown) => void;
  deferred: boolean;
}

const TEXT = new TextEncoder();

/** Lines sealed ahead of their group write (see FileAuditLog's #sealAhead). */
interface SealedAhead {
  /** The hold's state they continue (compared by identity). */
  from: ChainState;
  /** The chain after the last of them. */
  seq: number;
  mac: Uint8Array;
  key: Uint8Array;
  /** Their lines, in queue order. */
  text: string;
  /** How many of the queue's leading records they are. */
  count: number;
  /** A record could not be sealed: the rest waits for the group write. */
  failed?: boolean;
}

/** Appends chained entries to the trail in a home directory. */
export class FileAuditLog implements AuditSink {
  readonly #home: string;
  readonly #now: () => Date;
  readonly #host: string;
  readonly #options: FileAuditLogOptions;
  readonly #warn: (message: string) => void;
  /** Records waiting for the next write, with their callers' settlements. */
  #queue: Queued[] = [];
  #draining = false;
  /** Pending start of a write of deferred records only. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Callers of flush() in progress: write everything now. */
  #urgent = 0;
  /** The deferred records' wait is over: write them. */
  #due = false;
  /** Wakes a hold waiting for the next record (see #nextRecord). */
  #arrived: (() => void) | undefined;
  /** Callers of flush() waiting for the queue to empty. */
  #drained: (() => void)[] = [];
  /** The chain's HMAC engine (the verifier's, allocation-free on its step path). */
  #hmac: FastHmac | undefined;
  /** Why an enqueued record was lost: every later record is refused (fail closed). */
  #lost: HecateError | undefined;
  /** Lines of queued records sealed while a hold waited for the rest of its next batch. */
  #ahead: SealedAhead | undefined;
  /** While a hold waits for its next batch: the state the queued records continue. */
  #sealFrom: ChainState | undefined;
  /** The retention key R (derived from A0), once a password unlock handed it over. */
  #retentionKey: Uint8Array | undefined;
  /** Whether the next locked append should look for closed segments beyond the limit. */
  #retentionDue = false;

  /**
   * @param home The home directory.
   * @param options Clock, host, segments, failure mode.
   */
  constructor(home: string, options: FileAuditLogOptions = {}) {
    this.#home = home;
    this.#now = options.now ?? (() => new Date());
    this.#host = options.host ?? hostName();
    this.#options = options;
    this.#warn = options.onWarning ?? ((m) => console.error(`hecate: warning: ${m}`));
  }

  /**
   * Lets this log remove closed segments beyond `keepSegments`, which needs the proof only the
   * holder of A0 can make (see retention.ts). Called after a password unlock; without it the log
   * closes segments but never removes one. Keeps only the derived retention key, not A0.
   *
   * @param a0 The chain's first key, from the vault.
   */
  enableRetention(a0: Uint8Array): void {
    this.#retentionKey = retentionKey(a0);
    this.#retentionDue = true;
  }

  /** Path of the active segment. */
  get path(): string {
    return `${this.#home}/${AUDIT_FILE}`;
  }

  /**
   * Records one event durably; resolves only once its line is written and flushed to disk.
   * Concurrent callers in one process share a write (group commit): records that arrive while a
   * write is under way go out together in the next one, with one flush, in arrival order, and
   * batches that follow each other closely share one hold of the lock (see
   * {@link LOCK_HOLD_MS}). The state file is replaced when the hold ends, before the lock is let
   * go: a lone caller resolves only after that, as before; a batch followed by another resolves
   * once its lines are flushed, and if the process dies before the state catches up the next
   * writer adopts those lines (crash recovery, docs/SECURITY.md "Writing").
   *
   * @throws {HecateError} `audit_failed` when it cannot be written.
   */
  append(event: AuditEvent): Promise<void> {
    return new Promise<void>((done, failed) => {
      this.assertWritable();
      this.#queue.push({ event, done, failed, deferred: false });
      if (this.#sealFrom) this.#sealAhead(this.#sealFrom);
      this.#arrived?.();
      this.#kick();
    });
  }

  /**
   * Queues one event for the next group write and returns at once. A write of deferred records
   * starts at most {@link DEFERRED_WRITE_DELAY_MS} after the first of them (at once when a durable
   * record or a flush comes), and everything enqueued meanwhile goes out together, so a busy pool
   * pays one flush per batch instead of one per statement, and its statements do not wait for the
   * disk. The pending write keeps the process alive, so a script that simply ends still writes its
   * records. The price: a crash can lose the records of the last moments, and a record that fails to
   * be written is reported late, by the next record or {@link FileAuditLog.flush}; from then on
   * every record is refused, so nothing more is released. Records that must be on disk before
   * something is released (unlock, profile.read) always go through {@link FileAuditLog.append}.
   *
   * @throws {HecateError} `audit_failed` when an earlier enqueued record could not be written.
   */
  enqueue(event: AuditEvent): void {
    this.assertWritable();
    this.#queue.push({
      event,
      done: () => {},
      failed: (e) => {
        this.#lost ??= new HecateError(
          "audit_failed",
          "An audit record of an earlier statement could not be written; nothing more is released",
          {
            cause: e,
            hint: "fix the audit trail's disk or permissions, then open the vault again",
          },
        );
      },
      deferred: true,
    });
    if (this.#sealFrom) this.#sealAhead(this.#sealFrom);
    if (!this.#draining) this.#schedule();
  }

  /**
   * Throws when an enqueued record was lost.
   *
   * @throws {HecateError} `audit_failed`.
   */
  assertWritable(): void {
    if (this.#lost) throw this.#lost;
  }

  /**
   * Waits until every enqueued record is written and flushed, and a group write still holding the
   * lock has replaced the state file and let the lock go (so the state counts every record).
   *
   * @throws {HecateError} `audit_failed` when one could not be written.
   */
  async flush(): Promise<void> {
    this.#urgent++;
    try {
      this.#arrived?.(); // a hold waiting for more records ends now
      this.#kick();
      while (this.#draining || this.#queue.length > 0) {
        await new Promise<void>((resolve) => this.#drained.push(resolve));
      }
    } finally {
      this.#urgent--;
    }
    this.assertWritable();
  }

  /** Starts a write now. */
  #kick(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (!this.#draining) void this.#drain();
  }

  /** Starts a write of deferred records a little later, so that more of them share it. */
  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#due = true;
      if (!this.#draining) void this.#drain();
    }, DEFERRED_WRITE_DELAY_MS);
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length > 0) {
        if (this.#waitsForMore()) {
          this.#schedule(); // only deferred records wait, and not for long yet: let them gather
          break;
        }
        this.#due = false;
        await this.#writeQueued();
      }
    } finally {
      this.#draining = false;
      for (const resolve of this.#drained.splice(0)) resolve();
    }
  }

  /** Whether the queue holds only deferred records whose gathering time is not over. */
  #waitsForMore(): boolean {
    return this.#urgent === 0 && !this.#due && this.#queue.every((b) => b.deferred);
  }

  /**
   * Writes the queue in group writes under one hold of the lock. The first batch pays for the
   * lock, the state read and the crash check; each batch queued while the one before it was being
   * flushed follows under the same hold and pays only its write and its flushes, as nothing else
   * can have touched the trail meanwhile. The hold ends when the queue is empty, after
   * {@link LOCK_HOLD_MS}, or when the segment must be closed (the next hold does that); the state
   * file is replaced then, once. Each batch is settled on its own: a lone record once its line and
   * the state are on disk (as before), a batch among others once its lines are flushed; a failed
   * batch ends the hold, and the next one starts over from the state on disk.
   */
  async #writeQueued(): Promise<void> {
    let batch = this.#take();
    let settings: ReturnType<typeof auditSettings> | undefined;
    try {
      settings = auditSettings(this.#options);
      const s = settings;
      await withAuditLock(this.#home, async () => {
        let { log, state, held } = await this.#openLocked(s);
        let saved = true; // whether the state file counts every flushed line
        let callers = 1; // the most records seen outstanding at once in this hold
        // A process that exits (Deno.exit) while the state is behind writes it on the way out.
        const onExit = () => {
          if (saved) return;
          try {
            writeStateSync(this.#home, state);
          } catch {
            // An async update still in flight may hold the temp file of a first write: the lines
            // are flushed, and the next writer adopts them as after a crash (#reconcile).
          }
        };
        globalThis.addEventListener("unload", onExit);
        try {
          const until = performance.now() + LOCK_HOLD_MS;
          for (let n = 1;; n++) {
            state = await this.#writeLines(log, state, batch.map((b) => b.event), this.#now());
            saved = false;
            const alone = n === 1 && batch.length === 1 && this.#queue.length === 0;
            callers = Math.max(callers, batch.length + this.#queue.length);
            if (!alone) {
              // Other records are being written too: this batch is final now that its lines are
              // flushed (a crash before the state catches up leaves lines the next writer adopts,
              // see #reconcile), and its callers may already queue their next records.
              const written = batch;
              batch = [];
              for (const b of written) b.done();
              // Deferred records' callers do not wait for them, so none is coming back.
              if (written.some((b) => !b.deferred)) {
                await this.#nextRecord(until, callers, state);
              }
            }
            const last = this.#queue.length === 0 || this.#waitsForMore() ||
              performance.now() >= until || this.#rotationDue(state, s, this.#now());
            // The state file is replaced when the hold ends, before the lock is let go: other
            // processes and `audit verify` only ever see it current. A lone record resolves
            // only after that, as it always did.
            if (last) {
              await held.write(state);
              saved = true;
            }
            if (alone) {
              const written = batch;
              batch = [];
              for (const b of written) b.done();
            }
            if (last) break;
            this.#due = false;
            batch = this.#take();
          }
        } catch (e) {
          // The batches settled before this failure are on disk: the state counts them before
          // the lock goes (if it cannot, the next writer's recovery does).
          if (!saved) await held.write(state).catch(() => {});
          throw e;
        } finally {
          this.#ahead = undefined; // sealed on this hold's state: the next hold starts over
          globalThis.removeEventListener("unload", onExit);
          held.close();
          log.close();
        }
      });
    } catch (e) {
      const err = settings ? this.#failure(e, settings) : e;
      for (const b of batch) err === undefined ? b.done() : b.failed(err);
    }
  }

  /**
   * Waits, within a hold, for the next records: until `callers` are queued (as many as were
   * outstanding at once before, so that the callers a batch released and those that queued
   * meanwhile share the next flush instead of taking turns), at most {@link GATHER_MS} once some
   * are queued and {@link HOLD_IDLE_MS} while none is, never past `until`.
   */
  async #nextRecord(until: number, callers: number, state: ChainState): Promise<void> {
    this.#sealFrom = state;
    try {
      await this.#gather(until, callers);
    } finally {
      this.#sealFrom = undefined;
    }
  }

  /** See {@link #nextRecord}. */
  async #gather(until: number, callers: number): Promise<void> {
    for (let i = 0; i < 8 && this.#queue.length < callers; i++) await Promise.resolve();
    const start = performance.now();
    while (this.#queue.length < callers && this.#urgent === 0) {
      const limit = this.#queue.length === 0 ? HOLD_IDLE_MS : GATHER_MS;
      const wait = Math.min(limit - (performance.now() - start), until - performance.now());
      if (wait <= 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arrived = await new Promise<boolean>((resolve) => {
        this.#arrived = () => resolve(true);
        timer = setTimeout(() => resolve(false), wait);
      });
      clearTimeout(timer);
      this.#arrived = undefined;
      if (!arrived) return;
    }
  }

  /**
   * Seals the queued records not sealed yet, continuing the chain from `state` (the hold's state
   * after its last write), while the hold waits for the rest of its next batch: their MACs are then
   * computed while the other callers' statements are still running, not after the last of them
   * arrives. The lines are only written by the next group write of the same hold (#writeLines
   * takes them when they continue its state); a hold that ends first drops them. Each record gets
   * the time it was sealed.
   */
  #sealAhead(state: ChainState): void {
    const queue = this.#queue;
    let a = this.#ahead;
    if (a?.from !== state) {
      if (queue.length === 0) return;
      a = this.#ahead = {
        from: state,
        seq: state.seq,
        mac: state.mac,
        key: state.key,
        text: "",
        count: 0,
      };
    }
    if (a.count >= queue.length || a.failed) return;
    const time = this.#now().toISOString();
    const hmac = this.#hmac ??= new FastHmac();
    for (; a.count < queue.length; a.count++) {
      let canonical: string;
      try {
        canonical = canonicalEntry(a.seq + 1, time, queue[a.count]!.event, Deno.pid, this.#host);
      } catch {
        a.failed = true; // a malformed event: the group write reports it, in its place
        return;
      }
      const c = TEXT.encode(canonical);
      ({ mac: a.mac, next: a.key } = hmac.step(a.key, a.mac, c.subarray(0, c.length - 1)));
      a.seq++;
      a.text += sealedLine(canonical, a.mac);
    }
  }

  /** Takes every queued record for one group write. */
  #take(): Queued[] {
    const batch = this.#queue;
    this.#queue = [];
    return batch;
  }

  /**
   * The error a failed write reports: `audit_failed`, or nothing in `warn` mode (after warning).
   */
  #failure(e: unknown, settings: ReturnType<typeof auditSettings>): HecateError | undefined {
    const err = e instanceof HecateError && e.code === "audit_failed"
      ? e
      : new HecateError("audit_failed", `Cannot write the audit record to "${this.path}"`, {
        cause: e,
        hint: "nothing was released; fix the permissions or free disk space and retry",
      });
    if (settings.failure === "warn") {
      // The mode may come from HECATE_AUDIT_FAILURE, the vault's policy or the command itself
      // (doctor, audit verify): name the mode, not one of its sources.
      this.#warn(`${err.message} (audit failure mode "warn": continuing without it)`);
      return undefined;
    }
    return err;
  }

  /** Whether the active segment must be closed before the next entry. */
  #rotationDue(
    state: ChainState,
    settings: ReturnType<typeof auditSettings>,
    now: Date,
  ): boolean {
    const age = now.getTime() - state.segmentStarted;
    return state.size > 0 &&
      (state.size >= settings.segmentBytes ||
        (settings.segmentAgeMs > 0 && age >= settings.segmentAgeMs));
  }

  /**
   * Records several events under one lock, one write and one flush (for bulk producers and the
   * benchmark). Rotation is checked once, before the batch.
   *
   * @param events The events, in order.
   * @throws {HecateError} `audit_failed` when they cannot be written.
   */
  async appendMany(events: readonly AuditEvent[]): Promise<void> {
    const settings = auditSettings(this.#options);
    try {
      await withAuditLock(this.#home, async () => {
        const { log, state, held } = await this.#openLocked(settings);
        try {
          await this.#write(log, held, state, events, this.#now());
        } finally {
          held.close();
          log.close();
        }
      });
    } catch (e) {
      const err = this.#failure(e, settings);
      if (err) throw err;
    }
  }

  /**
   * Under the lock: reads the state, removes what a killed writer left, recovers from a crash,
   * closes the segment or removes old ones when due, and opens the active file for appending.
   *
   * The files are opened and the state read with synchronous calls (lookups and copies in the
   * kernel's caches); only flushes and directory work wait on the event loop. The home is listed
   * for a killed writer's temp files (and an older slot zeroed) on this process's first hold and
   * whenever the state file is not exactly as this process's last update left it: a temp file
   * is only made by a writer that found the state file missing, in format 1 or without a valid
   * slot, and one killed between its slot writes leaves two valid slots, so neither can have
   * happened since while the file is as this process left it (see HeldState.untouched). The
   * state, the trail's size and the rotation are checked on every hold.
   */
  async #openLocked(
    settings: ReturnType<typeof auditSettings>,
  ): Promise<{ log: Deno.FsFile; state: ChainState; held: HeldState }> {
    const home = this.#home;
    const held = HeldState.open(home);
    if (!held) {
      throw new HecateError(
        "audit_failed",
        `The audit state file "${home}/${STATE_FILE}" is missing`,
        {
          hint:
            "nothing was released; run 'hecate audit verify' (the trail may have been tampered with)",
        },
      );
    }
    let log: Deno.FsFile | undefined;
    try {
      if (!held.untouched) {
        await removeStaleTempFiles(home);
        await held.scrub();
      }
      let state = held.info.state;
      const now = this.#now();
      log = this.#openTrail();
      state = await this.#reconcile(log, held, state);
      if (this.#rotationDue(state, settings, now)) {
        log.close();
        log = undefined;
        state = await this.#rotate(held, state, now);
        log = this.#openTrail();
        this.#retentionDue = true;
      }
      const r = this.#retentionKey;
      if (r && this.#retentionDue && settings.keepSegments !== undefined) {
        this.#retentionDue = false;
        const closed = await closedSegments(home);
        if (closed.length > settings.keepSegments) {
          if (state.size > 0) {
            // The retention record opens a segment, where the verifier looks for it.
            log.close();
            log = undefined;
            state = await this.#rotate(held, state, now);
            log = this.#openTrail();
          }
          state = await this.#retain(log, held, state, settings.keepSegments, now, r);
        }
      }
      return { log, state, held };
    } catch (e) {
      log?.close();
      held.close();
      throw e;
    }
  }

  /** Opens the active segment for appending (synchronously: see #openLocked). */
  #openTrail(): Deno.FsFile {
    return Deno.openSync(this.path, { read: true, append: true, create: true, mode: 0o600 });
  }

  /**
   * Brings the state in line with the active file after a crash. A writer replaces the state
   * file once per hold of the lock (see #writeQueued), so a crash can leave lines of one or more
   * of its batches flushed but not yet counted by the state: those complete lines are adopted
   * when their MACs prove them under the state's key, they all come from one process (same pid)
   * and were written within {@link RECOVERY_SPAN_MS} of each other. A partial line at the end is
   * a write that never completed, so never final: it is cut off. Anything else (lines that do not verify, lines of several processes, a file shorter than
   * the state says) is left as it is for `audit verify` to report, and appending goes on after it.
   */
  async #reconcile(log: Deno.FsFile, held: HeldState, state: ChainState): Promise<ChainState> {
    const size = log.statSync().size;
    if (size === state.size) return state;
    if (size < state.size || size - state.size > 16 * 1024 * 1024) return { ...state, size };
    const extra = new Uint8Array(size - state.size);
    await log.seek(state.size, Deno.SeekMode.Start);
    let got = 0;
    while (got < extra.length) {
      const n = await log.read(extra.subarray(got));
      if (n === null) break;
      got += n;
    }
    const complete = extra.lastIndexOf(0x0a) + 1; // bytes of complete lines
    let { seq, mac, key } = state;
    let writer: unknown;
    let first = NaN;
    let start = 0;
    const dec = new TextDecoder();
    while (start < complete) {
      const nl = extra.indexOf(0x0a, start);
      const line = extra.subarray(start, nl);
      start = nl + 1;
      const parts = splitLine(line);
      if (!parts || seqOf(line) !== seq + 1) return { ...state, size };
      const computed = entryMac(key, mac, new Uint8Array([...parts.body, 0x7d]));
      if (toBase64Url(computed) !== parts.mac) return { ...state, size };
      let o: { pid?: unknown; time?: unknown };
      try {
        o = JSON.parse(dec.decode(line));
      } catch {
        return { ...state, size };
      }
      const time = typeof o.time === "string" ? Date.parse(o.time) : NaN;
      if (writer === undefined) first = time;
      if (
        (writer !== undefined && writer !== o.pid) || !(Math.abs(time - first) <= RECOVERY_SPAN_MS)
      ) return { ...state, size };
      writer = o.pid;
      seq++;
      mac = computed;
      key = nextKey(key);
    }
    // A write that never completed, so never final, after the lines that did.
    if (complete < extra.length) await log.truncate(state.size + complete);
    if (complete === 0) return state;
    const adopted = { ...state, seq, mac, key, size: state.size + complete };
    await held.write(adopted);
    return adopted;
  }

  /** Writes the events' lines and flushes them, then replaces the state file. */
  async #write(
    log: Deno.FsFile,
    held: HeldState,
    state: ChainState,
    events: readonly AuditEvent[],
    now: Date,
  ): Promise<ChainState> {
    const next = await this.#writeLines(log, state, events, now);
    await held.write(next);
    return next;
  }

  /**
   * Writes the events' lines in one write and flushes them; returns the state after them, which
   * the caller must write to the state file before it lets the lock go.
   */
  async #writeLines(
    log: Deno.FsFile,
    state: ChainState,
    events: readonly AuditEvent[],
    now: Date,
  ): Promise<ChainState> {
    const enc = TEXT;
    const time = now.toISOString();
    let { seq, mac, key } = state;
    let text = "";
    let from = 0;
    // The leading records sealed while the hold waited for them (#sealAhead), if they continue
    // this very state and are all in this batch.
    const a = this.#ahead;
    this.#ahead = undefined;
    if (a?.from === state && a.count <= events.length) {
      ({ seq, mac, key, text } = a);
      from = a.count;
    }
    const hmac = this.#hmac ??= new FastHmac();
    for (let i = from; i < events.length; i++) {
      const event = events[i]!;
      seq++;
      const canonical = canonicalEntry(seq, time, event, Deno.pid, this.#host);
      const c = enc.encode(canonical);
      // The canonical bytes end with "}"; the step takes the line's body before it.
      ({ mac, next: key } = hmac.step(key, mac, c.subarray(0, c.length - 1)));
      text += sealedLine(canonical, mac);
    }
    const bytes = enc.encode(text);
    // One write of all the lines: with O_APPEND and the lock, lines never interleave. It only
    // copies into the page cache, so it is made synchronously (an asynchronous call costs a
    // thread hand-off); the flush, which waits for the disk, leaves the event loop free.
    let n = 0;
    while (n < bytes.length) n += log.writeSync(bytes.subarray(n));
    await log.syncData();
    return { ...state, seq, mac, key, size: state.size + bytes.length };
  }

  async #rotate(held: HeldState, state: ChainState, now: Date): Promise<ChainState> {
    const dir = `${this.#home}/${SEGMENT_DIR}`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.rename(this.path, `${this.#home}/${segmentName(state.segmentFirst)}`);
    await syncDir(dir);
    await syncDir(this.#home);
    const next = { ...state, size: 0, segmentFirst: state.seq + 1, segmentStarted: now.getTime() };
    await held.write(next);
    return next;
  }

  /**
   * Removes the oldest closed segments beyond `keep`, after writing an in-chain record of what
   * goes: each segment's name, first and last sequence number and last MAC, and `auth`, the
   * proof under the retention key that entries up to the last removed one may be missing (see
   * retention.ts). The record is the first entry of the active segment, where `audit verify`
   * looks for it.
   */
  async #retain(
    log: Deno.FsFile,
    held: HeldState,
    state: ChainState,
    keep: number,
    now: Date,
    r: Uint8Array,
  ): Promise<ChainState> {
    const closed = await closedSegments(this.#home);
    const drop = closed.slice(0, Math.max(0, closed.length - keep));
    if (drop.length === 0) return state;
    const removed = [];
    for (const [i, seg] of drop.entries()) {
      const last = await lastLine(seg.path);
      const parts = last ? splitLine(last) : undefined;
      const nextFirst = closed[i + 1]?.first ?? state.segmentFirst;
      removed.push({
        segment: seg.name,
        first_seq: seg.first!,
        last_seq: last ? seqOf(last) : nextFirst - 1,
        last_mac: parts?.mac ?? "",
      });
    }
    // The kept chain must start right after the last removed entry, with that entry's MAC as it
    // stands on disk; anything else is not removed, and verify judges the segments as they are.
    const end = removed.at(-1)!;
    const kept = closed[drop.length]?.first ?? state.segmentFirst;
    let lastMac: Uint8Array;
    try {
      lastMac = fromBase64Url(end.last_mac);
    } catch {
      return state;
    }
    if (end.last_seq !== kept - 1 || lastMac.length !== CHAIN_BYTES) return state;
    const after = await this.#write(log, held, state, [{
      event: "audit.retention",
      actor: { kind: "password" },
      outcome: "ok",
      detail: { removed, auth: retentionAuth(r, end.last_seq, lastMac) },
    }], now);
    for (const seg of drop) await Deno.remove(seg.path);
    await syncDir(`${this.#home}/${SEGMENT_DIR}`);
    return after;
  }
}

/**
 * The last complete line of a file, without its newline.
 *
 * @param path The file.
 * @returns The line's bytes, or undefined for an empty file.
 */
export async function lastLine(path: string): Promise<Uint8Array | undefined> {
  const f = await Deno.open(path, { read: true });
  try {
    const size = (await f.stat()).size;
    let chunk = 4096;
    while (true) {
      const start = Math.max(0, size - chunk);
      const buf = new Uint8Array(size - start);
      await f.seek(start, Deno.SeekMode.Start);
      let got = 0;
      while (got < buf.length) {
        const n = await f.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      const end = buf.length > 0 && buf[buf.length - 1] === 0x0a ? buf.length - 1 : buf.length;
      const nl = buf.lastIndexOf(0x0a, end - 1);
      if (nl >= 0 || start === 0) return end > 0 ? buf.slice(nl + 1, end) : undefined;
      chunk *= 4;
    }
  } finally {
    f.close();
  }
}

/** Base64url of a chain key, for the vault's meta object. */
export function encodeChainKey(key: Uint8Array): string {
  return toBase64Url(key);
}
