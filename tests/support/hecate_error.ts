/**
 * Awaiting a promise that must fail with a {@link HecateError}: shared by the driver and provider
 * tests.
 */

import assert from "node:assert/strict";
import { HecateError } from "../../src/errors.ts";

/**
 * Waits for `p` to reject and checks that it rejects with a HecateError.
 *
 * @param p The promise.
 * @returns The error, for further checks.
 */
export async function hecateError(p: Promise<unknown>): Promise<HecateError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof HecateError, `expected HecateError, got ${e}`);
    return e;
  }
  assert.fail("expected a rejection");
}
