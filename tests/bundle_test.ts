/**
 * The bundled distribution (scripts/bundle.ts) is a working `hecate`: built into a temporary
 * directory, copied away from the checkout (so no deno.json or node_modules can help it), and run
 * through its launcher for the cron path (an API key, a real SQLite query, its audit records),
 * `--help`, and `audit verify` with the master password; and its PostgreSQL cron path starts no
 * part of Deno's Node compatibility layer.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { buildBundle, launcherScript, RUN_FLAGS } from "../scripts/bundle.ts";
import { HECATE_PERMISSIONS } from "../scripts/permissions.ts";
import { PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { pgProfile, startPostgres } from "./support/postgres.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the launcher with a clean environment (no HECATE_* of the outer process). */
async function runLauncher(
  launcher: string,
  args: string[],
  env: Record<string, string>,
  stdin = "",
): Promise<Run> {
  const child = new Deno.Command(launcher, {
    args,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      DENO: Deno.execPath(),
      NO_COLOR: "1",
      ...env,
    },
    cwd: "/",
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("the launcher runs main.js with exactly the documented permission set", () => {
  const text = launcherScript();
  const flags = text.split(/\s+/).filter((w) => w.startsWith("--allow-") || w === "-A");
  assert.deepEqual(flags.sort(), [...HECATE_PERMISSIONS].sort());
  assert.ok(text.includes("--no-config"));
});

Deno.test("the bundle answers an API-key query, audits it, and verifies its trail", async () => {
  const build = await Deno.makeTempDir({ prefix: "hecate-bundle-test-" });
  try {
    // Built inside the temp dir, then moved: the bundle must not depend on where it was built.
    await buildBundle(`${build}/out`);
    await Deno.rename(`${build}/out`, `${build}/moved`);
    const launcher = `${build}/moved/hecate`;
    assert.ok((await Deno.stat(launcher)).mode! & 0o100, "the launcher is executable");
    assert.ok((await Deno.stat(`${build}/moved/verify_worker.js`)).isFile);

    await withHome(async (home) => {
      const vault = await vaultWith(home, ["shop"]);
      const db = new DatabaseSync(`${home}/shop.db`);
      db.exec("create table t (id integer, name text); insert into t values (1, 'ada'), (2, 'bo')");
      db.close();
      const key = await vault.apiKeys.create({ name: "cron", profiles: ["shop"], expires: null });

      const q = await runLauncher(
        launcher,
        [
          "--home",
          home,
          "query",
          "shop",
          "select id, name from t where id >= ? order by id",
          "--param",
          "1",
        ],
        { HECATE_API_KEY: key },
      );
      assert.equal(q.code, 0, q.stderr);
      assert.equal(q.stdout, "id,name\n1,ada\n2,bo\n");
      assert.ok(!q.stdout.includes(key) && !q.stderr.includes(key));

      const trail = (await Deno.readTextFile(`${home}/audit.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l) as { event: string; actor: { kind: string }; rows?: number });
      const cron = trail.filter((e) => e.actor.kind === "apikey").map((e) => e.event);
      assert.deepEqual(cron, ["unlock", "profile.read", "query"]);

      const verify = await runLauncher(
        launcher,
        ["--home", home, "--password-stdin", "audit", "verify"],
        {},
        PW + "\n",
      );
      assert.equal(verify.code, 0, verify.stderr);

      // The command tree is the same as from source: --help lists the same text.
      const helpBundle = await runLauncher(launcher, ["--help"], {});
      const helpSource = await runHecate(["--help"]);
      assert.equal(helpBundle.code, 0);
      assert.equal(helpBundle.stdout, helpSource.stdout);
      assert.match(helpBundle.stdout, /query \[options\] <name> <sql>/);
    });
  } finally {
    await Deno.remove(build, { recursive: true });
  }
});

Deno.test("a wrong API key through the bundle fails closed with the documented exit code", async () => {
  const build = await Deno.makeTempDir({ prefix: "hecate-bundle-test-" });
  try {
    const launcher = await buildBundle(`${build}/out`);
    await withHome(async (home) => {
      const vault = await vaultWith(home, ["shop"]);
      const key = await vault.apiKeys.create({ name: "cron", profiles: ["shop"], expires: null });
      const wrong = key.slice(0, -4) + (key.endsWith("AAAA") ? "BBBB" : "AAAA");
      const r = await runLauncher(launcher, ["--home", home, "query", "shop", "select 1"], {
        HECATE_API_KEY: wrong,
      });
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /^hecate: error: /);
      assert.ok(!r.stderr.includes(wrong));
    });
  } finally {
    await Deno.remove(build, { recursive: true });
  }
});

Deno.test("the bundle's API-key query against PostgreSQL loads no module of Deno's Node layer", async () => {
  // scripts/bundle.ts makes the bundler's require() shim lazy; without that its node:module
  // import starts the Node layer in every run, whatever the command.
  const build = await Deno.makeTempDir({ prefix: "hecate-bundle-test-" });
  await using pg = await startPostgres();
  try {
    await buildBundle(`${build}/out`);
    await withHome(async (home) => {
      const vault = await vaultWith(home, []);
      await vault.profiles.add(pgProfile(pg, "pg"));
      const key = await vault.apiKeys.create({ name: "cron", profiles: ["pg"], expires: null });
      // The launcher's command, with Deno's debug log instead of --quiet.
      const flags = RUN_FLAGS.filter((f) => f !== "--quiet");
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--log-level=debug",
          ...flags,
          ...HECATE_PERMISSIONS,
          `${build}/out/main.js`,
          "--home",
          home,
          "query",
          "pg",
          "select 6 * 7 as answer",
        ],
        clearEnv: true,
        env: { HOME: Deno.env.get("HOME") ?? "/tmp", HECATE_API_KEY: key, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr).split("\n");
      assert.equal(out.code, 0, stderr.filter((l) => !l.startsWith("DEBUG")).join("\n"));
      assert.equal(new TextDecoder().decode(out.stdout), "answer\n42\n");
      assert.ok(stderr.some((l) => l.startsWith("DEBUG") && l.includes("/out/main.js")));
      assert.deepEqual(stderr.filter((l) => l.includes("ext:deno_node/")), []);
    });
  } finally {
    await Deno.remove(build, { recursive: true });
  }
});
