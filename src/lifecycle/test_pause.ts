/**
 * A test-only pause between rotation steps, so tests can SIGKILL the process at an exact step
 * (tests/rotate_password_crash_test.ts). Inert unless `HECATE_TEST_PAUSE_AT` names the step:
 * it then writes `hecate-test: paused at <step>` to stderr and waits until killed. It changes
 * no data and reads nothing else (docs/SECURITY.md, "server password rotation").
 *
 * @module
 */

/**
 * Waits forever when `HECATE_TEST_PAUSE_AT` equals `step`.
 *
 * @param step `server` (pending stored, server not changed), `verify` (server changed) or
 * `commit` (login proven, not yet current).
 */
export async function pauseAt(step: string): Promise<void> {
  let wanted: string | undefined;
  try {
    wanted = Deno.env.get("HECATE_TEST_PAUSE_AT");
  } catch {
    return; // no env permission: never pauses
  }
  if (wanted !== step) return;
  await Deno.stderr.write(new TextEncoder().encode(`hecate-test: paused at ${step}\n`));
  // A timer keeps the event loop alive until the test kills the process.
  await new Promise(() => setInterval(() => {}, 1 << 30));
}
