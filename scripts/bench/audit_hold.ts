/**
 * The `audithold` section of `deno task bench`: what one hold of the audit lock costs the writing
 * process, in CPU (`process.cpuUsage`: every thread of the process, Deno's blocking pool included)
 * and in wall time.
 *
 * - a lone durable append (one caller, nothing queued): a whole hold with its three flushes;
 * - durable records arriving spread out, as the gateway's do: 8 callers, each appends, then waits
 *   2-4 ms (standing for its HTTP exchange and statement), 500 times; CPU per record net of the
 *   same loop's waits without records.
 *
 * Also runs on its own (`deno run --allow-all scripts/bench/audit_hold.ts`), so that an older
 * tree with this file copied in can be measured alternately with the current one.
 *
 * @module
 */

import process from "node:process";
import { type AuditEvent, FileAuditLog, startChain } from "../../src/audit/log.ts";

const QUERY: AuditEvent = {
  event: "query",
  actor: { kind: "apikey", id: "k-7f3a", name: "gateway" },
  profile: "billing",
  outcome: "ok",
  rows: 1,
  durationMs: 1,
  sqlSha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
};

const CALLERS = 8;
const EACH = 500;

function cpuMs(since: { user: number; system: number }): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1000;
}

const pause = () => new Promise((r) => setTimeout(r, 2 + Math.random() * 2));

/** Each of 8 callers appends (or not), then pauses 2-4 ms, `n` times. */
async function spread(log: FileAuditLog | undefined, n: number): Promise<void> {
  await Promise.all(Array.from({ length: CALLERS }, async () => {
    for (let i = 0; i < n; i++) {
      if (log) await log.append(QUERY);
      await pause();
    }
  }));
}

/**
 * Runs the section and prints its lines.
 *
 * @param root A scratch directory.
 */
export async function benchAuditHold(root: string): Promise<void> {
  const home = `${root}/audit-hold-home`;
  await Deno.mkdir(home, { mode: 0o700 });
  await startChain(home);
  const log = new FileAuditLog(home);
  for (let i = 0; i < 30; i++) await log.append(QUERY);
  const lone = 300;
  let c0 = process.cpuUsage();
  let t0 = performance.now();
  for (let i = 0; i < lone; i++) await log.append(QUERY);
  console.log(
    `audit hold, lone append: ${((performance.now() - t0) / lone * 1000).toFixed(0)} µs wall, ` +
      `${(cpuMs(c0) / lone * 1000).toFixed(0)} µs CPU each (mean of ${lone})`,
  );

  await spread(log, 30);
  c0 = process.cpuUsage();
  t0 = performance.now();
  await spread(log, EACH);
  const cpu = cpuMs(c0);
  const wall = performance.now() - t0;
  const b0 = process.cpuUsage();
  await spread(undefined, EACH);
  const loop = cpuMs(b0);
  const records = CALLERS * EACH;
  console.log(
    `audit hold, spread-out durable records (${CALLERS} callers, 2-4 ms apart): ` +
      `${((cpu - loop) / records * 1000).toFixed(0)} µs CPU per record ` +
      `(the loop alone ${(loop / records * 1000).toFixed(0)} µs), ` +
      `${(records / wall * 1000).toFixed(0)} records/s, load average ${Deno.loadavg()[0]}`,
  );
}

if (import.meta.main) {
  const root = await Deno.makeTempDir({ prefix: "hecate-bench-audithold-" });
  try {
    await benchAuditHold(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}
