/**
 * The cron path (`HECATE_API_KEY=... hecate query ...`) must not load what only people at a
 * terminal need: the prompt, the QR encoder, the password-strength estimator, the TOTP library.
 * This walks the static import graph of main.ts (as `deno info --json` reports it) and checks that
 * those packages are reached only through dynamic `import()`.
 */

import assert from "node:assert/strict";
import { ROOT } from "./support/access.ts";

interface Dep {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}

Deno.test("main.ts loads the prompt, QR, zxcvbn and otpauth packages only on demand", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${ROOT}main.ts`],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: Dep[] }[];
  };
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  const staticBare = new Set<string>();
  const seen = new Set<string>();
  const queue = [`file://${ROOT}main.ts`];
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
});
