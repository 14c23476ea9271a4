/**
 * A child process for tests/audit_test.ts: appends COUNT entries to the trail in HOME through
 * the library, using only the state file (no password), as a cron job would.
 *
 * ```text
 * deno run --allow-read --allow-write --allow-env --allow-sys audit_appender.ts HOME TAG COUNT
 * ```
 *
 * Prints `ready` once started, then waits for a line on stdin (so that all children start
 * appending at the same moment), then prints `done`.
 */

import { FileAuditLog } from "../../src/audit/log.ts";

const [home, tag, count] = Deno.args;
if (!home || !tag || !count) {
  console.error("usage: audit_appender.ts HOME TAG COUNT");
  Deno.exit(2);
}
const log = new FileAuditLog(home);
console.log("ready");
const reader = Deno.stdin.readable.getReader();
await reader.read();
for (let i = 0; i < Number(count); i++) {
  await log.append({
    event: "query",
    actor: { kind: "apikey", id: tag, name: `job-${tag}` },
    profile: "billing",
    outcome: "ok",
    rows: i,
    durationMs: 1,
  });
}
console.log("done");
