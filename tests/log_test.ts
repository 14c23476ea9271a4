/**
 * Diagnostic logging: the line format, levels, redaction by field name, and a debug run of
 * `hecate query` through an unlock, a secret source and a connect with canary secrets, whose
 * stderr must show the steps and timings and never a secret.
 */

import assert from "node:assert/strict";
import { initVault, openVault } from "../src/hecate.ts";
import { log, logEnabled, parseLogLevel, setLogLevel } from "../src/log.ts";
import { ITER, passwordFile, runHecate, withHome } from "./support/access.ts";

Deno.test("log lines: ISO time, level, component, message, k=v; levels filter; secret-named fields redacted; off by default", () => {
  const lines: string[] = [];
  setLogLevel(undefined, (l) => lines.push(l));
  log("error", "x", "off");
  assert.deepEqual(lines, []);
  assert.equal(logEnabled("error"), false);
  setLogLevel("info");
  log("debug", "x", "too verbose");
  log("info", "connect", "connected to db", { host: "db.example", ms: 12, password: "p4ss" });
  log("warn", "vault", "odd\nvalue", { apiKey: "k", note: "a b" });
  setLogLevel(undefined);
  assert.equal(lines.length, 2);
  assert.match(
    lines[0]!,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO connect: "connected to db" host=db\.example ms=12 password=\[redacted\]\n$/,
  );
  assert.match(lines[1]!, /WARN vault: "odd\\nvalue" apiKey=\[redacted\] note="a b"\n$/);
  assert.ok(!lines.join("").includes("p4ss"));
  assert.equal(parseLogLevel(" DEBUG "), "debug");
  assert.equal(parseLogLevel("verbose"), undefined);
});

Deno.test("--log-level debug / HECATE_LOG through unlock, source resolution and connect: steps and timings on stderr, never a secret", async () => {
  await withHome(async (home) => {
    const masterCanary = "canary-master-9f3c1e unlock words";
    const sourceCanary = "canary-source-7b2d44";
    await initVault({ home, password: masterCanary, kdfIterations: ITER });
    const vault = await openVault({ home, password: masterCanary, lockout: "off" });
    await Deno.writeFile(`${home}/lite.db`, new Uint8Array(), { mode: 0o600 });
    await vault.profiles.add({
      name: "lite",
      engine: "sqlite",
      database: `${home}/lite.db`,
      secrets: { password: { ref: "env:HECATE_T_LOG_CANARY" } },
    });
    await vault.close();
    const env = {
      HECATE_PASSWORD_FILE: await passwordFile(home, masterCanary),
      HECATE_T_LOG_CANARY: sourceCanary,
    };
    const runs = [
      await runHecate(
        ["--home", home, "--log-level", "debug", "query", "lite", "select 1 as one"],
        {
          env,
        },
      ),
      await runHecate(["--home", home, "query", "lite", "select 1 as one"], {
        env: { ...env, HECATE_LOG: "debug" },
      }),
      // Not the cron path: the command tree reads the flag too.
      await runHecate(["--home", home, "--log-level", "debug", "server", "list"], { env }),
    ];
    for (const r of runs.slice(0, 2)) {
      assert.equal(r.code, 0, r.stderr);
      for (
        const step of ["unlocking", "unlocked", "secret source tried", "connecting", "connected"]
      ) {
        assert.match(r.stderr, new RegExp(` (DEBUG|INFO) \\w+: "${step}"( |$)`, "m"), step);
      }
      assert.match(r.stderr, /scheme=env ref=env:HECATE_T_LOG_CANARY outcome=ok/);
      assert.match(r.stderr, /connect: "connected" engine=sqlite .* ms=\d+/);
    }
    assert.equal(runs[2]!.code, 0, runs[2]!.stderr);
    assert.match(runs[2]!.stderr, /INFO vault: "unlocked" by=password/);
    for (const r of runs) {
      for (const canary of [masterCanary, sourceCanary, "canary-"]) {
        assert.ok(!r.stderr.includes(canary), `secret in stderr: ${r.stderr}`);
        assert.ok(!r.stdout.includes(canary));
      }
    }
    // Off by default: nothing but the result.
    const quiet = await runHecate(["--home", home, "query", "lite", "select 1 as one"], { env });
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, "");
    const warnOnly = await runHecate(["--home", home, "query", "lite", "select 1 as one"], {
      env: { ...env, HECATE_LOG: "warn" },
    });
    assert.equal(warnOnly.stderr, "");
    const bad = await runHecate(["--home", home, "query", "lite", "select 1"], {
      env: { ...env, HECATE_LOG: "loud" },
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /HECATE_LOG must be one of error, warn, info, debug/);
    const badFlag = await runHecate(["--home", home, "--log-level", "loud", "server", "list"], {
      env,
    });
    assert.equal(badFlag.code, 2);
  });
});
