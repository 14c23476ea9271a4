/** Retry classification and backoff, without a server (pure functions). */

import assert from "node:assert/strict";
import { HecateError } from "../src/errors.ts";
import {
  backoffDelay,
  isConnectionLost,
  isRetryable,
  isTransient,
  retry,
  retryPolicy,
} from "../src/db/retry.ts";

const err = (code: ConstructorParameters<typeof HecateError>[0], driverCode?: string) =>
  new HecateError(code, "x", { driverCode });

Deno.test("isTransient classifies by driver code, not by message", () => {
  for (
    const c of ["08006", "08001", "57P01", "57P03", "40001", "40P01", "ECONNRESET", "ECONNREFUSED"]
  ) {
    assert.ok(isTransient(err("query_failed", c)), c);
  }
  for (const c of ["42601", "23505", "28P01", "ENOTFOUND", "42P01"]) {
    assert.ok(!isTransient(err("query_failed", c)), c);
  }
  // A lost connection reported without a driver code; never a plain Error with a scary message.
  assert.ok(isTransient(err("connection_failed")));
  assert.ok(!isTransient(err("auth_failed")));
  assert.ok(!isTransient(new Error("Connection terminated unexpectedly (ECONNRESET)")));
  // Serialization failures are transient but leave the connection usable.
  assert.ok(!isConnectionLost(err("query_failed", "40001")));
  assert.ok(isConnectionLost(err("query_failed", "57P01")));
});

Deno.test("isRetryable never repeats a sent statement unless it is idempotent", () => {
  const lost = err("connection_failed", "ECONNRESET");
  assert.ok(isRetryable(lost, "connect", false));
  assert.ok(!isRetryable(lost, "statement", false));
  assert.ok(isRetryable(lost, "statement", true));
  assert.ok(!isRetryable(err("query_failed", "42601"), "connect", true));
});

Deno.test("backoffDelay is full jitter under an exponential cap", () => {
  const p = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
  assert.equal(backoffDelay(0, p, () => 0.999999), 99);
  assert.equal(backoffDelay(2, p, () => 0.5), 200);
  assert.equal(backoffDelay(10, p, () => 0.999999), 999);
  assert.equal(backoffDelay(3, p, () => 0), 0);
  assert.throws(() => retryPolicy({ attempts: 0 }), HecateError);
});

Deno.test("retry stops at the attempt limit and at the first permanent failure", async () => {
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      return Promise.reject(err("connection_failed", "ECONNREFUSED"));
    }, { attempts: 3, baseDelayMs: 1 }),
    HecateError,
  );
  assert.equal(calls, 3);
  calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      return Promise.reject(err("auth_failed", "28P01"));
    }, { attempts: 3, baseDelayMs: 1 }),
    HecateError,
  );
  assert.equal(calls, 1);
  calls = 0;
  const v = await retry(() => {
    calls++;
    return calls < 3 ? Promise.reject(err("connection_failed", "57P03")) : Promise.resolve("ok");
  }, { attempts: 5, baseDelayMs: 1 });
  assert.deepEqual([v, calls], ["ok", 3]);
});
