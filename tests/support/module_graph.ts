/**
 * The static import graph of entry modules, as `deno info --json` reports it: which modules load
 * before any `import()` runs. Used by the tests that keep the cron path and the PostgreSQL driver
 * free of packages they must not load.
 */

import assert from "node:assert/strict";

/** One static import: the importing module, the specifier as written, the module it resolved to. */
export interface StaticImport {
  from: string;
  specifier: string;
  to: string;
}

interface InfoModule {
  specifier: string;
  dependencies?: { specifier: string; code?: { specifier: string }; isDynamic?: boolean }[];
}

async function modulesOf(entry: string): Promise<InfoModule[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)).modules;
}

/**
 * Walks the static imports from the entries (absolute paths), skipping `import()`.
 *
 * @param entries Entry modules.
 * @returns The modules reached (as URLs) and every static import between them.
 */
export async function staticGraph(
  entries: string[],
): Promise<{ modules: Set<string>; imports: StaticImport[] }> {
  const bySpecifier = new Map<string, InfoModule>();
  for (const entry of entries) {
    for (const m of await modulesOf(entry)) bySpecifier.set(m.specifier, m);
  }
  const modules = new Set<string>();
  const imports: StaticImport[] = [];
  const queue = entries.map((e) => `file://${e}`);
  while (queue.length) {
    const s = queue.pop()!;
    if (modules.has(s)) continue;
    modules.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if (d.isDynamic || !d.code) continue;
      imports.push({ from: s, specifier: d.specifier, to: d.code.specifier });
      queue.push(d.code.specifier);
    }
  }
  return { modules, imports };
}
