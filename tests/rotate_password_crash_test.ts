/**
 * Crash safety of `server rotate-password` against real PostgreSQL, real MariaDB and SQL Server
 * through the TDS double: the process is SIGKILLed at each step (held there by the test-only
 * HECATE_TEST_PAUSE_AT, src/lifecycle/test_pause.ts); the next use of the profile settles the
 * pending password (says so on stderr and in the audit trail) and connects, and the profile keeps
 * connecting afterwards.
 */

import assert from "node:assert/strict";
import { HECATE_PERMISSIONS } from "../scripts/permissions.ts";
import { openVault } from "../src/hecate.ts";
import {
  auditLines,
  passwordFile,
  PW,
  ROOT,
  runHecate,
  vaultWith,
  withHome,
} from "./support/access.ts";
import { startMariadb } from "./support/mariadb.ts";
import { startPostgres } from "./support/postgres.ts";
import { startTdsDouble } from "./support/tds_double.ts";
import type { ProfileInput } from "../src/hecate.ts";

/** Starts a rotation paused at `step`, waits until it is there, and SIGKILLs it. */
async function killAt(
  home: string,
  env: Record<string, string>,
  step: string,
  name: string,
): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...HECATE_PERMISSIONS,
      `${ROOT}main.ts`,
      "--home",
      home,
      "server",
      "rotate-password",
      name,
    ],
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      NO_COLOR: "1",
      ...env,
      HECATE_TEST_PAUSE_AT: step,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  for await (const chunk of child.stderr) {
    text += dec.decode(chunk);
    if (text.includes(`paused at ${step}`)) break;
  }
  assert.match(text, new RegExp(`paused at ${step}`), text);
  child.kill("SIGKILL");
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL");
}

/**
 * Kills a rotation of `profile` at each step in turn; after each kill the next use (a query)
 * settles it, says so, and the profile connects with the password the settlement kept.
 */
async function crashEveryStep(profile: ProfileInput): Promise<void> {
  const name = profile.name;
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.profiles.add(profile);
    await vault.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const expected: Record<string, RegExp> = {
      server: /did not reach the server: the current password still logs in/,
      verify: /settled: the new password logs in and is now current/,
      commit: /settled: the new password logs in and is now current/,
    };
    for (const step of ["server", "verify", "commit"]) {
      const before = await openVault({ home, password: PW, lockout: "off" });
      const was = (await before.environment(name)).HECATE_PASSWORD;
      await before.close();
      await killAt(home, env, step, name);
      const shown = await runHecate(["--home", home, "server", "show", name, "--json"], { env });
      assert.equal(JSON.parse(shown.stdout).pending, "rotation not settled", step);
      const q = await runHecate(["--home", home, "query", name, "select 1"], { env });
      assert.equal(q.code, 0, `${step}: ${q.stderr}`);
      assert.match(q.stderr, expected[step]!, step);
      const after = await openVault({ home, password: PW, lockout: "off" });
      const now = (await after.environment(name)).HECATE_PASSWORD;
      if (step === "server") assert.equal(now, was, "the old password stays current");
      else assert.notEqual(now, was, "the new password became current");
      assert.equal((await after.profiles.show(name)).pending, undefined);
      await (await after.connect(name)).close();
      // The next use finds nothing to settle.
      const again = await runHecate(["--home", home, "query", name, "select 1"], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.doesNotMatch(again.stderr, /settled|did not reach/);
      await after.close();
    }
    const settles = (await auditLines(home)).filter((l) => l.event === "rotation.settle");
    assert.deepEqual(settles.map((l) => (l.detail as { kept: string }).kept), [
      "old",
      "new",
      "new",
    ]);
  });
}

Deno.test("SIGKILL at every rotation step (PostgreSQL): the next use settles it and the profile connects", async () => {
  await using pg = await startPostgres();
  await crashEveryStep({
    name: "pg",
    engine: "postgres",
    host: pg.host,
    port: pg.port,
    user: pg.user,
    database: pg.database,
    tls: { mode: "disable" },
    secrets: { password: { value: pg.password } },
  });
});

Deno.test("SIGKILL at every rotation step (MariaDB): the next use settles it and the profile connects", async () => {
  const db = await startMariadb();
  try {
    await crashEveryStep({
      name: "maria",
      engine: "mysql",
      host: db.host,
      port: db.port,
      user: db.user,
      database: db.database,
      tls: { mode: "disable" },
      secrets: { password: { value: db.password } },
    });
  } finally {
    await db.stop();
  }
});

Deno.test("SIGKILL at every rotation step (SQL Server, TDS double): the next use settles it", async () => {
  await using db = await startTdsDouble({ logins: { app: "Old-Pass-1x" } });
  await crashEveryStep({
    name: "app",
    engine: "mssql",
    host: "127.0.0.1",
    port: db.port,
    user: "app",
    tls: { mode: "disable" },
    connectTimeoutMs: 3000,
    secrets: { password: { value: "Old-Pass-1x" } },
  });
});
