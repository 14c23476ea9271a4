/**
 * `hecate serve` as a process: it says how the transport is protected, answers, and stops cleanly
 * on SIGTERM (exit 0, `gateway.stop` in the trail); plain HTTP on 0.0.0.0 without
 * `--insecure-http` is a usage error (exit 2) and nothing listens; a bad `--listen` is exit 2.
 */

import assert from "node:assert/strict";
import { HECATE_PERMISSIONS, MAIN_TS } from "./support/cli.ts";
import { trailLines } from "../src/audit/read.ts";
import { vaultWith, withHome } from "./support/access.ts";

function serve(home: string, args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...HECATE_PERMISSIONS, MAIN_TS, "--home", home, "serve", ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test("hecate serve: says how it listens, answers, SIGTERM stops it cleanly", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["app"])).close();
    const child = serve(home, ["--listen", "127.0.0.1:0"]).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!/Ctrl-C/.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const origin = /(http:\/\/127\.0\.0\.1:\d+) \(plain HTTP, loopback only\)/.exec(out)?.[1];
    assert.ok(origin, out);
    const res = await fetch(`${origin}/v1/health`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const status = await child.status;
    assert.equal(status.code, 0, await new Response(child.stderr).text());
    assert.match(out, /Gateway stopped/);
    const events: string[] = [];
    for await (const l of trailLines(home)) if (l.entry) events.push(String(l.entry.event));
    assert.deepEqual(events.filter((e) => e.startsWith("gateway.")), [
      "gateway.start",
      "gateway.stop",
    ]);
  });
});

Deno.test("hecate serve: plain HTTP off loopback and a bad --listen are usage errors", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, [])).close();
    for (
      const args of [
        ["--listen", "0.0.0.0:0"],
        ["--listen", "nonsense"],
        ["--listen", "127.0.0.1:0", "--tls-cert", "c.pem"],
      ]
    ) {
      const r = await serve(home, args).output();
      const err = new TextDecoder().decode(r.stderr);
      assert.equal(r.code, 2, `${args.join(" ")}: ${err}`);
      assert.equal(err.trim().split("\n").filter((l) => !l.startsWith("hecate: hint")).length, 1);
    }
  });
});
