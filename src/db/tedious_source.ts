/**
 * From source (`deno run main.ts`, the tests, the library), tedious is loaded from node_modules
 * and would `require()` `@azure/identity` and `@azure/core-auth`, about 0.15 s of every SQL Server
 * run (docs/PERFORMANCE.md, "SQL Server"). Imported by ./mssql.ts before tedious, this module puts
 * the stand-ins of ./tedious_standin.ts into the Node layer's module cache under those packages'
 * resolved paths, so tedious's `require()` returns them. In the bundle, where scripts/bundle.ts
 * replaces the `require()` calls themselves and there is no node_modules, it does nothing: it
 * runs only when this file is a `.ts` module, and any failure (no node_modules, no read
 * permission) leaves tedious to load the real packages.
 *
 * @module
 */

import { createRequire } from "node:module";
import { standin, STANDIN_PACKAGES } from "./tedious_standin.ts";

/**
 * Seeds the module cache with the stand-ins, once; returns the paths seeded (empty when it did
 * nothing).
 *
 * @returns The resolved paths now served by stand-ins.
 */
export function installSourceStandins(): string[] {
  if (!import.meta.url.startsWith("file:") || !import.meta.url.endsWith(".ts")) return [];
  try {
    const require = createRequire(import.meta.url);
    const tedious = createRequire(require.resolve("tedious"));
    const seeded: string[] = [];
    for (const pkg of STANDIN_PACKAGES) {
      const path = tedious.resolve(pkg);
      const cache = require.cache as Record<string, unknown>;
      if (!cache[path]) {
        cache[path] = { id: path, filename: path, loaded: true, exports: standin(pkg) };
      }
      seeded.push(path);
    }
    return seeded;
  } catch {
    return []; // tedious then loads the real packages: slower, not wrong
  }
}

installSourceStandins();
