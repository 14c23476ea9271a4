/**
 * What every command handler gets: the process io, the shared stdin reader, and the global
 * options (`--home`, `--password-stdin`).
 *
 * @module
 */

import { openVault, type Vault } from "../hecate.ts";
import type { CliIo } from "./io.ts";
import { masterPassword, StdinLines } from "./secrets.ts";

/** Options accepted before or after any subcommand. */
export interface GlobalOptions {
  home?: string | undefined;
  passwordStdin?: boolean | undefined;
}

/** Shared state of one CLI invocation. */
export class CliContext {
  /** Process io. */
  readonly io: CliIo;
  /** Stdin, read once, handed out line by line. */
  readonly stdin: StdinLines;
  /** Global options. */
  globals: GlobalOptions = {};
  /** An exit code a command chose (e.g. `run` passing on its child's); unset means success. */
  exitCode: number | undefined;
  /** Writes started synchronously (by commander) that must finish before the process exits. */
  readonly pending: Promise<void>[] = [];

  /** @param io Process io. */
  constructor(io: CliIo) {
    this.io = io;
    this.stdin = new StdinLines(io);
  }

  /** Writes a warning line to stderr. */
  warn(text: string): Promise<void> {
    return this.io.err(`hecate: warning: ${text}\n`);
  }

  /**
   * Unlocks the vault with the master password from the configured source.
   *
   * @returns The open vault.
   */
  async unlock(): Promise<Vault> {
    const password = await masterPassword(this.io, this.stdin, this.globals);
    return await openVault({ home: this.globals.home, password });
  }
}
