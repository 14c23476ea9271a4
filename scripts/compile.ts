/**
 * Builds one self-contained `hecate` executable per OS with `deno compile`, each carrying the
 * same explicit permission set as `deno task hecate` (never `-A`).
 *
 * `deno compile` downloads the runtime for each target from the Deno site on first use; where
 * that site is unreachable the build fails with Deno's own message, and nothing is faked.
 *
 * The executable embeds node_modules as it is: npm's platform packages (the OS keyring binding
 * `@napi-rs/keyring`'s addon) are those of the OS and CPU they were installed for, by default this
 * machine's. For another target run `deno install --os OS --arch ARCH` first (the release workflow
 * does); else that executable's `keyring:` access uses the command-line programs
 * (docs/SOURCES.md).
 *
 * Usage: `deno task compile [--target TRIPLE]... [--out DIR] [--dry-run]`
 *
 * @module
 */

import { HECATE_PERMISSIONS } from "./permissions.ts";

/** Targets built by default: Linux, macOS and Windows on x86-64 and ARM64 where Deno ships. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** The permission set the executable runs with: the same as `deno task hecate`. */
export const PERMISSIONS: readonly string[] = HECATE_PERMISSIONS;

/**
 * The `deno compile` arguments for one target.
 *
 * @param target A Rust target triple Deno supports.
 * @param outDir Output directory.
 * @returns Arguments after `deno`.
 */
export function compileArgs(target: string, outDir: string): string[] {
  const exe = target.includes("windows") ? ".exe" : "";
  return [
    "compile",
    "--quiet",
    ...PERMISSIONS,
    "--no-check",
    "--target",
    target,
    "--output",
    `${outDir}/hecate-${target}${exe}`,
    new URL("../main.ts", import.meta.url).pathname,
  ];
}

if (import.meta.main) {
  const args = [...Deno.args];
  const dryRun = args.includes("--dry-run");
  const targets: string[] = [];
  let outDir = "dist";
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--target" && args[i + 1]) targets.push(args[++i]!);
    else if (args[i] === "--out" && args[i + 1]) outDir = args[++i]!;
  }
  let failed = 0;
  for (const target of targets.length ? targets : TARGETS) {
    const cmd = compileArgs(target, outDir);
    console.log(`deno ${cmd.join(" ")}`);
    if (dryRun) continue;
    const { code } = await new Deno.Command(Deno.execPath(), { args: cmd }).spawn().status;
    if (code !== 0) {
      console.error(`compile: ${target} failed (exit ${code})`);
      failed++;
    }
  }
  Deno.exit(failed ? 1 : 0);
}
