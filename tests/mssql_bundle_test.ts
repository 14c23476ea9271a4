/**
 * The SQL Server driver in the bundle (scripts/bundle.ts): tedious's `require()` of
 * `@azure/identity` and `@azure/core-auth` is pointed at a stand-in (scripts/bundle/
 * tedious_standin.js), so a SQL login loads none of the Azure identity code, and a token login,
 * whose token Hecate hands to tedious itself, still works. Runs the bundle through the TDS test
 * double with Deno's debug log, which names every module file read.
 */

import assert from "node:assert/strict";
import { buildBundle, replaceStandins, RUN_FLAGS, STANDIN_PACKAGES } from "../scripts/bundle.ts";
import { standin } from "../scripts/bundle/tedious_standin.js";
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
