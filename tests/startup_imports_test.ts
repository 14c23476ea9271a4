/**
 * The cron path (`HECATE_API_KEY=... hecate query ...`) must not load what only people at a
 * terminal need: the prompt, the QR encoder, the password-strength estimator, the TOTP library;
 * nor the modules of the other commands. This walks the static import graph of main.ts plus the
 * `query` command's module (which src/cli/command_table.ts imports for a `query` run), as
 * `deno info --json` reports it, and checks that those are reached only through `import()`.
 */

import assert from "node:assert/strict";
import { ROOT } from "./support/access.ts";

interface Dep {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}

const QUERY = `${ROOT}src/cli/commands/query.ts`;

/** The modules `deno info` reports for one entry point. */
async function modulesOf(entry: string): Promise<{ specifier: string; dependencies?: Dep[] }[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)).modules;
}

Deno.test("a query run loads the prompt, QR, zxcvbn, otpauth packages and other commands only on demand", async () => {
  const graph = { modules: [...await modulesOf(`${ROOT}main.ts`), ...await modulesOf(QUERY)] };
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  const staticBare = new Set<string>();
  const seen = new Set<string>();
  const queue = [`file://${ROOT}main.ts`, `file://${QUERY}`];
  while (queue.length) {
    const s = queue.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if (d.isDynamic || !d.code) continue;
      if (!d.specifier.startsWith(".")) staticBare.add(d.specifier);
      queue.push(d.code.specifier);
    }
  }
  assert.ok(staticBare.has("commander") || staticBare.has("@commander-js/extra-typings"));
  assert.ok(seen.size > 20, "the walk must reach the command tree");
  for (const lazy of ["@inquirer/password", "qrcode", "otpauth", "@zxcvbn-ts/core"]) {
    assert.ok(!staticBare.has(lazy), `${lazy} is imported statically`);
  }
  for (const other of ["server", "backup", "import", "totp", "apikey", "audit", "init", "run"]) {
    const mod = `file://${ROOT}src/cli/commands/${other}.ts`;
    assert.ok(!seen.has(mod), `the ${other} command is imported statically`);
  }
});
