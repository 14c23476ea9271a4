/**
 * `deno task bundle`: builds Hecate as plain JavaScript, a distribution that runs on any machine
 * with Deno 2.9.6 and needs neither node_modules, nor npm, nor the network at run time:
 *
 * - `main.js` and its chunks: `deno bundle --platform=deno --code-splitting` of main.ts. Each
 *   `import()` in the source (drivers, prompts, zxcvbn, qrcode, ...) stays a separate chunk, so a
 *   command parses only what it runs;
 * - `verify_worker.js`: the `audit verify` worker, bundled on its own (a worker is started by
 *   URL, which the bundler does not follow);
 * - `hecate`: a POSIX shell launcher that runs `main.js` with the explicit permission set of
 *   scripts/permissions.ts (never `-A`), `--no-config` (the bundle needs no deno.json, and none
 *   found above it is read) and `--unstable-lazy-dynamic-imports` (chunks are read when imported,
 *   not all before `main` starts).
 *
 * Why: started from source, Deno resolves every npm package from node_modules on each run; the
 * bundle skips that, which is most of the start-up of the cron path (see docs/PERFORMANCE.md).
 *
 * `ssh2` and `cpu-features` `require()` optional native `.node` add-ons inside `try`; they are
 * left external (absent), and the pure-JavaScript fallbacks run, as they do from source.
 *
 * One edit after bundling ({@link lazyRequireShim}): the bundler's shared runtime chunk, which
 * every chunk imports, creates its `require()` for CommonJS packages with a top-level
 * `import ... from "node:module"`. Any `node:` module starts Deno's Node compatibility layer, about
 * 20 ms, so that import alone cost every run, the cron path included, which otherwise loads no
 * `node:` module. The edit makes that `require()` start the Node layer on its first call instead.
 *
 * A second edit ({@link replaceStandins}): tedious `require()`s `@azure/identity` and
 * `@azure/core-auth` when it loads, which pulled about 1 MB of Azure and MSAL code into the SQL
 * Server chunk and cost every SQL Server run about 0.1 s, though Hecate configures no
 * authentication type that uses them (it hands tedious ready tokens). They are left out
 * (`--external`) and their `require()` is pointed at src/db/tedious_standin.ts, bundled beside
 * the chunks, whose functions throw a clear error if ever called (from source,
 * src/db/tedious_source.ts serves the same stand-ins through the Node layer's module cache).
 *
 * The OS keyring binding `@napi-rs/keyring` is a Node-API addon, which a bundle without
 * node_modules cannot load: it is left out and its one `import()` made to fail
 * ({@link dropNativeKeyring}), so the bundle's `keyring:` source and `--store keyring` use
 * `secret-tool` / `security` as they do wherever the binding does not load.
 *
 * A third ({@link deferJsJoda}): tedious's date and datetime parameter types load `@js-joda/core`
 * when tedious loads and build two constants with it, about 10 ms of every SQL Server run; Hecate
 * sends no date parameters, so the bundle loads it on first use instead.
 *
 * Usage: `deno task bundle [--out DIR]` (default `dist/bundle`; the directory is replaced).
 *
 * @module
 */

import { HECATE_PERMISSIONS } from "./permissions.ts";
import { STANDIN_PACKAGES } from "../src/db/tedious_standin.ts";

export { STANDIN_PACKAGES };

/** The keyring binding, left out of the bundle (see {@link dropNativeKeyring}). */
export const NATIVE_KEYRING = "@napi-rs/keyring";

/** Default output directory. */
export const DEFAULT_OUT = "dist/bundle";

/** Flags the launcher passes to `deno run` before the permissions. */
export const RUN_FLAGS: readonly string[] = [
  "--quiet",
  "--no-config",
  "--unstable-lazy-dynamic-imports",
];

const ROOT = new URL("../", import.meta.url).pathname;

/** The stand-in module's file name in the output directory (src/db/tedious_standin.ts, bundled). */
export const STANDIN_FILE = "tedious_standin.js";

/**
 * The `deno bundle` arguments for the command and its chunks.
 *
 * @param outDir Output directory.
 * @returns Arguments after `deno`.
 */
export function bundleArgs(outDir: string): string[] {
  return [
    "bundle",
    "--quiet",
    "--platform=deno",
    "--code-splitting",
    "--external",
    "*.node",
    "--external",
    NATIVE_KEYRING,
    ...STANDIN_PACKAGES.flatMap((p) => ["--external", p]),
    "--outdir",
    outDir,
    `${ROOT}main.ts`,
  ];
}

/**
 * The `deno bundle` arguments for the `audit verify` worker.
 *
 * @param outDir Output directory.
 * @returns Arguments after `deno`.
 */
export function workerBundleArgs(outDir: string): string[] {
  return [
    "bundle",
    "--quiet",
    "--platform=deno",
    "--output",
    `${outDir}/verify_worker.js`,
    `${ROOT}src/audit/verify_worker.ts`,
  ];
}

/** The bundler's eager `require()` for CommonJS code, as `deno bundle` 2.9.6 writes it. */
const EAGER_REQUIRE =
  'import { createRequire as __deno_internal_createRequire } from "node:module";\n' +
  "var __require = __deno_internal_createRequire(import.meta.url);\n";

/** The same `require()`, created on its first use (properties such as `resolve` included). */
const LAZY_REQUIRE =
  `// scripts/bundle.ts: require() starts the Node layer on first use, not at load.
var __deno_lazy_require;
var __deno_require = () =>
  __deno_lazy_require ??= globalThis.process.getBuiltinModule("node:module")
    .createRequire(import.meta.url);
var __require = new Proxy(function () {}, {
  apply: (_f, _this, args) => __deno_require()(...args),
  get: (_f, key) => __deno_require()[key],
});
`;

/**
 * Replaces the bundler's eager `require()` shim in one chunk's text by a lazy one.
 *
 * @param text A chunk's JavaScript.
 * @returns The text, and whether the shim was found.
 */
export function lazyRequireShim(text: string): { text: string; replaced: boolean } {
  if (!text.includes(EAGER_REQUIRE)) return { text, replaced: false };
  return { text: text.replace(EAGER_REQUIRE, LAZY_REQUIRE), replaced: true };
}

/** Applies {@link lazyRequireShim} to the chunks in `outDir`; the shim must be found once. */
async function makeRequireLazy(outDir: string): Promise<void> {
  let found = 0;
  for await (const entry of Deno.readDir(outDir)) {
    if (!entry.isFile || !entry.name.endsWith(".js")) continue;
    const path = `${outDir}/${entry.name}`;
    const { text, replaced } = lazyRequireShim(await Deno.readTextFile(path));
    if (!replaced) continue;
    found++;
    await Deno.writeTextFile(path, text);
  }
  if (found !== 1) {
    throw new Error(
      `bundle: expected the bundler's require() shim in one chunk, found ${found}; ` +
        "update lazyRequireShim in scripts/bundle.ts for this Deno version",
    );
  }
}

/**
 * Points one chunk's `require()` of each {@link STANDIN_PACKAGES} package at the stand-in module,
 * imported statically from beside the chunk (nothing is resolved at run time).
 *
 * @param text A chunk's JavaScript.
 * @returns The text, and the packages whose `require()` it replaced.
 */
export function replaceStandins(text: string): { text: string; replaced: string[] } {
  const replaced: string[] = [];
  for (const pkg of STANDIN_PACKAGES) {
    const call = `__require(${JSON.stringify(pkg)})`;
    if (!text.includes(call)) continue;
    text = text.replaceAll(call, `__hecate_standin(${JSON.stringify(pkg)})`);
    replaced.push(pkg);
  }
  if (replaced.length === 0) return { text, replaced };
  const header = `// scripts/bundle.ts: ${replaced.join(" and ")} replaced by a stand-in.\n` +
    `import { standin as __hecate_standin } from "./${STANDIN_FILE}";\n`;
  return { text: header + text, replaced };
}

/** Loads a module object on first property access (the bundle's deferred `require()`s). */
const LAZY_HELPER = "// scripts/bundle.ts: @js-joda/core is loaded on first use.\n" +
  "var __hecate_lazy = (load) => { let m; return new Proxy({}, { get: (_t, k) => (m ??= load())[k] }); };\n";

/** tedious's two requires of `@js-joda/core`, as the bundler writes them. */
const JODA_REQUIRE =
  /var _core = \((init_js_joda_esm\d*)\(\), __toCommonJS\((js_joda_esm_exports\d*)\)\);/g;

/** The js-joda constants tedious builds at load: name, expression, uses inside functions. */
const JODA_CONSTANTS: readonly [string, string, number][] = [
  ["EPOCH_DATE", "_core.LocalDate.ofYearDay(1900, 1)", 2], // data-types/datetime.js
  ["YEAR_ONE", "_core.LocalDate.ofYearDay(1, 1)", 1], // data-types/temporal.js
];

/**
 * Defers tedious's `@js-joda/core` in one chunk's text: both requires become a module object
 * that loads on first property access, and the two constants tedious builds with it at load are
 * built on first use. Every piece must be found as expected, or the build fails.
 *
 * @param text A chunk's JavaScript.
 * @returns The text, and whether it held tedious's js-joda requires.
 * @throws {Error} When the chunk holds them but not in the expected shape.
 */
export function deferJsJoda(text: string): { text: string; replaced: boolean } {
  const requires = text.match(JODA_REQUIRE) ?? [];
  if (requires.length === 0) return { text, replaced: false };
  const fail = (what: string) => {
    throw new Error(`bundle: ${what}; update deferJsJoda in scripts/bundle.ts for this tedious`);
  };
  if (requires.length !== 2) fail(`expected 2 requires of @js-joda/core, found ${requires.length}`);
  text = text.replace(JODA_REQUIRE, "var _core = __hecate_lazy(() => ($1(), __toCommonJS($2)));");
  for (const [name, expr, uses] of JODA_CONSTANTS) {
    const decl = `var ${name} = ${expr};`;
    const use = `${name}.until(`;
    if (text.split(decl).length !== 2) fail(`expected one "${decl}"`);
    if (text.split(use).length !== uses + 1) fail(`expected ${uses} uses of ${name}`);
    text = text.replace(decl, `var ${name};`).replaceAll(use, `(${name} ??= ${expr}).until(`);
  }
  return { text: LAZY_HELPER + text, replaced: true };
}

/** Applies {@link deferJsJoda} to the chunks in `outDir`: tedious's chunk must be found. */
async function deferTediousDates(outDir: string): Promise<void> {
  let found = 0;
  for await (const entry of Deno.readDir(outDir)) {
    if (!entry.isFile || !entry.name.endsWith(".js")) continue;
    const path = `${outDir}/${entry.name}`;
    const { text, replaced } = deferJsJoda(await Deno.readTextFile(path));
    if (!replaced) continue;
    found++;
    await Deno.writeTextFile(path, text);
  }
  if (found !== 1) {
    throw new Error(`bundle: expected tedious's js-joda in one chunk, found ${found}`);
  }
}

/** The binding's `import()` as the bundler leaves it (external). */
const KEYRING_IMPORT = `import(${JSON.stringify(NATIVE_KEYRING)})`;

/**
 * Turns one chunk's `import()` of the keyring binding into a rejected promise, so that the bundle
 * uses the keyring programs and never resolves a bare specifier at run time (from whatever
 * node_modules might lie near the bundle or the working directory).
 *
 * @param text A chunk's JavaScript.
 * @returns The text, and how many imports it replaced.
 */
export function dropNativeKeyring(text: string): { text: string; replaced: number } {
  const replaced = text.split(KEYRING_IMPORT).length - 1;
  if (replaced === 0) return { text, replaced };
  const stub = `Promise.reject(new Error("${NATIVE_KEYRING} is not part of the bundle"))`;
  return { text: text.replaceAll(KEYRING_IMPORT, stub), replaced };
}

/** Applies {@link dropNativeKeyring} to the chunks in `outDir`: the import must be found once. */
async function removeNativeKeyring(outDir: string): Promise<void> {
  let found = 0;
  for await (const entry of Deno.readDir(outDir)) {
    if (!entry.isFile || !entry.name.endsWith(".js")) continue;
    const path = `${outDir}/${entry.name}`;
    const { text, replaced } = dropNativeKeyring(await Deno.readTextFile(path));
    if (replaced === 0) continue;
    found += replaced;
    await Deno.writeTextFile(path, text);
  }
  if (found !== 1) {
    throw new Error(
      `bundle: expected one import() of ${NATIVE_KEYRING} in the chunks, found ${found}; ` +
        "update dropNativeKeyring in scripts/bundle.ts",
    );
  }
}

/** Applies {@link replaceStandins} to the chunks in `outDir`: each package must be found. */
async function installStandins(outDir: string): Promise<void> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(outDir)) {
    if (!entry.isFile || !entry.name.endsWith(".js")) continue;
    const path = `${outDir}/${entry.name}`;
    const { text, replaced } = replaceStandins(await Deno.readTextFile(path));
    if (replaced.length === 0) continue;
    found.push(...replaced);
    await Deno.writeTextFile(path, text);
  }
  if (found.sort().join() !== [...STANDIN_PACKAGES].sort().join()) {
    throw new Error(
      `bundle: expected one require() of each of ${STANDIN_PACKAGES.join(", ")} in the ` +
        `chunks, found ${found.join(", ") || "none"}; update replaceStandins in scripts/bundle.ts`,
    );
  }
  await deno([
    "bundle",
    "--quiet",
    "--platform=deno",
    "--output",
    `${outDir}/${STANDIN_FILE}`,
    `${ROOT}src/db/tedious_standin.ts`,
  ]);
}

/**
 * The launcher script: finds `main.js` beside itself and runs it with Deno.
 *
 * @returns The script's text.
 */
export function launcherScript(): string {
  const flags = [...RUN_FLAGS, ...HECATE_PERMISSIONS].join(" ");
  return `#!/bin/sh
# Hecate, bundled (scripts/bundle.ts). Needs deno 2.9.6 on PATH, or DENO=/path/to/deno.
case "$0" in
  */*) dir=\${0%/*} ;;
  *) dir=$(dirname -- "$(command -v -- "$0" || echo "$0")") ;;
esac
exec "\${DENO:-deno}" run ${flags} "$dir/main.js" "$@"
`;
}

/**
 * Bundles one more program the way the distribution is bundled (one file, the same stand-ins and
 * lazy `require()`): the benchmark's bare-driver references use it so that they are compared
 * like for like.
 *
 * @param entry The program's entry module (absolute path).
 * @param outDir Output directory (created; the program is `OUTDIR/<name>.js`).
 */
export async function bundleProgram(entry: string, outDir: string): Promise<void> {
  await deno([
    "bundle",
    "--quiet",
    "--platform=deno",
    ...STANDIN_PACKAGES.flatMap((p) => ["--external", p]),
    "--outdir",
    outDir,
    entry,
  ]);
  await makeRequireLazy(outDir);
  await installStandins(outDir);
  await deferTediousDates(outDir);
}

async function deno(args: string[]): Promise<void> {
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (code !== 0) throw new Error(`deno ${args[0]} failed (exit ${code})`);
}

/**
 * Builds the bundle into `outDir`, replacing what was there.
 *
 * @param outDir Output directory.
 * @returns The launcher's path.
 */
export async function buildBundle(outDir: string = DEFAULT_OUT): Promise<string> {
  await Deno.remove(outDir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await deno(bundleArgs(outDir));
  await makeRequireLazy(outDir);
  await installStandins(outDir);
  await deferTediousDates(outDir);
  await removeNativeKeyring(outDir);
  await deno(workerBundleArgs(outDir));
  const launcher = `${outDir}/hecate`;
  await Deno.writeTextFile(launcher, launcherScript(), { mode: 0o755 });
  await Deno.chmod(launcher, 0o755); // mode applies only to a new file; be explicit
  return launcher;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--out");
  const outDir = i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1]! : DEFAULT_OUT;
  const launcher = await buildBundle(outDir);
  console.log(`bundle: ${launcher} (run it, or: deno run ${RUN_FLAGS.join(" ")} ... main.js)`);
}
