/**
 * The HTTP clients of the `gateway` bench, in a process of their own as an application's would
 * be: `deno run --allow-net gateway_client.ts ORIGIN CLIENTS PER_CLIENT` with the API key on
 * standard input; runs CLIENTS concurrent loops of PER_CLIENT `select 1` requests after one warm-up
 * request each and prints `{"qps":..,"lat":[ms,...],"clientCpu":µs per request}` (the process's
 * CPU time over the timed loops, so a run shows what the clients themselves cost).
 *
 * @module
 */

import process from "node:process";

const [origin, clients, perClient] = [Deno.args[0]!, Number(Deno.args[1]), Number(Deno.args[2])];
const key = (await new Response(Deno.stdin.readable).text()).trim();
const body = JSON.stringify({ profile: "pg", sql: "select 1" });

async function one(): Promise<void> {
  const res = await fetch(`${origin}/v1/query`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body,
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`gateway answered ${res.status}`);
}

await Promise.all(Array.from({ length: clients }, one));
const lat: number[] = [];
const c0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: clients }, async () => {
  for (let i = 0; i < perClient; i++) {
    const t = performance.now();
    await one();
    lat.push(performance.now() - t);
  }
}));
const qps = (clients * perClient) / ((performance.now() - t0) / 1000);
const c = process.cpuUsage(c0);
const clientCpu = (c.user + c.system) / (clients * perClient);
console.log(JSON.stringify({ qps, lat, clientCpu }));
