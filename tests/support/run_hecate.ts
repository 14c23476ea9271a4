/**
 * Runs the real CLI (`main.ts`) in a child process with the permissions of the deno.json
 * `hecate` task, for tests that assert on exit codes and on what reaches stdout and stderr.
 *
 * @module
 */

/** The deno.json `hecate` task's permissions. */
export const HECATE_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys=hostname,uid",
];

const ROOT = new URL("../../", import.meta.url).pathname;

/** What a run produced. */
export interface HecateRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link runHecate}. */
export interface RunHecateOptions {
  /** Text on standard input. @default {""} */
  stdin?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/**
 * Runs `hecate --home HOME ...args`.
 *
 * @param home The vault home.
 * @param args Arguments after `--home`.
 * @param options Standard input and environment.
 * @returns Exit code and output.
 */
export async function runHecate(
  home: string,
  args: string[],
  options: RunHecateOptions = {},
): Promise<HecateRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...HECATE_PERMISSIONS, `${ROOT}main.ts`, "--home", home, ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(options.stdin ?? ""));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
