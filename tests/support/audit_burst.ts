/**
 * A child process for tests/audit_group_commit_test.ts: WORKERS concurrent callers append durable
 * `query` records to the trail in HOME, as a busy library pool does, until the process is killed.
 * After each record's append resolves (the record is final), its caller prints the record's
 * `rows` value on a line of its own.
 *
 * ```text
 * deno run --allow-read --allow-write --allow-env --allow-sys audit_burst.ts HOME WORKERS START
 * ```
 *
 * Each worker's records carry rows START + worker * 1,000,000 + i, so that every run's values are
 * new.
 */

import { FileAuditLog } from "../../src/audit/log.ts";

const [home, workers, start] = Deno.args;
if (!home || !workers || !start) {
  console.error("usage: audit_burst.ts HOME WORKERS START");
  Deno.exit(2);
}
const log = new FileAuditLog(home);
const out = new TextEncoder();
await Promise.all(Array.from({ length: Number(workers) }, async (_, w) => {
  for (let i = 0;; i++) {
    const rows = Number(start) + w * 1_000_000 + i;
    await log.append({
      event: "query",
      actor: { kind: "apikey", id: "burst", name: "burst" },
      profile: "billing",
      outcome: "ok",
      rows,
      durationMs: 0,
    });
    Deno.stdout.writeSync(out.encode(`${rows}\n`));
  }
}));
