/**
 * Only profiles with an SSH tunnel pay for ssh2 (about 60 ms of start-up): neither the CLI entry
 * nor the library entry imports it, or the tunnel code, except through `await import()`.
 */

import nodeAssert from "node:assert/strict";

interface Dep {
  specifier: string;
  isDynamic?: boolean;
  code?: { specifier: string };
}
interface Info {
  roots: string[];
  modules: { specifier: string; dependencies?: Dep[]; npmPackage?: string }[];
  redirects: Record<string, string>;
}

/** Modules loaded at start-up from `entry`: code imports that are not dynamic, transitively. */
async function staticClosure(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).output();
  nodeAssert.ok(out.success, "deno info failed");
  const info: Info = JSON.parse(new TextDecoder().decode(out.stdout));
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const queue = [...info.roots];
  while (queue.length) {
    let spec = queue.shift()!;
    spec = info.redirects[spec] ?? spec;
    if (seen.has(spec)) continue;
    seen.add(spec);
    for (const d of bySpec.get(spec)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) queue.push(d.code.specifier);
    }
  }
  return seen;
}

for (const entry of ["main.ts", "mod.ts"]) {
  Deno.test(`${entry} loads neither ssh2 nor the tunnel code at start-up`, async () => {
    const url = new URL(`../${entry}`, import.meta.url).pathname;
    const loaded = [...await staticClosure(url)];
    nodeAssert.ok(loaded.some((s) => s.endsWith("/src/connect.ts")), "closure looks wrong");
    nodeAssert.deepEqual(loaded.filter((s) => /ssh2|\/src\/tunnel\//.test(s)), []);
  });
}
