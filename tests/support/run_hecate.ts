/**
 * `runHecate` of ./cli.ts with the vault home taken from `HECATE_HOME` in `env`, as the run,
 * backup and import tests describe their environment.
 *
 * @module
 */

import { runHecate as runCliProcess, type RunHecateResult } from "./cli.ts";

/**
 * Runs `hecate ARGS` as a separate process with the `hecate` task's permissions.
 *
 * @param args Arguments.
 * @param options `env` (its `HECATE_HOME` becomes `--home`), standard input, directory.
 * @returns Exit code and output.
 */
export function runHecate(
  args: string[],
  options: { env: Record<string, string>; stdin?: string; cwd?: string },
): Promise<RunHecateResult> {
  const { HECATE_HOME: home, ...env } = options.env;
  if (!home) throw new Error("runHecate: env.HECATE_HOME is required");
  return runCliProcess(args, {
    home,
    env,
    ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  });
}
