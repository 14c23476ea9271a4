/** Unit tests of the environment rendering behind `hecate env` (no I/O). */

import assert from "node:assert/strict";
import { parse as parseDotenv } from "dotenv";
import { HecateError } from "../src/errors.ts";
import { connectionEnv, databaseUrl, parseEnvMapping, renderEnv } from "../src/run/env.ts";
import type { ConnectSettings } from "../src/db/driver.ts";

const base: ConnectSettings = {
  engine: "postgres",
  host: "db.example",
  port: 5433,
  user: "app",
  password: "pw",
  database: "main",
  tls: { mode: "verify" },
  connectTimeoutMs: 1000,
};

Deno.test("renderEnv dotenv output parses back to the same values with the dotenv parser", () => {
  const values = ["plain", "with space", "it's", 'say "hi"', "a`b'c", "line1\nline2", "#hash", ""];
  const env = Object.fromEntries(values.map((v, i) => [`V${i}`, v]));
  assert.deepEqual(parseDotenv(renderEnv(env, "dotenv")), env);
});

Deno.test("renderEnv refuses a value no .env quoting can hold", () => {
  assert.throws(() => renderEnv({ X: `'"\`` }, "dotenv"), HecateError);
  assert.throws(() => renderEnv({ X: 'a"\nb' }, "dotenv"), HecateError);
});

Deno.test("databaseUrl percent-encodes credentials and names sslmode", () => {
  assert.equal(
    databaseUrl({ ...base, user: "a@b", password: "p:/%?#" }),
    "postgresql://a%40b:p%3A%2F%25%3F%23@db.example:5433/main?sslmode=verify-full",
  );
  assert.equal(
    databaseUrl({ ...base, engine: "mysql", tls: { mode: "insecure" } }),
    "mysql://app:pw@db.example:5433/main",
  );
  assert.equal(databaseUrl({ ...base, engine: "sqlite", database: "/x.db" }), "sqlite:/x.db");
});

Deno.test("connectionEnv uses each engine's own variables", () => {
  const my = connectionEnv("m", { ...base, engine: "mysql", port: 3306 });
  assert.deepEqual(
    [my.MYSQL_HOST, my.MYSQL_TCP_PORT, my.MYSQL_PWD, my.MYSQL_USER, my.PGHOST, my.USER],
    ["db.example", "3306", "pw", "app", undefined, undefined],
  );
  const ms = connectionEnv("s", { ...base, engine: "mssql", port: 1433 });
  assert.deepEqual(
    [ms.SQLCMDSERVER, ms.SQLCMDUSER, ms.SQLCMDPASSWORD, ms.SQLCMDDBNAME],
    ["tcp:db.example,1433", "app", "pw", "main"],
  );
  const pg = connectionEnv("p", { ...base, tls: { mode: "verify", caFile: "/ca.pem" } }, [
    parseEnvMapping("PGHOST=user"),
  ]);
  assert.equal(pg.PGSSLMODE, "verify-full");
  assert.equal(pg.PGSSLROOTCERT, "/ca.pem");
  assert.equal(pg.PGHOST, "app"); // a mapping wins
});

Deno.test("hecate env warns on stderr when stdout is a terminal", async () => {
  const { runCli } = await import("../src/cli/cli.ts");
  const { initVault, openVault } = await import("../mod.ts");
  const home = await Deno.makeTempDir({ prefix: "hecate-envtty-" });
  try {
    const password = "env-tty-master-password";
    await initVault({ home, password, kdfIterations: 600_000 });
    await (await openVault({ home, password })).profiles.add({
      name: "lite",
      engine: "sqlite",
      database: `${home}/x.db`,
    });
    const run = async (tty: boolean) => {
      let out = "", err = "";
      const code = await runCli(["--home", home, "--password-stdin", "env", "lite"], {
        out: (t) => Promise.resolve(void (out += t)),
        outBytes: () => Promise.resolve(),
        err: (t) => Promise.resolve(void (err += t)),
        env: () => undefined,
        stdinIsTerminal: false,
        stdoutIsTerminal: tty,
        readStdin: () => Promise.resolve(new TextEncoder().encode(`${password}\n`)),
        promptSecret: () => Promise.reject(new Error("no prompt expected")),
        color: false,
      });
      return { code, out, err };
    };
    const tty = await run(true);
    assert.equal(tty.code, 0);
    assert.match(tty.err, /^hecate: warning: .*password in clear/);
    assert.match(tty.out, /^HECATE_PROFILE=lite$/m);
    const pipe = await run(false);
    assert.equal(pipe.err, "");
    assert.equal(pipe.out, tty.out);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
