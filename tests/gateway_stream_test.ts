/**
 * A 1,000,000-row result through `hecate serve` (a separate process) against a real PostgreSQL,
 * read by fetch: every row arrives, and the gateway's resident memory stays flat while it streams
 * (sampled from /proc; a gateway that buffered the result would grow by hundreds of MB).
 */

import assert from "node:assert/strict";
import { HECATE_PERMISSIONS, MAIN_TS } from "./support/cli.ts";
import { vaultWith, withHome } from "./support/access.ts";
import { pgProfile, startPostgres } from "./support/postgres.ts";

async function rssKb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0");
}

Deno.test({
  name: "gateway: 1,000,000 rows stream with flat memory",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using pg = await startPostgres();
    await withHome(async (home) => {
      const vault = await vaultWith(home, []);
      await vault.profiles.add(pgProfile(pg, "pg"));
      const key = await vault.apiKeys.create({ name: "big", profiles: ["pg"], expires: null });
      await vault.close();
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          ...HECATE_PERMISSIONS,
          MAIN_TS,
          "--home",
          home,
          "serve",
          "--listen",
          "127.0.0.1:0",
        ],
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      try {
        let out = "";
        while (!/Ctrl-C/.test(out)) {
          const { value, done } = await reader.read();
          if (done) break;
          out += value;
        }
        const origin = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
        assert.ok(origin, out);
        const res = await fetch(`${origin}/v1/query`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}` },
          body: JSON.stringify({
            profile: "pg",
            sql: "select n, repeat('x', 40) as pad from generate_series(1, 1000000) n",
          }),
        });
        assert.equal(res.status, 200);
        const body = res.body!.getReader();
        let bytes = 0, newlines = 0, baseline = 0, peak = 0, lastSample = 0;
        let tail = "";
        for (;;) {
          const { value, done } = await body.read();
          if (done) break;
          bytes += value.length;
          for (const b of value) if (b === 10) newlines++;
          tail = new TextDecoder().decode(value.slice(-40));
          if (bytes - lastSample > 4_000_000) {
            lastSample = bytes;
            const rss = await rssKb(child.pid);
            // The first ~24 MB warm the JS heap up; from then on a stream must stay flat.
            if (bytes < 24_000_000) baseline = Math.max(baseline, rss);
            peak = Math.max(peak, rss);
          }
        }
        assert.equal(newlines, 1_000_002, "header, 1,000,000 rows, end line");
        assert.match(tail, /\{"more":false\}\n$/);
        assert.ok(bytes > 50_000_000, `${bytes} bytes`);
        // After warm-up a flat stream does not grow while sending the remaining 30+ MB; and a
        // gateway that read the whole result first would be far above the cap from the start.
        const growthMb = (peak - baseline) / 1024;
        assert.ok(growthMb < 16, `gateway RSS grew ${growthMb.toFixed(1)} MB after warm-up`);
        assert.ok(peak < 220 * 1024, `gateway RSS peaked at ${(peak / 1024).toFixed(0)} MB`);
      } finally {
        child.kill("SIGTERM");
        while (!(await reader.read()).done) { /* drain */ }
        await child.status;
      }
    });
  },
});
