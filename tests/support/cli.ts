/**
 * Runs the real `hecate` command in a child process, the way a person or a cron job would: the
 * exact permission set of the `hecate` task in deno.json, `NO_COLOR=1`, a clean environment (no
 * HECATE_* variable of the outer process leaks in), standard input piped and closed after the
 * given text. Also a temporary-directory helper for per-file vault homes.
 *
 * @module
 */

import { HECATE_PERMISSIONS } from "../../scripts/permissions.ts";

export { HECATE_PERMISSIONS };

/** The repository root (where main.ts and deno.json live). */
export const REPO_ROOT: string = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** main.ts, resolved relative to this file. */
export const MAIN_TS: string = new URL("../../main.ts", import.meta.url).pathname;

/** The master password most tests use (at least 12 characters). */
export const MASTER_PASSWORD = "correct horse battery staple";

/** Options for {@link runHecate}. */
export interface RunHecateOptions {
  /** The vault home, passed as `--home`. */
  home: string;
  /** Text written to standard input, which is then closed. @default {""} */
  stdin?: string;
  /** Extra environment variables (the rest of the environment is cleared). */
  env?: Record<string, string>;
  /**
   * Measure the peak resident memory of the hecate process: through `/usr/bin/time` when it
   * exists, else by polling `/proc/<pid>/status` (VmHWM) until the process ends.
   */
  measureMemory?: boolean;
  /** Working directory. @default {the repository root} */
  cwd?: string;
  /**
   * Keep standard input open (after writing `stdin`) until the process ends, like a job whose
   * stdin is an idle pipe: shows that a command does not wait for input.
   */
  holdStdin?: boolean;
  /** Flags for `deno run` itself (e.g. `--log-level=debug`), placed before main.ts. */
  denoFlags?: string[];
  /** Kill the process (SIGKILL) after this many milliseconds. @default {120000} */
  timeoutMs?: number;
}

/** What a run of hecate produced. */
export interface RunHecateResult {
  /** Exit code. */
  code: number;
  /** Standard output as UTF-8 text. */
  stdout: string;
  /** Standard output, raw. */
  stdoutBytes: Uint8Array;
  /** Standard error as UTF-8 text. */
  stderr: string;
  /** Peak resident set size in KiB, with `measureMemory`. */
  peakRssKb?: number;
  /** Whether the process was killed for running past `timeoutMs`. */
  timedOut: boolean;
}

const TIME_BIN = "/usr/bin/time";

function baseEnv(extra: Record<string, string> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  // Only what Deno itself needs to find its caches; nothing Hecate reads.
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const v = Deno.env.get(name);
    if (v !== undefined) env[name] = v;
  }
  return { ...env, LANG: "C.UTF-8", NO_COLOR: "1", ...extra };
}

function hasTimeBinary(): boolean {
  try {
    return Deno.statSync(TIME_BIN).isFile;
  } catch {
    return false;
  }
}

/** Reads VmHWM (peak RSS, KiB) of a live process, or undefined once it is gone. */
function readVmHwm(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `hecate --home HOME ...args` as a child process.
 *
 * @param args Arguments after `--home HOME`.
 * @param opts Home, stdin text, extra environment, memory measurement.
 * @returns Exit code, output and (optionally) peak memory.
 */
export async function runHecate(args: string[], opts: RunHecateOptions): Promise<RunHecateResult> {
  const denoArgs = [
    "run",
    ...(opts.denoFlags ?? ["--quiet"]),
    ...HECATE_PERMISSIONS,
    MAIN_TS,
    "--home",
    opts.home,
    ...args,
  ];
  let command = Deno.execPath();
  let commandArgs = denoArgs;
  let timeFile: string | undefined;
  const useTime = opts.measureMemory === true && hasTimeBinary();
  if (useTime) {
    timeFile = await Deno.makeTempFile({ prefix: "hecate-time-" });
    command = TIME_BIN;
    commandArgs = ["-f", "%M", "-o", timeFile, Deno.execPath(), ...denoArgs];
  }
  const child = new Deno.Command(command, {
    args: commandArgs,
    cwd: opts.cwd ?? REPO_ROOT,
    clearEnv: true,
    env: baseEnv(opts.env),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let polledPeak = 0;
  let polling = false;
  let poller: Promise<void> | undefined;
  if (opts.measureMemory && !useTime) {
    polling = true;
    poller = (async () => {
      while (polling) {
        const v = readVmHwm(child.pid);
        if (v !== undefined && v > polledPeak) polledPeak = v;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
  }

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, opts.timeoutMs ?? 120_000);

  const writer = child.stdin.getWriter();
  try {
    if (opts.stdin) await writer.write(new TextEncoder().encode(opts.stdin));
  } catch {
    // The child may exit before reading stdin (e.g. a usage error): that is not our failure.
  }
  if (!opts.holdStdin) await writer.close().catch(() => {});
  let out: Deno.CommandOutput;
  try {
    out = await child.output();
  } finally {
    clearTimeout(timer);
    polling = false;
    await poller;
    if (opts.holdStdin) await writer.close().catch(() => {});
  }

  const dec = new TextDecoder();
  const result: RunHecateResult = {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stdoutBytes: out.stdout,
    stderr: dec.decode(out.stderr),
    timedOut,
  };
  if (timeFile !== undefined) {
    const text = await Deno.readTextFile(timeFile);
    await Deno.remove(timeFile).catch(() => {});
    // With a non-zero exit, time writes "Command exited with non-zero status N" first.
    const m = /(\d+)\s*$/.exec(text.trim());
    if (m) result.peakRssKb = Number(m[1]);
  } else if (opts.measureMemory) {
    result.peakRssKb = polledPeak;
  }
  return result;
}

/**
 * A temporary directory removed by `dispose()`; `home` is a not-yet-existing vault home inside.
 */
export interface TempDir {
  /** The directory (mode 0700). */
  path: string;
  /** Removes it. */
  dispose(): Promise<void>;
  /** Same as {@link TempDir.dispose}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Creates a temporary directory with mode 0700.
 *
 * @param prefix Name prefix.
 * @returns The directory and its disposer.
 */
export async function tempDir(prefix = "hecate-cli-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  await Deno.chmod(path, 0o700);
  const dispose = async () => {
    await Deno.chmod(path, 0o700).catch(() => {});
    await Deno.remove(path, { recursive: true }).catch(() => {});
  };
  return { path, dispose, [Symbol.asyncDispose]: dispose };
}

/** A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Lines of standard error that look like a JavaScript stack trace. */
export function stackLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /^\s+at /.test(l));
}
