/**
 * The `audit` section of `deno task bench`: what the chained trail costs.
 *
 * - append latency (one entry, locked, fsynced, state file replaced) and batched throughput;
 * - an in-process SQLite query through a vault with the file trail vs. with no trail;
 * - `audit verify` over a 1,000,000-entry trail generated with `appendMany`.
 *
 * @module
 */

import process from "node:process";
import { type AuditEvent, FileAuditLog, startChain } from "../../src/audit/log.ts";
import { verifyTrail } from "../../src/audit/verify.ts";
import { initVault, openVault } from "../../src/hecate.ts";
import { MIN_KDF_ITERATIONS } from "../../src/kdf.ts";
import { measure, medianMs, medianOf } from "./measure.ts";
import { HECATE_PERMISSIONS } from "../../scripts/permissions.ts";

const PERMISSIONS = HECATE_PERMISSIONS;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

const QUERY: AuditEvent = {
  event: "query",
  actor: { kind: "apikey", id: "k-7f3a", name: "nightly-close" },
  profile: "billing",
  outcome: "ok",
  rows: 1234,
  durationMs: 42,
  sqlSha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
};

/**
 * Runs the audit benchmarks and prints one line per figure.
 *
 * @param root A scratch directory.
 * @param password A master password for the vault used.
 */
export async function benchAudit(root: string, password: string): Promise<void> {
  const home = `${root}/audit-home`;
  await Deno.mkdir(home, { mode: 0o700 });
  await startChain(home);
  const log = new FileAuditLog(home);
  const one = await medianMs(200, () => log.append(QUERY));
  console.log(
    `audit append (locked, fsynced, state replaced): ${one.toFixed(2)} ms median of 200 ` +
      `= ${(1000 / one).toFixed(0)} entries/s one at a time`,
  );
  const batch = Array.from({ length: 1000 }, (_, i) => ({ ...QUERY, rows: i }));
  const batchMs = await medianMs(10, () => log.appendMany(batch));
  console.log(
    `audit appendMany (1,000 per flush): ${(1000 / batchMs * 1000).toFixed(0)} entries/s`,
  );

  const vhome = `${root}/audit-vault`;
  await initVault({ home: vhome, password, kdfIterations: MIN_KDF_ITERATIONS });
  const db = `${root}/audit-bench.db`;
  await Deno.writeFile(db, new Uint8Array());
  const audited = await openVault({ home: vhome, password });
  await audited.profiles.add({ name: "lite", engine: "sqlite", database: db });
  const silent = await openVault({ home: vhome, password, audit: { append: async () => {} } });
  const sql = "select 1 as one";
  const withTrail = await medianMs(50, () => audited.query("lite", sql));
  const without = await medianMs(50, () => silent.query("lite", sql));
  console.log(
    `sqlite query in-process (2 audit records each): ${withTrail.toFixed(2)} ms with the trail, ` +
      `${without.toFixed(2)} ms without (median of 50); a CLI query costs a process start on top`,
  );

  const pwFile = `${root}/audit-password`;
  await Deno.writeTextFile(pwFile, password, { mode: 0o600 });
  const cli = await medianOf(5, () =>
    measure(
      [
        Deno.execPath(),
        "run",
        "--quiet",
        ...PERMISSIONS,
        MAIN,
        "--home",
        vhome,
        "query",
        "lite",
        sql,
      ],
      { env: { HECATE_PASSWORD_FILE: pwFile } },
    ));
  console.log(
    `hecate query lite "${sql}" (CLI, 3 audit records: unlock, profile.read, query): ` +
      `${(cli.wallS * 1000).toFixed(0)} ms median of 5, of which the records ~${
        (withTrail - without + (withTrail - without) / 2).toFixed(0)
      } ms`,
  );

  const big = `${root}/audit-1m`;
  await Deno.mkdir(big, { mode: 0o700 });
  const a0 = await startChain(big);
  const writer = new FileAuditLog(big);
  const chunk = Array.from({ length: 10_000 }, (_, i) => ({ ...QUERY, rows: i }));
  let t = performance.now();
  for (let i = 0; i < 100; i++) await writer.appendMany(chunk);
  const genS = (performance.now() - t) / 1000;
  console.log(`audit trail of 1,000,000 entries generated in ${genS.toFixed(1)} s`);
  t = performance.now();
  const cpu0 = process.cpuUsage();
  const report = await verifyTrail(big, a0);
  const s = (performance.now() - t) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  if (!report.ok || report.entries !== 1_000_000) {
    throw new Error(`verify failed: ${report.problem?.message ?? report.entries}`);
  }
  console.log(
    `audit verify of 1,000,000 entries in ${report.files} files: ${s.toFixed(2)} s = ` +
      `${(1_000_000 / s).toFixed(0)} entries/s (goal: 200,000); CPU ${cpuS.toFixed(2)} s = ` +
      `${(1_000_000 / cpuS).toFixed(0)} entries per CPU-second (${
        (cpuS / s * 100).toFixed(0)
      }% of a core: the rest is other load or I/O)`,
  );
}
