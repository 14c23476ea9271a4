/**
 * The `gateway` benchmark (issue 18's goal: >= 0.8x): `select 1` with 8 concurrent clients through
 * `startGateway` over loopback HTTP against the library pool (max 8) used directly in the same
 * process, interleaved rounds; throughput and p50/p99 latency of each. The HTTP clients run in a
 * process of their own (scripts/bench/gateway_client.ts), as an application's would; with
 * `HECATE_BENCH_GATEWAY_INPROCESS=1` they run in the gateway's process (its event loop then
 * serves both ends). `HECATE_BENCH_GATEWAY_AUDIT=deferred` starts the gateway with deferred query
 * records (the direct pool keeps the library's default, each record on disk first).
 *
 * @module
 */

import { startPostgres } from "../../tests/support/postgres.ts";
import { startGateway } from "../../src/gateway/server.ts";
import { serverProfile, vaultWith } from "./setup.ts";

const CLIENTS = 8;
const PER_CLIENT = 100;
const ROUNDS = 5;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

async function drive(one: () => Promise<void>): Promise<{ qps: number; lat: number[] }> {
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    for (let i = 0; i < PER_CLIENT; i++) {
      const t = performance.now();
      await one();
      lat.push(performance.now() - t);
    }
  }));
  return { qps: (CLIENTS * PER_CLIENT) / ((performance.now() - t0) / 1000), lat };
}

/**
 * Runs the section and prints its lines.
 *
 * @param root A scratch directory.
 * @param password The master password.
 */
export async function benchGateway(root: string, password: string): Promise<void> {
  await using server = await startPostgres();
  const home = `${root}/gateway-home`;
  const vault = await vaultWith(home, password, [serverProfile("pg", "postgres", server)], 600_000);
  const key = await vault.apiKeys.create({
    name: "bench",
    profiles: ["pg"],
    expires: null,
    policy: { level: "write" },
  });
  await using pool = await vault.pool("pg", { max: CLIENTS });
  const deferred = Deno.env.get("HECATE_BENCH_GATEWAY_AUDIT") === "deferred";
  const g = await startGateway({
    home,
    hostname: "127.0.0.1",
    port: 0,
    lockout: "off",
    auditStatements: deferred ? "deferred" : true,
  });
  const body = JSON.stringify({ profile: "pg", sql: "select 1" });
  const viaGateway = async () => {
    const res = await fetch(`${g.origin}/v1/query`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body,
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`gateway answered ${res.status}`);
  };
  const direct = async () => void await pool.query("select 1", [], { idempotent: true }).toArray();
  const client = new URL("./gateway_client.ts", import.meta.url).pathname;
  const inProcess = Deno.env.get("HECATE_BENCH_GATEWAY_INPROCESS") === "1";
  const viaClients = async (): Promise<{ qps: number; lat: number[] }> => {
    if (inProcess) return await drive(viaGateway);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-net", client, g.origin, `${CLIENTS}`, `${PER_CLIENT}`],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(key));
    await w.close();
    const out = await child.output();
    if (!out.success) throw new Error("the gateway clients failed");
    return JSON.parse(new TextDecoder().decode(out.stdout));
  };
  const gw: { qps: number; lat: number[] }[] = [];
  const ref: { qps: number; lat: number[] }[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      gw.push(await viaClients());
      ref.push(await drive(direct));
    }
  } finally {
    await g.close();
    await vault.close();
  }
  const sum = (xs: { qps: number }[]) => xs.reduce((n, x) => n + x.qps, 0) / xs.length;
  const lats = (xs: { lat: number[] }[]) => xs.flatMap((x) => x.lat);
  console.log(
    `gateway select 1, ${CLIENTS} clients: ${sum(gw).toFixed(0)} q/s (p50 ` +
      `${pct(lats(gw), 0.5).toFixed(1)} ms, p99 ${
        pct(lats(gw), 0.99).toFixed(1)
      } ms) against the ` +
      `direct pool's ${sum(ref).toFixed(0)} q/s (p50 ${pct(lats(ref), 0.5).toFixed(2)} ms, p99 ` +
      `${pct(lats(ref), 0.99).toFixed(2)} ms): ratio ${(sum(gw) / sum(ref)).toFixed(2)}x ` +
      `(goal >= 0.8x, ${ROUNDS} interleaved rounds, clients ${
        inProcess ? "in the gateway's process" : "in their own process"
      }, gateway records ${deferred ? "deferred" : "on disk first"})`,
  );
}
