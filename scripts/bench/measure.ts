/**
 * Measuring helpers for the benchmark scripts: wall time and peak RSS of a child process (through
 * GNU time), medians, and ratio printing. Benchmarks compare against a reference tool run in the
 * same script on the same server, so the figures are ratios, not absolute promises.
 *
 * @module
 */

/** One measured run of a command. */
export interface RunResult {
  /** Wall-clock seconds. */
  wallS: number;
  /** Peak resident set size in MiB. */
  peakMiB: number;
}

/** Options for {@link measure}. */
export interface MeasureOptions {
  /** Extra environment. */
  env?: Record<string, string>;
  /** Text for standard input. */
  stdin?: string;
  /** Redirect stdout to this file (else discarded). */
  stdoutFile?: string;
}

/**
 * Runs a command under GNU time and returns its wall time (millisecond resolution) and peak RSS.
 *
 * @param cmd Program and arguments.
 * @param options Environment, stdin, stdout file.
 * @returns The measurement.
 * @throws {Error} When the command fails.
 */
export async function measure(cmd: string[], options: MeasureOptions = {}): Promise<RunResult> {
  const timeFile = await Deno.makeTempFile();
  const wallFile = await Deno.makeTempFile();
  try {
    // GNU time gives the peak RSS; its wall time has 10 ms steps, too coarse next to a 30 ms
    // psql, so bash's `time` (millisecond steps) times the same child.
    const shellCmd = `TIMEFORMAT=%3R; exec 3>&2; { time /usr/bin/time -o '${timeFile}' -f '%M' ` +
      `"$@" > '${options.stdoutFile ?? "/dev/null"}' 2>&3; } 2> '${wallFile}'`;
    const child = new Deno.Command("bash", {
      args: ["-c", shellCmd, "bash", ...cmd],
      stdin: options.stdin !== undefined ? "piped" : "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1", ...(options.env ?? {}) },
    }).spawn();
    if (options.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(options.stdin));
      await w.close();
    }
    const out = await child.output();
    if (!out.success) {
      throw new Error(`${cmd[0]} failed: ${new TextDecoder().decode(out.stderr).slice(0, 400)}`);
    }
    const kb = (await Deno.readTextFile(timeFile)).trim().split("\n").at(-1)!;
    const wall = (await Deno.readTextFile(wallFile)).trim().split("\n").at(-1)!;
    return { wallS: Number(wall), peakMiB: Number(kb) / 1024 };
  } finally {
    await Deno.remove(timeFile);
    await Deno.remove(wallFile);
  }
}

/**
 * Runs `fn` `n` times and returns the median of each field.
 *
 * @param n Repetitions.
 * @param fn The measurement.
 * @returns Medians.
 */
export async function medianOf(n: number, fn: () => Promise<RunResult>): Promise<RunResult> {
  const runs: RunResult[] = [];
  for (let i = 0; i < n; i++) runs.push(await fn());
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)]!;
  };
  return { wallS: med(runs.map((r) => r.wallS)), peakMiB: med(runs.map((r) => r.peakMiB)) };
}

/**
 * Runs several measurements in turns (`a b c a b c ...`), so that load from other work on the
 * machine falls on all of them alike, and returns each one's medians.
 *
 * @param n Rounds.
 * @param fns The measurements by name.
 * @returns Medians by name.
 */
export async function medianInterleaved<K extends string>(
  n: number,
  fns: Record<K, () => Promise<RunResult>>,
): Promise<Record<K, RunResult>> {
  const names = Object.keys(fns) as K[];
  const runs = new Map<K, RunResult[]>(names.map((k) => [k, []]));
  for (let i = 0; i < n; i++) {
    for (const k of names) runs.get(k)!.push(await fns[k]());
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const out = {} as Record<K, RunResult>;
  for (const k of names) {
    const r = runs.get(k)!;
    out[k] = { wallS: med(r.map((x) => x.wallS)), peakMiB: med(r.map((x) => x.peakMiB)) };
  }
  return out;
}

/**
 * Times an async function in-process.
 *
 * @param n Repetitions.
 * @param fn The work.
 * @returns Median milliseconds.
 */
export async function medianMs(n: number, fn: () => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!;
}

/**
 * Prints one comparison line: both figures and the ratio ours/reference.
 *
 * @param label What was measured.
 * @param ours Hecate's result.
 * @param ref The reference tool's result.
 * @param refName The reference tool's name.
 * @param oursName What ran in place of Hecate. @default {"hecate"}
 */
export function report(
  label: string,
  ours: RunResult,
  ref: RunResult,
  refName: string,
  oursName = "hecate",
): void {
  console.log(
    `${label}: ${oursName} ${ours.wallS.toFixed(3)} s / ${ours.peakMiB.toFixed(0)} MiB peak; ` +
      `${refName} ${ref.wallS.toFixed(3)} s / ${ref.peakMiB.toFixed(0)} MiB peak; ` +
      `time ratio ${(ours.wallS / ref.wallS).toFixed(2)}x`,
  );
}
