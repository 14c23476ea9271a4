/**
 * The cron path (src/cli/cron_path.ts) parses `query` command lines without commander. These tests
 * keep it honest: its option tables match the commander definitions; on random command lines it
 * either declines or agrees with commander exactly, and never accepts a line commander rejects;
 * and a real `HECATE_API_KEY=... hecate query pg ...` run loads no module of Deno's Node layer.
 */

import assert from "node:assert/strict";
import type { CommandUnknownOpts, Option } from "@commander-js/extra-typings";
import { CliContext } from "../src/cli/context.ts";
import { buildProgram } from "../src/cli/program.ts";
import { collect } from "../src/cli/parse.ts";
import {
  type CronOption,
  parseQueryLine,
  QUERY_OPTIONS,
  type QueryLine,
  ROOT_OPTIONS,
} from "../src/cli/cron_path.ts";
import { initVault, openVault } from "../src/hecate.ts";
import { pgProfile, startPostgres } from "./support/postgres.ts";
import { startMariadb } from "./support/mariadb.ts";
import { runHecate, tempDir } from "./support/cli.ts";
import { QUIET_IO } from "../src/cli/tree.ts";

/** The cron-path view of one commander option. */
function asCronOption(o: Option): CronOption {
  const takes = !o.required ? "flag" : o.parseArg === collect ? "many" : "one";
  const spec: CronOption = { long: o.long!, key: o.attributeName(), takes };
  if (o.argChoices) spec.choices = o.argChoices;
  return spec;
}

/** The root command with only `query` built, its action replaced by `capture`. */
async function capturingProgram(
  capture: (parsed: QueryLine) => void,
): Promise<{ program: CommandUnknownOpts; ctx: CliContext }> {
  const ctx = new CliContext(QUIET_IO);
  const program = await buildProgram(ctx, ["query"]);
  const query = program.commands.find((c) => c.name() === "query")!;
  query.action((...args: unknown[]) => {
    const [name, sql, options] = args as [string, string, Record<string, unknown>];
    capture({ globals: { ...ctx.globals }, name, sql, options: { ...options } });
  });
  return { program, ctx };
}

/** What commander makes of a command line: the parsed query, or the error it raised. */
async function commanderParse(args: string[]): Promise<QueryLine | "rejected" | "other"> {
  let parsed: QueryLine | undefined;
  const { program } = await capturingProgram((p) => parsed = p);
  try {
    await program.parseAsync(args, { from: "user" });
  } catch {
    return "rejected";
  }
  return parsed ?? "other";
}

/** Drops undefined members so that absent and undefined compare equal. */
function defined(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

Deno.test("the cron path's option tables are the commander options of the root and of query", async () => {
  const { program } = await capturingProgram(() => {});
  const root = program.options.filter((o) => o.long !== "--version").map(asCronOption);
  assert.deepEqual(root, ROOT_OPTIONS);
  const query = program.commands.find((c) => c.name() === "query")!;
  assert.deepEqual(query.options.map(asCronOption), QUERY_OPTIONS);
  assert.deepEqual(
    query.registeredArguments.map((a) => [a.name(), a.required, a.variadic]),
    [["name", true, false], ["sql", true, false]],
  );
});

Deno.test("the cron path accepts plain query lines and declines help, version and odd ones", () => {
  assert.deepEqual(
    parseQueryLine(["--home", "/h", "query", "pg", "select 1", "--param=-3", "--format", "csv"]),
    {
      globals: { home: "/h" },
      name: "pg",
      sql: "select 1",
      options: { param: ["-3"], format: "csv" },
    },
  );
  assert.deepEqual(parseQueryLine(["query", "pg", "select $1", "--param", "a", "--param", "b"]), {
    globals: {},
    name: "pg",
    sql: "select $1",
    options: { param: ["a", "b"] },
  });
  for (
    const line of [
      [],
      ["query", "pg"],
      ["query", "pg", "select 1", "extra"],
      ["query", "--help"],
      ["-V"],
      ["query", "pg", "select 1", "--format", "xml"],
      ["query", "pg", "--", "-select"],
      ["--format", "csv", "query", "pg", "select 1"],
      ["query", "pg", "select 1", "--output", "a", "--output", "b"],
      ["server", "list"],
      ["query", "pg", "select 1", "--param", "-1"],
    ]
  ) {
    assert.equal(parseQueryLine(line), undefined, JSON.stringify(line));
  }
});

Deno.test("on random command lines the cron path declines or agrees with commander", async () => {
  const words = [
    "query",
    "query",
    "pg",
    "select 1",
    "x y",
    "",
    "-",
    "--",
    "-V",
    "-h",
    "--help",
    "--nope",
    "--home",
    "--home=/h2",
    "--home=",
    "/h",
    "--password-stdin",
    "--password-stdin=yes",
    "--api-key-file",
    "key.txt",
    "--totp",
    "123456",
    "--param",
    "--param",
    "--param=-x",
    "5",
    "-5",
    "--format",
    "--format=json",
    "csv",
    "xml",
    "--output",
    "--output=o.csv",
    "out.csv",
  ];
  // A fixed seed: the same lines on every run, so a failure can be replayed.
  let seed = 0x5eed;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let accepted = 0;
  for (let round = 0; round < 1500; round++) {
    const line: string[] = [];
    // Most lines start like a real cron line, so many of them are accepted.
    if (random(2) === 0) line.push("query", "pg", "select 1");
    for (let n = random(6); n > 0; n--) {
      line.splice(random(line.length + 1), 0, words[random(words.length)]!);
    }
    const fast = parseQueryLine(line);
    if (fast === undefined) continue;
    accepted++;
    const slow = await commanderParse(line);
    assert.notEqual(slow, "rejected", `accepted a line commander rejects: ${JSON.stringify(line)}`);
    assert.notEqual(slow, "other", `commander ran something else: ${JSON.stringify(line)}`);
    const s = slow as QueryLine;
    assert.deepEqual(
      { ...fast, globals: defined(fast.globals), options: defined(fast.options) },
      { ...s, globals: defined(s.globals), options: defined(s.options) },
      JSON.stringify(line),
    );
  }
  assert.ok(accepted > 200, `only ${accepted} lines were accepted: the test would prove little`);
});

Deno.test("an API-key query against PostgreSQL loads no module of Deno's Node layer", async () => {
  await using pg = await startPostgres();
  await using dir = await tempDir("hecate-cron-");
  const home = `${dir.path}/home`;
  const password = "cron path test: quiet lantern orchard";
  await initVault({ home, password, kdfIterations: 600_000 });
  const vault = await openVault({ home, password, lockout: "off" });
  await vault.profiles.add(pgProfile(pg, "pg"));
  const apiKey = await vault.apiKeys.create({ name: "cron", profiles: ["pg"], expires: null });
  await vault.close();
  const run = await runHecate(["query", "pg", "select 40 + 2 as answer"], {
    home,
    env: { HECATE_API_KEY: apiKey },
    denoFlags: ["--log-level=debug"],
  });
  const stderrLines = run.stderr.split("\n");
  assert.equal(run.code, 0, stderrLines.filter((l) => !l.startsWith("DEBUG")).join("\n"));
  assert.equal(run.stdout, "answer\n42\n");
  const loaded = stderrLines.filter((l) => l.includes("ext:deno_node/"));
  assert.deepEqual(loaded, [], "the cron path started the Node compatibility layer");
  // The debug log must have been on, or the empty list proves nothing.
  assert.ok(stderrLines.some((l) => l.startsWith("DEBUG") && l.includes("main.ts")));
});

Deno.test("an API-key query whose password is a source reference loads no module of Deno's Node layer", async () => {
  // The framework's per-source timeout once used setTimeout, which in Deno 2.9 is the Node
  // layer's: every reference started it.
  await using pg = await startPostgres();
  await using dir = await tempDir("hecate-cron-ref-");
  const home = `${dir.path}/home`;
  const password = "cron path test: quiet lantern orchard";
  await initVault({ home, password, kdfIterations: 600_000 });
  const vault = await openVault({ home, password, lockout: "off" });
  await vault.profiles.add({
    ...pgProfile(pg, "pg"),
    secrets: { password: { ref: "env:CRON_PG_PASSWORD" } },
  });
  const apiKey = await vault.apiKeys.create({ name: "cron", profiles: ["pg"], expires: null });
  await vault.close();
  const run = await runHecate(["query", "pg", "select 40 + 2 as answer"], {
    home,
    env: { HECATE_API_KEY: apiKey, CRON_PG_PASSWORD: pg.password },
    denoFlags: ["--log-level=debug"],
  });
  const stderrLines = run.stderr.split("\n");
  assert.equal(run.code, 0, stderrLines.filter((l) => !l.startsWith("DEBUG")).join("\n"));
  assert.equal(run.stdout, "answer\n42\n");
  assert.deepEqual(stderrLines.filter((l) => l.includes("ext:deno_node/")), []);
  assert.ok(stderrLines.some((l) => l.startsWith("DEBUG") && l.includes("main.ts")));
});

Deno.test("an API-key query against MariaDB loads no module of Deno's Node layer", async () => {
  await using db = await startMariadb();
  await using dir = await tempDir("hecate-cron-my-");
  const home = `${dir.path}/home`;
  const password = "cron path test: quiet lantern orchard";
  await initVault({ home, password, kdfIterations: 600_000 });
  const vault = await openVault({ home, password, lockout: "off" });
  await vault.profiles.add({
    name: "my",
    engine: "mysql",
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    tls: { mode: "disable" },
    secrets: { password: { value: db.password } },
  });
  const apiKey = await vault.apiKeys.create({ name: "cron", profiles: ["my"], expires: null });
  await vault.close();
  const run = await runHecate(["query", "my", "select 40 + 2 as answer, ? as p", "--param", "x"], {
    home,
    env: { HECATE_API_KEY: apiKey },
    denoFlags: ["--log-level=debug"],
  });
  const stderrLines = run.stderr.split("\n");
  assert.equal(run.code, 0, stderrLines.filter((l) => !l.startsWith("DEBUG")).join("\n"));
  assert.equal(run.stdout, "answer,p\n42,x\n");
  const loaded = stderrLines.filter((l) => l.includes("ext:deno_node/"));
  assert.deepEqual(loaded, [], "the MySQL cron path started the Node compatibility layer");
  assert.ok(stderrLines.some((l) => l.startsWith("DEBUG") && l.includes("main.ts")));
});
