/**
 * `deno task bench mssql`: the SQL Server path through the TDS test double
 * (tests/support/tds_double.ts), from the bundle of `deno task bundle`, against the PostgreSQL
 * path and a bare tedious script (scripts/bench/mssql_floor.ts, bundled the same way):
 *
 * - **fixed cost**: from spawning `hecate query` (API key) to the first byte on the wire, caught
 *   by a listener that records it and hangs up, for a PostgreSQL and a SQL Server profile (the
 *   goal of issue 13: SQL Server at most 1.5x PostgreSQL), next to the bare tedious script and
 *   Deno's empty start;
 * - **where the time goes** in the bare script: tedious loaded, first byte, logged in (with and
 *   without TLS), first row;
 * - the whole cron path, `select 1`, against PostgreSQL and the double;
 * - a **1,000,000-row CSV export** from the double, Hecate against the bare script (goal: at least
 *   1.0x its throughput).
 *
 * All runs of a part are interleaved, medians.
 *
 * @module
 */

import { startPostgres } from "../../tests/support/postgres.ts";
import { startTdsDouble } from "../../tests/support/tds_double.ts";
import { makeTestCerts } from "../../tests/support/tds/certs.ts";
import { buildBundle, bundleProgram } from "../bundle.ts";
import { measure, medianInterleaved, report } from "./measure.ts";
import { serverProfile, vaultWith } from "./setup.ts";

const FLOOR = new URL("./mssql_floor.ts", import.meta.url).pathname;
const EXPORT_SQL = "select n, s from big";
const EXPORT_ROWS = 1_000_000;

/** A TCP listener that notes when each connection's first bytes arrive, then hangs up. */
function firstByteListener() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let waiting: ((t: number) => void) | undefined;
  (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(64);
      conn.read(buf).then(() => {
        const t = performance.now();
        waiting?.(t);
        waiting = undefined;
      }).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch { /* closed already */ }
      });
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    /** Milliseconds from spawning `cmd` to its first byte on the wire. */
    async time(cmd: string[], env: Record<string, string>): Promise<number> {
      const first = new Promise<number>((r) => waiting = r);
      const t0 = performance.now();
      const child = new Deno.Command(cmd[0]!, {
        args: cmd.slice(1),
        env: { NO_COLOR: "1", ...env },
        stdout: "null",
        stderr: "null",
      }).spawn();
      const t = await Promise.race([
        first,
        child.status.then(() => new Promise<number>((r) => setTimeout(() => r(NaN), 200))),
      ]);
      await child.status;
      if (Number.isNaN(t)) throw new Error(`${cmd.join(" ")} sent nothing`);
      return t - t0;
    },
    close: () => listener.close(),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs the bare tedious script and returns its phase timestamps. */
async function floorPhases(
  cmd: string[],
  env: Record<string, string>,
): Promise<Record<string, number>> {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    env: { NO_COLOR: "1", ...env },
    stdout: "null",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) throw new Error(`mssql_floor failed: ${text.slice(0, 400)}`);
  return JSON.parse(text.split("\n").at(-1)!);
}

/**
 * The `mssql` section.
 *
 * @param root A temporary directory for the section's files.
 * @param password The master password for its vault.
 */
export async function benchMssql(root: string, password: string): Promise<void> {
  const certs = await makeTestCerts();
  await using pg = await startPostgres();
  await using db = await startTdsDouble({ logins: { sa: password } });
  // A double given a certificate requires TLS: a second one for the TLS runs.
  await using dbTls = await startTdsDouble({
    logins: { sa: password },
    tls: { certPem: certs.serverCertPem, keyPem: certs.serverKeyPem },
  });
  db.answer(EXPORT_SQL, {
    sets: [{
      columns: [{ name: "n", type: "int" }, { name: "s", type: "nvarchar" }],
      rows: function* () {
        for (let i = 1; i <= EXPORT_ROWS; i++) {
          yield [i, (Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, "0").repeat(4)];
        }
      },
    }],
  });
  const wire = firstByteListener();
  try {
    const ms = (name: string, port: number, tls: "disable" | "verify") => ({
      name,
      engine: "mssql" as const,
      host: db.host,
      port,
      user: "sa",
      tls: tls === "verify" ? { mode: "verify" as const, caFile: certs.caFile } : { mode: tls },
      secrets: { password: { value: password } },
    });
    const home = `${root}/home-mssql`;
    const vault = await vaultWith(home, password, [
      serverProfile("pg", "postgres", pg),
      { ...serverProfile("pgwire", "postgres", pg), host: "127.0.0.1", port: wire.port },
      ms("ms", db.port, "disable"),
      ms("mstls", dbTls.port, "verify"),
      ms("mswire", wire.port, "disable"),
    ]);
    const apiKey = await vault.apiKeys.create({
      name: "bench",
      profiles: ["pg", "pgwire", "ms", "mstls", "mswire"],
      expires: null,
    });
    const launcher = await buildBundle(`${root}/bundle-mssql`);
    await bundleProgram(FLOOR, `${root}/mssql-floor`);
    const floor = [
      Deno.execPath(),
      "run",
      "--quiet",
      "--no-config",
      "--allow-all",
      `${root}/mssql-floor/mssql_floor.js`,
    ];
    const emptyJs = `${root}/empty.js`;
    await Deno.writeTextFile(emptyJs, "");
    const hecate = (...a: string[]) => [launcher, "--home", home, ...a];
    const env = { HECATE_API_KEY: apiKey, DENO: Deno.execPath() };
    const floorEnv = (port: number, extra: Record<string, string> = {}) => ({
      MSSQL_HOST: "127.0.0.1",
      MSSQL_PORT: String(port),
      MSSQL_USER: "sa",
      MSSQL_PASSWORD: password,
      ...extra,
    });

    // Fixed cost: spawn to first byte on the wire. Warm the code caches first.
    const fixed: Record<string, () => Promise<number>> = {
      postgres: () => wire.time(hecate("query", "pgwire", "select 1"), env),
      mssql: () => wire.time(hecate("query", "mswire", "select 1"), env),
      tediousFloor: () => wire.time(floor, floorEnv(wire.port)),
    };
    for (const f of Object.values(fixed)) await f();
    const samples: Record<string, number[]> = { denoStart: [] };
    for (let i = 0; i < 11; i++) {
      for (const [k, f] of Object.entries(fixed)) (samples[k] ??= []).push(await f());
      const t0 = performance.now();
      await new Deno.Command(Deno.execPath(), { args: ["run", "--quiet", "--no-config", emptyJs] })
        .output();
      samples.denoStart!.push(performance.now() - t0);
    }
    const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
    console.log("mssql: spawn to first byte on the wire, API key, bundle (median of 11):");
    console.log(`  hecate query, PostgreSQL profile: ${m.postgres!.toFixed(1)} ms`);
    console.log(
      `  hecate query, SQL Server profile: ${m.mssql!.toFixed(1)} ms ` +
        `(${(m.mssql! / m.postgres!).toFixed(2)}x PostgreSQL; goal at most 1.50x)`,
    );
    console.log(`  bare tedious script, bundled: ${m.tediousFloor!.toFixed(1)} ms`);
    console.log(`  Deno running an empty script (whole process): ${m.denoStart!.toFixed(1)} ms`);

    // Where the time goes in the bare tedious script.
    const phases: Record<string, Record<string, number>[]> = { plain: [], tls: [] };
    for (let i = 0; i < 11; i++) {
      phases.plain!.push(await floorPhases(floor, floorEnv(db.port)));
      phases.tls!.push(
        await floorPhases(floor, floorEnv(dbTls.port, { MSSQL_CA: certs.caFile })),
      );
    }
    for (const [k, runs] of Object.entries(phases)) {
      const p = (name: string) => median(runs.map((r) => r[name]!)).toFixed(1);
      console.log(
        `  bare tedious, ${k === "tls" ? "TLS verified" : "no TLS"}, ms since start (median ` +
          `of 11): tedious loaded ${p("loaded")}, first byte ${p("firstByte")}, logged in ` +
          `${p("login")}, first row ${p("firstRow")}, done ${p("done")}`,
      );
    }

    // The whole cron path.
    const q = await medianInterleaved(11, {
      postgres: () => measure(hecate("query", "pg", "select 1"), { env }),
      mssql: () => measure(hecate("query", "ms", "select 1"), { env }),
      mssqlTls: () => measure(hecate("query", "mstls", "select 1"), { env }),
      floor: () => measure(floor, { env: floorEnv(db.port) }),
    });
    report(
      "mssql: cron path select 1, SQL Server (double) (median of 11)",
      q.mssql,
      q.postgres,
      "PostgreSQL",
    );
    report("mssql: same, TLS verified", q.mssqlTls, q.postgres, "PostgreSQL");
    report("mssql: same, no TLS", q.mssql, q.floor, "bare tedious");

    // The 1,000,000-row export.
    const outA = `${root}/ms-a.csv`, outB = `${root}/ms-b.csv`;
    const e = await medianInterleaved(7, {
      hecate: () =>
        measure(hecate("query", "ms", EXPORT_SQL, "--format", "csv", "--output", outA), { env }),
      floor: () =>
        measure(floor, { env: floorEnv(db.port, { MSSQL_SQL: EXPORT_SQL, MSSQL_OUT: outB }) }),
      // The same, with the file synced to disk before it is closed: Hecate syncs its output file
      // (written whole or not at all), so this is the like-for-like floor.
      floorSync: () =>
        measure(floor, {
          env: floorEnv(db.port, { MSSQL_SQL: EXPORT_SQL, MSSQL_OUT: outB, MSSQL_FSYNC: "1" }),
        }),
    });
    const same = (await Deno.readFile(outA)).length === (await Deno.readFile(outB)).length;
    report(
      "mssql: 1,000,000-row CSV export from the double (interleaved, median of 7)",
      e.hecate,
      e.floor,
      "bare tedious",
    );
    report("mssql: same, bare tedious syncing its file", e.hecate, e.floorSync, "bare tedious");
    console.log(
      `  throughput: hecate ${Math.round(EXPORT_ROWS / e.hecate.wallS).toLocaleString("en")} ` +
        `rows/s, bare tedious ${Math.round(EXPORT_ROWS / e.floor.wallS).toLocaleString("en")} ` +
        `rows/s (${(e.floor.wallS / e.hecate.wallS).toFixed(2)}x; goal at least 1.00x), syncing ` +
        `${Math.round(EXPORT_ROWS / e.floorSync.wallS).toLocaleString("en")} rows/s ` +
        `(${(e.floorSync.wallS / e.hecate.wallS).toFixed(2)}x); ` +
        `outputs ${same ? "the same size" : "DIFFER in size"}`,
    );
  } finally {
    wire.close();
    await Deno.remove(certs.dir, { recursive: true }).catch(() => {});
  }
}
