/**
 * `hecate run` and `hecate env` as a user runs them (a separate process with the task's
 * permissions) against a real PostgreSQL server.
 */

import assert from "node:assert/strict";
import { parse as parseDotenv } from "dotenv";
import { initVault, openVault } from "../mod.ts";
import { startPostgres } from "./support/postgres.ts";
import { runHecate } from "./support/run_hecate.ts";

const MASTER = "run-test-master-password";

/** Every file under a directory, with its content. */
async function filesUnder(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) { for (const [k, v] of await filesUnder(p)) out.set(k, v); }
    else if (e.isFile) out.set(p, new TextDecoder().decode(await Deno.readFile(p)));
  }
  return out;
}

function parseEnvLines(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const chunk of text.split("\0")) {
    const at = chunk.indexOf("=");
    if (at > 0) env[chunk.slice(0, at)] = chunk.slice(at + 1);
  }
  return env;
}

Deno.test("hecate run and hecate env", async (t) => {
  await using pg = await startPostgres();
  // A second role whose password needs percent-encoding in a URL.
  const odd = { user: "odd_user", password: "p@ss:w/rd %é'\"x" };
  await pg.psql(
    `create role ${odd.user} login password '${odd.password.replaceAll("'", "''")}';` +
      `grant all on database ${pg.database} to ${odd.user};`,
  );
  const home = await Deno.makeTempDir({ prefix: "hecate-run-" });
  const work = await Deno.makeTempDir({ prefix: "hecate-run-cwd-" });
  const pwFile = `${work}/master`;
  await Deno.writeTextFile(pwFile, MASTER, { mode: 0o600 });
  try {
    await initVault({ home, password: MASTER, kdfIterations: 600_000 });
    const vault = await openVault({ home, password: MASTER });
    const base = {
      engine: "postgres" as const,
      host: pg.host,
      port: pg.port,
      database: pg.database,
      tls: { mode: "disable" as const },
    };
    await vault.profiles.add({
      ...base,
      name: "pg",
      user: pg.user,
      secrets: { password: { value: pg.password } },
    });
    await vault.profiles.add({
      ...base,
      name: "odd",
      user: odd.user,
      secrets: { password: { value: odd.password } },
    });
    const env = { HECATE_HOME: home, HECATE_PASSWORD_FILE: pwFile };
    const before = await filesUnder(home);

    await t.step("the child gets the connection, the parent's argv and env do not", async () => {
      // The child prints its own environment, then hecate's argv and environment.
      const script = 'cat /proc/self/environ; printf "\\n--ARGV--\\n"; cat /proc/$PPID/cmdline; ' +
        'printf "\\n--PENV--\\n"; cat /proc/$PPID/environ';
      const r = await runHecate(
        ["run", "pg", "--env", "MY_DSN=url", "--env", "DBPW=password", "--", "sh", "-c", script],
        { env, cwd: work },
      );
      assert.equal(r.code, 0, r.stderr);
      const [own, rest] = r.stdout.split("\n--ARGV--\n");
      const [argv, parentEnv] = rest!.split("\n--PENV--\n");
      const e = parseEnvLines(own!);
      assert.equal(e.PGHOST, pg.host);
      assert.equal(e.PGPORT, String(pg.port));
      assert.equal(e.PGUSER, pg.user);
      assert.equal(e.PGPASSWORD, pg.password);
      assert.equal(e.PGDATABASE, pg.database);
      assert.equal(e.PGSSLMODE, "disable");
      assert.equal(e.HECATE_PROFILE, "pg");
      assert.equal(e.HECATE_ENGINE, "postgres");
      assert.equal(e.HECATE_PASSWORD, pg.password);
      assert.equal(
        e.DATABASE_URL,
        `postgresql://${pg.user}:${pg.password}@${pg.host}:${pg.port}/${pg.database}?sslmode=disable`,
      );
      assert.equal(e.MY_DSN, e.DATABASE_URL);
      assert.equal(e.DBPW, pg.password);
      // The child cannot unlock the vault with our password file.
      assert.equal(e.HECATE_PASSWORD_FILE, undefined);
      assert.ok(!argv!.includes(pg.password), "password in hecate's argv");
      assert.ok(!parentEnv!.includes(pg.password), "password in hecate's own environment");
      assert.ok(!parseEnvLines(parentEnv!).PGPASSWORD);
    });

    await t.step("psql through hecate run, with a password that needs URL encoding", async () => {
      const r = await runHecate(
        ["run", "odd", "--", "psql", "-X", "-A", "-t", "-c", "select current_user"],
        { env, cwd: work },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), odd.user);
      const viaUrl = await runHecate(
        ["run", "odd", "--", "sh", "-c", 'psql -X -A -t "$DATABASE_URL" -c "select 2"'],
        { env, cwd: work },
      );
      assert.equal(viaUrl.code, 0, viaUrl.stderr);
      assert.equal(viaUrl.stdout.trim(), "2");
    });

    await t.step("exit codes and signals pass through", async () => {
      assert.equal((await runHecate(["run", "pg", "--", "sh", "-c", "exit 7"], { env })).code, 7);
      assert.equal((await runHecate(["run", "pg", "--", "true"], { env })).code, 0);
      const killed = await runHecate(["run", "pg", "--", "sh", "-c", "kill -TERM $$"], { env });
      assert.equal(killed.code, 128 + 15);
      const psqlFail = await runHecate(
        ["run", "pg", "--", "psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "selec"],
        { env },
      );
      assert.equal(psqlFail.code, 1); // psql's code for a failed -c command
    });

    await t.step("usage errors", async () => {
      for (
        const args of [
          ["run", "pg", "--env", "1X=host", "--", "true"],
          ["run", "pg", "--env", "X=nope", "--", "true"],
          ["run", "pg"],
          ["run", "pg", "--", "no-such-program-hecate"],
        ]
      ) {
        const r = await runHecate(args, { env });
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /^hecate: error: /);
      }
      const missing = await runHecate(["run", "nope", "--", "true"], { env });
      assert.equal(missing.code, 5);
    });

    await t.step("run is audited with the command name only", async () => {
      const audit = await Deno.readTextFile(`${home}/audit.jsonl`);
      const runs = audit.trim().split("\n").map((l) => JSON.parse(l)).filter((r) =>
        r.event === "run"
      );
      assert.ok(runs.length >= 6);
      const exit7 = runs.find((r) => r.detail?.exit_code === 7);
      assert.deepEqual(
        [exit7.detail.command, exit7.profile, exit7.outcome, exit7.actor.kind],
        ["sh", "pg", "fail", "password"],
      );
      assert.ok(runs.some((r) => r.detail?.command === "psql" && r.outcome === "ok"));
      assert.ok(!audit.includes("exit 7"), "arguments in the audit trail");
      assert.ok(!audit.includes(pg.password) && !audit.includes(odd.password));
    });

    await t.step("nothing with a secret was written to disk", async () => {
      const after = await filesUnder(home);
      for (const [path, text] of [...after, ...await filesUnder(work)]) {
        assert.ok(!text.includes(pg.password), `${path} holds the password`);
        assert.ok(!text.includes(odd.password), `${path} holds the password`);
      }
      const created = [...after.keys()].filter((p) => !before.has(p));
      assert.deepEqual(created, []);
    });

    await t.step("hecate env prints the same variables in three formats", async () => {
      const dot = await runHecate(["env", "odd", "--env", "X=port"], { env });
      assert.equal(dot.code, 0, dot.stderr);
      assert.equal(dot.stderr, ""); // not a terminal: no warning
      const parsed = parseDotenv(dot.stdout);
      assert.equal(parsed.PGPASSWORD, odd.password);
      assert.equal(parsed.X, String(pg.port));
      const json = await runHecate(["env", "odd", "--format", "json"], { env });
      const obj = JSON.parse(json.stdout);
      assert.equal(obj.PGPASSWORD, odd.password);
      assert.deepEqual(
        Object.keys(obj).sort(),
        Object.keys(parsed).filter((k) => k !== "X").sort(),
      );
      const shell = await runHecate(["env", "odd", "--format", "shell"], { env });
      const sh = await new Deno.Command("sh", {
        args: ["-c", `${shell.stdout}\nprintf %s "$PGPASSWORD"`],
        stdout: "piped",
      }).output();
      assert.equal(new TextDecoder().decode(sh.stdout), odd.password);
      const audit = await Deno.readTextFile(`${home}/audit.jsonl`);
      assert.ok(audit.includes('"event":"env"'));
    });
  } finally {
    await Deno.remove(home, { recursive: true });
    await Deno.remove(work, { recursive: true });
  }
});
