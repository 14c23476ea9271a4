/**
 * `hecate ui` as a process with the `hecate` task's permissions: it prints a one-time login URL on
 * 127.0.0.1, the URL starts a session, and SIGINT stops it cleanly (exit 0, every session closed,
 * `console.stop` in the trail). A bad `--idle` is a usage error (exit 2).
 */

import assert from "node:assert/strict";
import { HECATE_PERMISSIONS, MAIN_TS } from "./support/cli.ts";
import { trailLines } from "../src/audit/read.ts";
import { vaultWith, withHome } from "./support/access.ts";

Deno.test("hecate ui: login URL on 127.0.0.1, Ctrl-C stops it cleanly", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["app"])).close();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...HECATE_PERMISSIONS, MAIN_TS, "--home", home, "ui", "--no-open"],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!/login\/\S+\n/.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const url = /(http:\/\/127\.0\.0\.1:\d+\/console\/login\/\S+)/.exec(out)?.[1];
    assert.ok(url, `a login URL on 127.0.0.1: ${out}`);
    const res = await fetch(url, { redirect: "manual" });
    assert.equal(res.status, 303);
    assert.match(res.headers.get("set-cookie") ?? "", /HttpOnly/);
    await res.body?.cancel();
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const status = await child.status;
    const err = await new Response(child.stderr).text();
    assert.equal(status.code, 0, err);
    assert.match(out, /Console stopped/);
    const events: string[] = [];
    for await (const l of trailLines(home)) if (l.entry) events.push(String(l.entry.event));
    assert.deepEqual(events.filter((e) => e.startsWith("console.")), [
      "console.start",
      "console.session",
      "console.session",
      "console.stop",
    ]);
  });
});

Deno.test("hecate ui: a bad --idle is a usage error", async () => {
  await withHome(async (home) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...HECATE_PERMISSIONS,
        MAIN_TS,
        "--home",
        home,
        "ui",
        "--idle",
        "soon",
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    assert.equal(out.code, 2);
    assert.match(new TextDecoder().decode(out.stderr), /idle/);
  });
});
