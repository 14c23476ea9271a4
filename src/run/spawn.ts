/**
 * Starting a program with extra environment variables and passing its exit status through, the
 * way `env(1)` does: its own standard streams are ours, its exit code becomes ours, and a death by
 * signal N becomes 128 + N as in a shell.
 *
 * @module
 */

import { HecateError } from "../errors.ts";

/** Signal numbers (Linux and macOS agree on these). */
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/**
 * Variables a child never inherits: the credentials that would let it unlock the vault as well
 * (an API key; a password file's or an age identity file's path, which names where the
 * credential is), and a one-time code,
 * which a child could spend before the person's own next command.
 */
export const WITHHELD: readonly string[] = [
  "HECATE_PASSWORD_FILE",
  "HECATE_NEW_PASSWORD_FILE",
  "HECATE_API_KEY",
  "HECATE_IDENTITY",
  "HECATE_TOTP",
];

/** Signals passed on to the child while it runs (SIGINT reaches it from the terminal itself). */
const FORWARDED: Deno.Signal[] = ["SIGTERM", "SIGHUP"];

/**
 * The shell-style exit code for a child's status.
 *
 * @param status The child's status.
 * @returns Its exit code, or 128 + the signal number.
 */
export function exitCodeOf(status: Deno.CommandStatus): number {
  if (status.signal) return 128 + (SIGNAL_NUMBERS[status.signal] ?? 0);
  return status.code;
}

/**
 * Runs a program to completion with `env` added to this process's environment.
 *
 * @param command Program name or path (looked up on PATH).
 * @param args Its arguments.
 * @param env Variables to add (they win over inherited ones).
 * @returns Its exit code (128 + N after signal N).
 * @throws {HecateError} `usage` when the program cannot be found or started.
 */
export async function spawnWithEnv(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<number> {
  const full: Record<string, string> = { ...Deno.env.toObject(), ...env };
  for (const name of WITHHELD) delete full[name];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args: [...args],
      env: full,
      clearEnv: true,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "not found"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : e instanceof Deno.errors.NotCapable
      ? "cannot be started: this process runs without Deno's --allow-run permission"
      : "cannot be started";
    throw new HecateError("usage", `Command "${command}" ${why}`, { cause: e });
  }
  const forward: [Deno.Signal, () => void][] = FORWARDED.map((sig) => [sig, () => {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  }]);
  // Ctrl-C goes to the whole foreground group: the child gets it; we wait for its exit.
  const ignore = () => {};
  for (const [sig, fn] of forward) Deno.addSignalListener(sig, fn);
  Deno.addSignalListener("SIGINT", ignore);
  try {
    return exitCodeOf(await child.status);
  } finally {
    for (const [sig, fn] of forward) Deno.removeSignalListener(sig, fn);
    Deno.removeSignalListener("SIGINT", ignore);
  }
}

/**
 * Starts a background process (the unlock agent, src/agent/start.ts) with a clean environment
 * (no variable of {@link WITHHELD}), stdin and stdout piped to the caller, stderr discarded. Kept
 * here so that this module stays the only one that starts processes.
 *
 * @param command The program.
 * @param args Its arguments (never a secret: they are visible in /proc/PID/cmdline).
 * @param cwd Its working directory.
 * @returns The child process.
 */
export function spawnBackground(
  command: string,
  args: readonly string[],
  cwd: string,
): Deno.ChildProcess {
  const env = Deno.env.toObject();
  for (const name of WITHHELD) delete env[name];
  return new Deno.Command(command, {
    args: [...args],
    env,
    clearEnv: true,
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

/** How {@link runCaptured} runs a helper program. */
export interface CapturedOptions {
  /** The child's environment; without `clearEnv`, added to ours (minus {@link WITHHELD}). */
  env?: Record<string, string>;
  /** Start from an empty environment instead of ours. */
  clearEnv?: boolean;
  /** Bytes for its stdin (a secret being stored goes here, never in argv); none: /dev/null. */
  input?: Uint8Array;
  /** Its stderr: captured (default), discarded, or ours. */
  stderr?: "piped" | "null" | "inherit";
  /** Kills it when aborted (a source's timeout). */
  signal?: AbortSignal;
}

/**
 * Runs a helper program to completion with its output captured: a secret store's command-line
 * tool (`pass`, `secret-tool`, `sops`, `az`) or an AWS `credential_process`. Like every process
 * Hecate starts, it starts here, and never with the variables in {@link WITHHELD}.
 *
 * @param command The program (a name looked up on PATH, or a path).
 * @param args Its arguments (never a secret: they are visible in /proc/PID/cmdline).
 * @param options Environment, stdin bytes, stderr handling and an abort signal.
 * @returns Its exit status and captured output (stderr only when piped).
 * @throws {Deno.errors.NotFound} when the program does not exist; other spawn errors as thrown.
 */
export async function runCaptured(
  command: string,
  args: readonly string[],
  options: CapturedOptions = {},
): Promise<Deno.CommandOutput> {
  const env = options.clearEnv ? { ...options.env } : { ...Deno.env.toObject(), ...options.env };
  for (const name of WITHHELD) delete env[name];
  const child = new Deno.Command(command, {
    args: [...args],
    env,
    clearEnv: true,
    stdin: options.input ? "piped" : "null",
    stdout: "piped",
    stderr: options.stderr ?? "piped",
    ...(options.signal ? { signal: options.signal } : {}),
  }).spawn();
  if (options.input) {
    const w = child.stdin.getWriter();
    try {
      await w.write(options.input);
    } finally {
      await w.close().catch(() => {});
    }
  }
  return await child.output();
}
