/**
 * The lease keeper (providers/sources/lease_keeper.ts) with a fake source: renewal at two thirds
 * of the duration, again and again while kept, a retry after a failed renewal, no renewal of a
 * lease that cannot be renewed, revoke once at release and at close, and nothing after release.
 */

import assert from "node:assert/strict";
import { type LeaseEvent, LeaseKeeper } from "../providers/sources/lease_keeper.ts";
import type { Lease } from "../providers/sources/source.ts";

const lease = (id: string, seconds: number, renewable = true): Lease => ({
  id,
  durationSeconds: seconds,
  renewable,
  obtainedAt: Date.now(),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fake(opts: { failRenewals?: number } = {}) {
  const renewedAt: number[] = [];
  const revoked: string[] = [];
  const events: LeaseEvent["kind"][] = [];
  let failures = opts.failRenewals ?? 0;
  const keeper = new LeaseKeeper({
    renew: (l) => {
      renewedAt.push(Date.now() - l.obtainedAt);
      if (failures > 0) {
        failures--;
        return Promise.reject(new Error("unreachable"));
      }
      return Promise.resolve({ ...l, obtainedAt: Date.now() });
    },
    revoke: (l) => {
      revoked.push(l.id);
      return Promise.resolve();
    },
    onEvent: (e) => events.push(e.kind),
  });
  return { keeper, renewedAt, revoked, events };
}

Deno.test("lease keeper: renews at about two thirds of the duration, while kept", async () => {
  const f = fake();
  const kept = f.keeper.keep(lease("a", 3));
  await sleep(1500);
  assert.equal(f.renewedAt.length, 0, "not before two thirds");
  await sleep(1200);
  assert.equal(f.renewedAt.length, 1);
  assert.ok(f.renewedAt[0]! >= 1900, `renewed after ${f.renewedAt[0]} ms`);
  assert.equal(f.keeper.size, 1);
  await kept.release();
  await kept.release();
  assert.deepEqual(f.revoked, ["a"], "revoked once");
  assert.equal(f.keeper.size, 0);
  await sleep(2200);
  assert.equal(f.renewedAt.length, 1, "no renewal after release");
});

Deno.test("lease keeper: a failed renewal is retried while the lease lasts", async () => {
  const f = fake({ failRenewals: 1 });
  f.keeper.keep(lease("b", 6));
  await sleep(5300);
  assert.deepEqual(f.events.slice(0, 2), ["renew_failed", "renewed"]);
  await f.keeper.close();
  assert.deepEqual(f.revoked, ["b"]);
});

Deno.test("lease keeper: a lease that cannot be renewed is only revoked; close revokes all", async () => {
  const f = fake();
  f.keeper.keep(lease("c", 2, false));
  f.keeper.keep(lease("d", 100));
  f.keeper.keep(lease("e", 100));
  await sleep(1500);
  assert.equal(f.renewedAt.length, 0);
  assert.ok(f.events.includes("not_renewable"));
  await f.keeper.close();
  assert.deepEqual(f.revoked.sort(), ["c", "d", "e"]);
  assert.equal(f.keeper.size, 0);
});

Deno.test("lease keeper: a failed revoke is reported, not thrown", async () => {
  const events: LeaseEvent[] = [];
  const keeper = new LeaseKeeper({
    renew: (l) => Promise.resolve(l),
    revoke: () => Promise.reject(new Error("403")),
    onEvent: (e) => events.push(e),
  });
  await keeper.keep(lease("f", 100)).release();
  assert.equal(events.at(-1)?.kind, "revoke_failed");
});
