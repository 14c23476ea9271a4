/**
 * What the secret-source sections (`vault`, `aws`, `cloud`) share: the bundled `hecate` next to
 * the one from source, Deno's cache directory for runs that replace `HOME`, and the floors (an
 * empty script; a bare `fetch` in a fresh process, ./fetch_floor.ts).
 *
 * @module
 */

import { buildBundle } from "../bundle.ts";

/** Builds a `hecate` command line for a home and arguments. */
export type HecateCmd = (home: string, ...args: string[]) => string[];

let launcher: Promise<string> | undefined;

/**
 * The bundled `hecate` (scripts/bundle.ts, built once per benchmark run into `root/bundle`).
 * Its launcher finds Deno through `DENO`: add {@link bundleEnv} to the runs' environment.
 *
 * @param root The benchmark's temporary directory.
 * @returns A command builder like the from-source one.
 */
export async function bundledHecate(root: string): Promise<HecateCmd> {
  launcher ??= buildBundle(`${root}/bundle`);
  const path = await launcher;
  return (home, ...args) => [path, "--home", home, ...args];
}

/**
 * The environment every run gets: `DENO` for the bundle's launcher, and `DENO_DIR` pinned to
 * this Deno's cache. A section that points `HOME` at an empty directory (the AWS chain's "no
 * shared files") would otherwise also move Deno's cache there: every run from source would start
 * with no compiled code and fetch npm metadata from the registry, which is not what a cron job
 * on a configured host does.
 *
 * @returns The variables.
 */
export async function bundleEnv(): Promise<Record<string, string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).output();
  const denoDir = String(JSON.parse(new TextDecoder().decode(out.stdout)).denoDir ?? "");
  return { DENO: Deno.execPath(), ...(denoDir ? { DENO_DIR: denoDir } : {}) };
}

/**
 * The floors: Deno starting an empty script, and ./fetch_floor.ts (one `fetch` and its JSON
 * body in a fresh process; its target comes from `FLOOR_URL`, `FLOOR_TOKEN`).
 *
 * @param root The benchmark's temporary directory.
 * @returns The two command lines.
 */
export async function floorCommands(root: string): Promise<{ empty: string[]; fetch: string[] }> {
  const emptyJs = `${root}/empty-floor.js`;
  await Deno.writeTextFile(emptyJs, "");
  const fetchTs = new URL("./fetch_floor.ts", import.meta.url).pathname;
  const run = [Deno.execPath(), "run", "--quiet", "--no-config"];
  return { empty: [...run, emptyJs], fetch: [...run, "--allow-net", "--allow-env", fetchTs] };
}
