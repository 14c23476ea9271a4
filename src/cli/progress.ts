/**
 * Progress lines for long operations, shown only when standard error is a terminal (never in
 * logs or pipes).
 *
 * @module
 */

import type { Progress } from "../backup/backup.ts";
import type { CliIo } from "./io.ts";

/**
 * A progress reporter for the terminal, or undefined when stderr is not one.
 *
 * @param io The process io.
 * @param what The operation, e.g. `backup`.
 * @param isTerminal Whether stderr is a terminal. @default {Deno.stderr.isTerminal()}
 * @returns The reporter.
 */
export function terminalProgress(
  io: CliIo,
  what: string,
  isTerminal: boolean = Deno.stderr.isTerminal(),
): Progress | undefined {
  if (!isTerminal) return undefined;
  return (step, done, total) => {
    const pct = total > 0 ? Math.round((done / total) * 100) : 100;
    // \r and erase-line keep one updating line; the last step ends it.
    void io.err(`\r\x1b[2Khecate: ${what}: ${step} (${pct}%)${done >= total ? "\n" : ""}`);
  };
}
