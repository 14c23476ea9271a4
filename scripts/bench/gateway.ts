/**
 * The `gateway` benchmark (issue 18's goal: >= 0.8x): `select 1` with 8 concurrent clients through
 * `startGateway` over loopback HTTP against the library pool (max 8) used directly in the same
 * process, interleaved rounds; throughput and p50/p99 latency of each.
 *
 * @module
 */

import { startPostgres } from "../../tests/support/postgres.ts";
import { startGateway } from "../../src/gateway/server.ts";
import { serverProfile, vaultWith } from "./setup.ts";

const CLIENTS = 8;
const PER_CLIENT = 50;
const ROUNDS = 3;

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
  const g = await startGateway({ home, hostname: "127.0.0.1", port: 0, lockout: "off" });
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
  const gw: { qps: number; lat: number[] }[] = [];
  const ref: { qps: number; lat: number[] }[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      gw.push(await drive(viaGateway));
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
      `(goal >= 0.8x, ${ROUNDS} interleaved rounds)`,
  );
}
