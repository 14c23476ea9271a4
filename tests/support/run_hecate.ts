/**
 * Runs the `hecate` command as a separate process, with exactly the permissions of the `hecate`
 * task in deno.json (so a missing permission fails the test as it would fail a user).
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** The `--allow-*` flags of the `hecate` task. */
export function taskPermissions(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  return (config.tasks.hecate as string).split(/\s+/).filter((a) => a.startsWith("--allow-"));
}

/** Options for {@link runHecate}. */
export interface RunHecateOptions {
  /** Standard input text. @default {none} */
  stdin?: string;
  /** Environment (the child gets only this, plus PATH and HOME). */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
}

/** What the process did. */
export interface HecateResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `hecate ARGS`.
 *
 * @param args Arguments after `hecate`.
 * @param options Stdin, environment, directory.
 * @returns Exit code and output.
 */
export async function runHecate(
  args: string[],
  options: RunHecateOptions = {},
): Promise<HecateResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--config",
      `${ROOT}deno.json`,
      ...taskPermissions(),
      `${ROOT}main.ts`,
      ...args,
    ],
    clearEnv: true,
    env: {
      PATH: "/usr/bin:/bin:/usr/sbin:/sbin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      NO_COLOR: "1",
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
      ...options.env,
    },
    cwd: options.cwd ?? ROOT,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
