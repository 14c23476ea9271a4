/**
 * The CLI's contact with the outside: standard streams, environment, terminal detection and the
 * hidden prompt. Commands receive a {@link CliIo} so tests can run them in-process.
 *
 * @module
 */

/** What a command may use of the process it runs in. */
export interface CliIo {
  /** Writes to standard output. */
  out(text: string): Promise<void>;
  /** Writes bytes to standard output. */
  outBytes(bytes: Uint8Array): Promise<void>;
  /** Writes to standard error. */
  err(text: string): Promise<void>;
  /** Environment lookup. */
  env(name: string): string | undefined;
  /** Whether standard input is a terminal (prompts are allowed). */
  stdinIsTerminal: boolean;
  /** Whether standard output is a terminal (human formats are the default). */
  stdoutIsTerminal: boolean;
  /** Reads all of standard input once. */
  readStdin(): Promise<Uint8Array>;
  /** Asks for a secret on the terminal without echo. */
  promptSecret(label: string): Promise<string>;
  /** Whether colour may be used on standard error/output. */
  color: boolean;
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let n = 0;
  while (n < bytes.length) n += await w.write(bytes.subarray(n));
}

/**
 * The real process's I/O.
 *
 * @returns An io backed by Deno's standard streams.
 */
export function processIo(): CliIo {
  const enc = new TextEncoder();
  return {
    out: (t) => writeAll(Deno.stdout, enc.encode(t)),
    outBytes: (b) => writeAll(Deno.stdout, b),
    err: (t) => writeAll(Deno.stderr, enc.encode(t)),
    env: (n) => Deno.env.get(n),
    stdinIsTerminal: Deno.stdin.isTerminal(),
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    readStdin: async () => new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer()),
    promptSecret: async (label) => {
      // Loaded only when a person is at a terminal; the cron path never pays for it.
      const { default: password } = await import("@inquirer/password");
      // Prompts go to stderr so that stdout stays clean for data. node:process is imported here,
      // not at the top: any node: module starts Deno's Node layer, which the cron path avoids.
      const { default: process } = await import("node:process");
      try {
        return await password({ message: label, mask: false }, { output: process.stderr });
      } catch (e) {
        if (e instanceof Error && e.name === "ExitPromptError") {
          throw new PromptCancelled();
        }
        throw e;
      }
    },
    color: !Deno.env.get("NO_COLOR") && Deno.stderr.isTerminal(),
  };
}

/** Raised when the person cancels a prompt (Ctrl-C). */
export class PromptCancelled extends Error {
  constructor() {
    super("Cancelled");
    this.name = "PromptCancelled";
  }
}
