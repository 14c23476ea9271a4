/**
 * Keeps the leases of dynamic credentials alive while what uses them lives (a connection, a pool,
 * a `hecate run` child) and revokes them when it ends: each lease is renewed at about two thirds
 * of its duration (so one missed renewal still leaves a third of the lease to retry), and revoked
 * at release, at close, and, when asked, on SIGINT/SIGTERM before the process exits.
 *
 * Timers are unref'd: a kept lease never holds a process open by itself.
 *
 * @module
 */

import type { Lease, SourceContext } from "./source.ts";
import { sha256 } from "../../src/sha256.ts";
import { toHex, utf8 } from "../../src/vault/encoding.ts";

/**
 * A short, stable name for a lease in messages (a hash, not the id, which is a secret of sorts).
 *
 * @param id The lease id.
 * @returns `lease:` and 12 hex digits of its SHA-256.
 */
export function leaseTag(id: string): string {
  return `lease:${toHex(sha256(utf8(id))).slice(0, 12)}`;
}

/** What the keeper reports (for the audit trail and tests); never the lease id itself. */
export type LeaseEvent =
  | { kind: "renewed"; lease: Lease }
  | { kind: "renew_failed"; lease: Lease; error: unknown }
  | { kind: "not_renewable"; lease: Lease }
  | { kind: "revoked"; lease: Lease }
  | { kind: "revoke_failed"; lease: Lease; error: unknown };

/** How to renew and revoke one lease (its source's calls). */
export interface LeaseOps {
  /** Extends a lease (the source's `renew`). */
  renew(lease: Lease): Promise<Lease>;
  /** Ends a lease (the source's `revoke`). */
  revoke(lease: Lease): Promise<void>;
}

/** Options for {@link LeaseKeeper}. */
export interface LeaseKeeperOptions extends Partial<LeaseOps> {
  /** Receives each event. */
  onEvent?: (event: LeaseEvent) => void;
  /** Fraction of the duration after which to renew. @default {2/3} */
  fraction?: number;
  /**
   * While any lease is kept, revoke them all on SIGINT or SIGTERM and then exit with 128 + the
   * signal number, as a process killed by it would (`hecate query`, a connection or pool of the
   * library). Not for `hecate run`, which passes the signal to its child and revokes when the
   * child has ended. @default {false}
   */
  revokeOnSignals?: boolean;
}

/** A lease under the keeper's care. */
export interface KeptLease {
  /** The lease as last renewed. */
  readonly current: Lease;
  /** Stops renewing and revokes it; safe to call twice. */
  release(): Promise<void>;
}

interface Entry {
  current: Lease;
  ops: LeaseOps;
  timer: ReturnType<typeof setTimeout> | undefined;
  released: Promise<void> | undefined;
}

/** Renews and revokes leases; see the module doc. */
export class LeaseKeeper {
  readonly #opts: LeaseKeeperOptions;
  readonly #entries = new Set<Entry>();
  #signals: [Deno.Signal, () => void][] = [];

  /**
   * @param opts How to renew and revoke, and where events go.
   */
  constructor(opts: LeaseKeeperOptions) {
    this.#opts = opts;
  }

  /** How many leases are kept now. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Starts keeping a lease.
   *
   * @param lease The lease just obtained.
   * @param ops How to renew and revoke it. @default {the keeper's own `renew` and `revoke`}
   * @returns A handle whose `release()` revokes it.
   */
  keep(lease: Lease, ops?: LeaseOps): KeptLease {
    const own = this.#opts;
    const entry: Entry = {
      current: lease,
      ops: ops ?? {
        renew: (l) => own.renew ? own.renew(l) : Promise.resolve(l),
        revoke: (l) => own.revoke ? own.revoke(l) : Promise.resolve(),
      },
      timer: undefined,
      released: undefined,
    };
    this.#entries.add(entry);
    if (this.#opts.revokeOnSignals) this.#listen();
    this.#schedule(entry);
    return {
      get current() {
        return entry.current;
      },
      release: () => this.#release(entry),
    };
  }

  #schedule(entry: Entry): void {
    const l = entry.current;
    if (!l.renewable || l.durationSeconds <= 1) {
      this.#opts.onEvent?.({ kind: "not_renewable", lease: l });
      return;
    }
    const fraction = this.#opts.fraction ?? 2 / 3;
    const due = l.obtainedAt + l.durationSeconds * 1000 * fraction - Date.now();
    const t = setTimeout(() => void this.#renew(entry), Math.max(0, due));
    Deno.unrefTimer(t);
    entry.timer = t;
  }

  async #renew(entry: Entry): Promise<void> {
    entry.timer = undefined;
    if (entry.released) return;
    try {
      const renewed = await entry.ops.renew(entry.current);
      if (entry.released) return;
      entry.current = renewed;
      this.#opts.onEvent?.({ kind: "renewed", lease: renewed });
      this.#schedule(entry);
    } catch (error) {
      this.#opts.onEvent?.({ kind: "renew_failed", lease: entry.current, error });
      // Try once more halfway through what is left, while any of the lease is left.
      const end = entry.current.obtainedAt + entry.current.durationSeconds * 1000;
      const left = end - Date.now();
      if (left > 1000 && !entry.released) {
        const t = setTimeout(() => void this.#renew(entry), left / 2);
        Deno.unrefTimer(t);
        entry.timer = t;
      }
    }
  }

  #release(entry: Entry): Promise<void> {
    entry.released ??= (async () => {
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.timer = undefined;
      try {
        await entry.ops.revoke(entry.current);
        this.#opts.onEvent?.({ kind: "revoked", lease: entry.current });
      } catch (error) {
        this.#opts.onEvent?.({ kind: "revoke_failed", lease: entry.current, error });
      } finally {
        this.#entries.delete(entry);
        if (this.#entries.size === 0) this.#stopSignals();
      }
    })();
    return entry.released;
  }

  /** Revokes every kept lease (and stops listening for signals). */
  async close(): Promise<void> {
    this.#stopSignals();
    await Promise.all([...this.#entries].map((e) => this.#release(e)));
  }

  #listen(): void {
    if (this.#signals.length || Deno.build.os === "windows") return;
    const exitCodes: Partial<Record<Deno.Signal, number>> = { SIGINT: 130, SIGTERM: 143 };
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const fn = () => {
        void this.close().finally(() => Deno.exit(exitCodes[sig]));
      };
      Deno.addSignalListener(sig, fn);
      this.#signals.push([sig, fn]);
    }
  }

  #stopSignals(): void {
    for (const [sig, fn] of this.#signals) Deno.removeSignalListener(sig, fn);
    this.#signals = [];
  }
}

/** One renew or revoke call's outcome, for the audit trail (no lease id: hash it). */
export interface LeaseOutcome {
  kind: "renew" | "revoke";
  /** The reference's scheme (e.g. `vault-db`). */
  scheme: string;
  lease: Lease;
  ok: boolean;
  error?: unknown;
}

/** A lease as the framework hands it back: the lease, and a context for its source's calls. */
export interface HeldLeaseLike {
  readonly ref: { readonly scheme: string };
  readonly source: {
    renew?(l: Lease, c: SourceContext): Promise<Lease>;
    revoke?(l: Lease, c: SourceContext): Promise<void>;
  };
  readonly lease: Lease;
  context(signal: AbortSignal): SourceContext;
}

/** How long one renew or revoke call may take. */
const CALL_TIMEOUT_MS = 10_000;

/**
 * Keeps leases the framework handed back, renewing and revoking each through its own source.
 *
 * @param keeper The keeper.
 * @param held The leases.
 * @param onOutcome Receives each renew and revoke (awaited; its own failure is ignored).
 * @returns A function that releases (revokes) all of them; safe to call twice.
 */
export function keepHeld(
  keeper: LeaseKeeper,
  held: readonly HeldLeaseLike[],
  onOutcome?: (o: LeaseOutcome) => void | Promise<void>,
): () => Promise<void> {
  const report = async (o: LeaseOutcome) => {
    try {
      await onOutcome?.(o);
    } catch {
      // the audit trail's own failure is reported by the trail, not here
    }
  };
  const kept = held.map((h) => {
    const scheme = h.ref.scheme;
    return keeper.keep(h.lease, {
      renew: async (l) => {
        try {
          if (!h.source.renew) throw new Error("not renewable");
          const renewed = await h.source.renew(l, h.context(AbortSignal.timeout(CALL_TIMEOUT_MS)));
          await report({ kind: "renew", scheme, lease: renewed, ok: true });
          return renewed;
        } catch (error) {
          await report({ kind: "renew", scheme, lease: l, ok: false, error });
          throw error;
        }
      },
      revoke: async (l) => {
        if (!h.source.revoke) return;
        try {
          await h.source.revoke(l, h.context(AbortSignal.timeout(CALL_TIMEOUT_MS)));
          await report({ kind: "revoke", scheme, lease: l, ok: true });
        } catch (error) {
          await report({ kind: "revoke", scheme, lease: l, ok: false, error });
          throw error;
        }
      },
    });
  });
  return async () => {
    await Promise.all(kept.map((k) => k.release()));
  };
}
