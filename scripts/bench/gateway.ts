/**
 * The `gateway` benchmark (issue 18's goal: >= 0.8x): `select 1` with 8 concurrent clients through
 * `startGateway` over loopback HTTP against the library pool (max 8) used directly in the same
 * process, interleaved rounds; throughput and p50/p99 latency of each. The HTTP clients run in a
 * process of their own (scripts/bench/gateway_client.ts), as an application's would; with
 * `HECATE_BENCH_GATEWAY_INPROCESS=1` they run in the gateway's process (its event loop then
 * serves both ends). `HECATE_BENCH_GATEWAY_AUDIT=deferred` starts the gateway with deferred query
 * records (the direct pool keeps the library's default, each record on disk first).
 *
 * Each round also drives a bare `Deno.serve` answering a fixed NDJSON line, with the same client
 * process: the floor under any HTTP gateway on this machine (nothing of Hecate, no database). The
 * line reports the gateway against it too, with the CPU time per request of the serving process
 * and of the client process and how busy the machine's cores were (Linux /proc/stat), so a run
 * says whether the cores or the waits bound it.
 *
 * @module
 */

import process from "node:process";
import { startPostgres } from "../../tests/support/postgres.ts";
import { startGateway } from "../../src/gateway/server.ts";
import { serverProfile, vaultWith } from "./setup.ts";

const CLIENTS = 8;
const PER_CLIENT = 100;
const ROUNDS = 5;

interface Round {
  qps: number;
  lat: number[];
  /** CPU µs per request of the serving process (the bench's own), of the clients' process. */
  serverCpu?: number;
  clientCpu?: number;
  /** Share of all cores busy during the round (0..1), when /proc/stat can be read. */
  busy?: number;
}

/** Busy and total jiffies of all cores (Linux), or undefined elsewhere. */
function cpuTicks(): { busy: number; total: number } | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = v[3]! + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Runs `fn`, adding the serving process's CPU per request and the cores' busy share. */
async function measured(fn: () => Promise<Round>): Promise<Round> {
  const t0 = cpuTicks();
  const c0 = process.cpuUsage();
  const r = await fn();
  const c = process.cpuUsage(c0);
  const t1 = cpuTicks();
  r.serverCpu = (c.user + c.system) / (CLIENTS * PER_CLIENT);
  if (t0 && t1 && t1.total > t0.total) r.busy = (t1.busy - t0.busy) / (t1.total - t0.total);
  return r;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

async function drive(one: () => Promise<void>): Promise<Round> {
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
  // The floor: a bare Deno.serve in this process, answering what the gateway answers for
  // `select 1` with nothing of Hecate behind it.
  const line = '{"?column?":1}\n';
  const floor = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    return new Response(line, { headers: { "content-type": "application/x-ndjson" } });
  });
  const floorOrigin = `http://127.0.0.1:${(floor.addr as Deno.NetAddr).port}`;
  const client = new URL("./gateway_client.ts", import.meta.url).pathname;
  const inProcess = Deno.env.get("HECATE_BENCH_GATEWAY_INPROCESS") === "1";
  const viaClients = async (origin: string): Promise<Round> => {
    if (inProcess) return await drive(origin === g.origin ? viaGateway : viaFloor);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-net", client, origin, `${CLIENTS}`, `${PER_CLIENT}`],
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
  const viaFloor = async () => {
    const res = await fetch(`${floorOrigin}/v1/query`, { method: "POST", body });
    await res.arrayBuffer();
  };
  const gw: Round[] = [];
  const bare: Round[] = [];
  const ref: Round[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      gw.push(await measured(() => viaClients(g.origin)));
      bare.push(await measured(() => viaClients(floorOrigin)));
      ref.push(await measured(() => drive(direct)));
    }
  } finally {
    await floor.shutdown();
    await g.close();
    await vault.close();
  }
  const mean = (xs: Round[], f: (r: Round) => number | undefined) => {
    const v = xs.map(f).filter((x): x is number => x !== undefined);
    return v.length ? v.reduce((n, x) => n + x, 0) / v.length : NaN;
  };
  const sum = (xs: Round[]) => mean(xs, (r) => r.qps);
  const lats = (xs: Round[]) => xs.flatMap((x) => x.lat);
  const cpu = (xs: Round[]) => {
    // The direct pool's callers run in the serving process: there is no client process.
    const clients = mean(xs, (r) => r.clientCpu);
    const client = Number.isNaN(clients) ? "" : ` + ${clients.toFixed(0)} µs clients`;
    return `cpu/request ${mean(xs, (r) => r.serverCpu).toFixed(0)} µs server${client}, cores ${
      (100 * mean(xs, (r) => r.busy)).toFixed(0)
    }% busy`;
  };
  const [load] = Deno.loadavg();
  console.log(
    `gateway select 1, ${CLIENTS} clients: ${sum(gw).toFixed(0)} q/s (p50 ` +
      `${pct(lats(gw), 0.5).toFixed(1)} ms, p99 ${
        pct(lats(gw), 0.99).toFixed(1)
      } ms) against the ` +
      `direct pool's ${sum(ref).toFixed(0)} q/s (p50 ${pct(lats(ref), 0.5).toFixed(2)} ms, p99 ` +
      `${pct(lats(ref), 0.99).toFixed(2)} ms): ratio ${(sum(gw) / sum(ref)).toFixed(2)}x ` +
      `(goal >= 0.8x, ${ROUNDS} interleaved rounds, clients ${
        inProcess ? "in the gateway's process" : "in their own process"
      }, gateway records ${deferred ? "deferred" : "on disk first"}, load average ${
        load?.toFixed(2)
      } at the end)`,
  );
  console.log(
    `  bare Deno.serve floor, same clients: ${sum(bare).toFixed(0)} q/s (p50 ${
      pct(lats(bare), 0.5).toFixed(2)
    } ms); gateway/floor ${(sum(gw) / sum(bare)).toFixed(2)}x, direct pool/floor ${
      (sum(ref) / sum(bare)).toFixed(2)
    }x`,
  );
  console.log(`  gateway: ${cpu(gw)}; floor: ${cpu(bare)}; direct pool: ${cpu(ref)}`);
}
