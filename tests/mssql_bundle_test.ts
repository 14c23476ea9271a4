/**
 * tedious's `require()` of `@azure/identity` and `@azure/core-auth` is served by a stand-in
 * (src/db/tedious_standin.ts): in the bundle (scripts/bundle.ts) the calls themselves are
 * rewritten, from source src/db/tedious_source.ts seeds the Node layer's module cache. So a SQL
 * login loads none of the Azure identity code, and a token login, whose token Hecate hands to
 * tedious itself, still works. The bundle runs through the TDS test double with Deno's debug log,
 * which names every module file read; from source, a fresh process reports the module cache.
 */

import assert from "node:assert/strict";
import {
  buildBundle,
  bundleProgram,
  deferJsJoda,
  replaceStandins,
  RUN_FLAGS,
  STANDIN_PACKAGES,
} from "../scripts/bundle.ts";
import { standin } from "../src/db/tedious_standin.ts";
import { HECATE_PERMISSIONS } from "../scripts/permissions.ts";
import { vaultWith, withHome } from "./support/access.ts";
import { startTdsDouble } from "./support/tds_double.ts";

const SA_PASSWORD = "Sa-Bundle-Pw-5120";
const TOKEN = "bundle-access-token-77c1";

Deno.test("the stand-in fails every call with a message naming the package and the export", () => {
  for (const pkg of STANDIN_PACKAGES) {
    const mod = standin(pkg) as Record<string, (...a: unknown[]) => unknown>;
    assert.equal(mod.__esModule, undefined);
    assert.equal(mod.then, undefined, "not mistaken for a promise");
    for (const name of ["DefaultAzureCredential", "ClientSecretCredential", "isTokenCredential"]) {
      const f = mod[name]!;
      assert.throws(() => f(), (e: Error) => e.message.includes(pkg) && e.message.includes(name));
      assert.throws(() => Reflect.construct(f, []), /not part of this build of Hecate/);
    }
  }
});

Deno.test("replaceStandins rewrites each package's require() and imports the stand-in", () => {
  const chunk = 'var a = __require("@azure/identity");\nvar b = __require("@azure/core-auth");\n';
  const { text, replaced } = replaceStandins(chunk);
  assert.deepEqual(replaced, ["@azure/identity", "@azure/core-auth"]);
  assert.ok(!text.includes('__require("@azure/'), text);
  assert.match(
    text,
    /^\/\/ .*\nimport \{ standin as __hecate_standin \} from "\.\/tedious_standin\.js";\n/,
  );
  assert.ok(text.includes('var a = __hecate_standin("@azure/identity");'));
  const other = 'var c = __require("node:net");\n';
  assert.deepEqual(replaceStandins(other), { text: other, replaced: [] });
});

Deno.test("deferJsJoda defers tedious's js-joda, and fails the build on an unexpected shape", () => {
  const req = "var _core = (init_js_joda_esm(), __toCommonJS(js_joda_esm_exports));";
  const chunk = [
    req,
    "var EPOCH_DATE = _core.LocalDate.ofYearDay(1900, 1);",
    "f = () => EPOCH_DATE.until(a, b) + EPOCH_DATE.until(c, d);",
    req,
    "var YEAR_ONE = _core.LocalDate.ofYearDay(1, 1);",
    "g = () => YEAR_ONE.until(x, y);",
  ].join("\n");
  const { text, replaced } = deferJsJoda(chunk);
  assert.ok(replaced);
  assert.ok(!text.includes(req) && !text.includes("var EPOCH_DATE = "), text);
  assert.ok(!text.includes("var YEAR_ONE = "), text);
  assert.equal(text.split("__hecate_lazy(() => (init_js_joda_esm(),").length, 3);
  assert.ok(text.includes("(EPOCH_DATE ??= _core.LocalDate.ofYearDay(1900, 1)).until(c, d)"));
  assert.ok(text.includes("(YEAR_ONE ??= _core.LocalDate.ofYearDay(1, 1)).until(x, y)"));
  assert.deepEqual(deferJsJoda("var x = 1;"), { text: "var x = 1;", replaced: false });
  // A tedious that builds the constants differently must stop the build, not half-defer.
  assert.throws(() => deferJsJoda(chunk.replace("EPOCH_DATE.until(a, b) + ", "")), /uses of/);
  assert.throws(() => deferJsJoda(chunk.split("\n").slice(3).join("\n")), /expected 2/);
});

Deno.test("bundled tedious still sends date and datetime parameters (js-joda on first use)", async () => {
  const build = await Deno.makeTempDir({ prefix: "hecate-mssql-bundle-" });
  await using db = await startTdsDouble({ logins: { sa: SA_PASSWORD } });
  db.answer("select @d as d, @t as t", {
    sets: [{ columns: [{ name: "d", type: "int" }], rows: [[1]] }],
  });
  const program = new URL("./support/tedious_dates.ts", import.meta.url).pathname;
  try {
    await bundleProgram(program, build);
    const js = await Deno.readTextFile(`${build}/tedious_dates.js`);
    assert.ok(js.includes("__hecate_lazy(() => (init_js_joda_esm"), "js-joda deferred");
    const env = { MSSQL_PORT: String(db.port), MSSQL_USER: "sa", MSSQL_PASSWORD: SA_PASSWORD };
    // From source (tedious as published) and bundled: the double must record the same values.
    for (
      const args of [["--allow-all", program], [
        "--no-config",
        "--allow-all",
        `${build}/tedious_dates.js`,
      ]]
    ) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", ...args],
        env: { NO_COLOR: "1", ...env },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(
        new TextDecoder().decode(out.stdout),
        "ok\n",
        new TextDecoder().decode(out.stderr),
      );
    }
    const sent = db.requests.filter((r) => r.kind === "rpc").map((r) =>
      r.params.map((p) => [p.name, p.type, p.value])
    );
    const expected = [["@d", "date", "2024-01-02"], ["@t", "datetime", "2023-12-31T23:59:58.500"]];
    assert.deepEqual(sent, [expected, expected]);
  } finally {
    await Deno.remove(build, { recursive: true });
  }
});

/** Runs the bundle's main.js as its launcher would, with Deno's debug log; returns files read. */
async function runBundle(dir: string, home: string, args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--log-level=debug",
      ...RUN_FLAGS.filter((f) => f !== "--quiet"),
      ...HECATE_PERMISSIONS,
      `${dir}/main.js`,
      "--home",
      home,
      ...args,
    ],
    clearEnv: true,
    env: { HOME: Deno.env.get("HOME") ?? "/tmp", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stderr).split("\n");
  const prefix = `file://${dir}/`;
  const files = new Set(
    lines.flatMap((l) => l.match(/specifier: (file:\S+\.js)/)?.[1] ?? [])
      .filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length)),
  );
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: lines.filter((l) => !l.startsWith("DEBUG")).join("\n"),
    files,
  };
}

Deno.test("bundle: a SQL login loads no Azure identity code; a token login still works", async () => {
  const build = await Deno.makeTempDir({ prefix: "hecate-mssql-bundle-" });
  await using db = await startTdsDouble({ logins: { sa: SA_PASSWORD }, tokens: [TOKEN] });
  db.answer("select 6 * 7 as answer", {
    sets: [{ columns: [{ name: "answer", type: "int" }], rows: [[42]] }],
  });
  try {
    const dir = `${build}/out`;
    await buildBundle(dir);
    // No chunk carries the Azure identity packages (the bundler names each source in a comment).
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.endsWith(".js")) continue;
      const text = await Deno.readTextFile(`${dir}/${e.name}`);
      assert.ok(!/node_modules\/\.deno\/@azure\+(identity|msal-|core-auth)/.test(text), e.name);
    }
    await withHome(async (home) => {
      const vault = await vaultWith(home, []);
      const common = { engine: "mssql" as const, host: db.host, port: db.port };
      await vault.profiles.add({
        ...common,
        name: "sq",
        user: "sa",
        tls: { mode: "disable" },
        secrets: { password: { value: SA_PASSWORD } },
      });
      await vault.profiles.add({
        ...common,
        name: "tok",
        auth: "token",
        params: { tokenMode: "stored" },
        tls: { mode: "disable" },
        secrets: { token: { value: TOKEN } },
      });
      const key = await vault.apiKeys.create({
        name: "cron",
        profiles: ["sq", "tok"],
        expires: null,
      });

      const sql = await runBundle(dir, home, ["query", "sq", "select 6 * 7 as answer"], {
        HECATE_API_KEY: key,
      });
      assert.equal(sql.code, 0, sql.stderr);
      assert.equal(sql.stdout, "answer\n42\n");
      // The SQL Server chunk was read, and with it the stand-in, not Azure code.
      const chunks = [...sql.files].filter((f) => f.startsWith("mssql-"));
      assert.equal(chunks.length, 1, [...sql.files].join(" "));
      assert.ok(sql.files.has("tedious_standin.js"), [...sql.files].join(" "));
      for (const f of sql.files) {
        const text = await Deno.readTextFile(`${dir}/${f}`);
        assert.ok(!/@azure\+(identity|msal-)|class DefaultAzureCredential\b/.test(text), f);
      }

      const tok = await runBundle(dir, home, ["query", "tok", "select 6 * 7 as answer"], {
        HECATE_API_KEY: key,
      });
      assert.equal(tok.code, 0, tok.stderr);
      assert.equal(tok.stdout, "answer\n42\n");
      assert.ok(!tok.stdout.includes(TOKEN) && !tok.stderr.includes(TOKEN));
      assert.deepEqual(db.logins.map((l) => [l.method, l.ok]), [["sql", true], ["token", true]]);
    });
  } finally {
    await Deno.remove(build, { recursive: true });
  }
});

Deno.test("from source: a SQL login loads no Azure identity module; a token login still works", async () => {
  await using db = await startTdsDouble({ logins: { sa: SA_PASSWORD }, tokens: [TOKEN] });
  db.answer("select 6 * 7 as answer", {
    sets: [{ columns: [{ name: "answer", type: "int" }], rows: [[42]] }],
  });
  const program = new URL("./support/mssql_source_login.ts", import.meta.url).pathname;
  const run = async (env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-all", program],
      env: { NO_COLOR: "1", MSSQL_PORT: String(db.port), ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout)) as {
      rows: unknown[][];
      azure: string[];
      call: string;
    };
  };
  for (const env of [{ MSSQL_USER: "sa", MSSQL_PASSWORD: SA_PASSWORD }, { MSSQL_TOKEN: TOKEN }]) {
    const r = await run(env);
    assert.deepEqual(r.rows, [["42"]]);
    // Only the two seeded entries: no file of the real packages (or of MSAL) was evaluated.
    assert.equal(r.azure.length, 2, r.azure.join("\n"));
    assert.ok(r.azure.some((k) => k.includes("@azure+identity")), r.azure.join("\n"));
    assert.ok(r.azure.some((k) => k.includes("@azure+core-auth")), r.azure.join("\n"));
    assert.match(r.call, /@azure\/identity \(DefaultAzureCredential\) is not part of this build/);
  }
  assert.deepEqual(db.logins.map((l) => [l.method, l.ok]), [["sql", true], ["token", true]]);
});
