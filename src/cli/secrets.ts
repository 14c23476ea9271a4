/**
 * Where the CLI gets secrets from: the master password, new passwords and profile secrets.
 * Never from argv. Sources, in order: standard input (when its flag is given), a password file
 * named by an environment variable, a hidden prompt on a terminal. With none of these, fail at
 * once rather than hang.
 *
 * @module
 */

import { checkPasswordPolicy } from "../access/password_policy.ts";
import { HecateError } from "../errors.ts";
import type { CliIo } from "./io.ts";
import { readPrivateFile } from "./private_file.ts";

export { checkPasswordPolicy, MIN_PASSWORD_LENGTH } from "../access/password_policy.ts";

/**
 * Hands out the lines of standard input one at a time, reading stdin once. When several secrets
 * come from stdin (e.g. `--password-stdin --secret-stdin`) they are consecutive lines.
 */
export class StdinLines {
  readonly #io: CliIo;
  #lines: string[] | undefined;
  #next = 0;

  /** @param io The process io. */
  constructor(io: CliIo) {
    this.#io = io;
  }

  /**
   * Returns the next line if standard input holds one (for optional secrets), else undefined.
   */
  async maybeNext(): Promise<string | undefined> {
    await this.#load();
    const line = this.#lines![this.#next];
    if (line === undefined || line === "") return undefined;
    this.#next++;
    return line;
  }

  async #load(): Promise<void> {
    if (this.#lines === undefined) {
      const text = new TextDecoder().decode(await this.#io.readStdin());
      this.#lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
      if (this.#lines.at(-1) === "") this.#lines.pop();
    }
  }

  /**
   * Returns the next line.
   *
   * @param what What the line is, for the error message.
   * @throws {HecateError} `no_credential` when stdin has no more lines.
   */
  async next(what: string): Promise<string> {
    await this.#load();
    const line = this.#lines![this.#next++];
    if (line === undefined || line === "") {
      throw new HecateError("no_credential", `Standard input holds no ${what}`, {
        hint: "give one secret per line on standard input",
      });
    }
    return line;
  }
}

/** Options shared by the commands that need the master password. */
export interface PasswordSourceOptions {
  passwordStdin?: boolean | undefined;
}

/**
 * Gets the master password for unlocking.
 *
 * @param io The process io.
 * @param stdin The shared stdin line reader.
 * @param options Which sources the command line enabled.
 * @returns The password.
 */
export async function masterPassword(
  io: CliIo,
  stdin: StdinLines,
  options: PasswordSourceOptions,
): Promise<string> {
  if (options.passwordStdin) return await stdin.next("master password");
  const file = io.env("HECATE_PASSWORD_FILE");
  if (file) return await readPasswordFile(file);
  if (io.stdinIsTerminal) return await nonEmpty(io.promptSecret("Master password:"));
  throw new HecateError("no_credential", "No master password given and no terminal to ask on", {
    hint: "use --password-stdin or set HECATE_PASSWORD_FILE",
  });
}

/**
 * Gets a hardware token's user PIN: the next line of standard input with `--pin-stdin` (after
 * the master password's line when both come from there), else a hidden prompt. Never argv or
 * the environment.
 *
 * @param io The process io.
 * @param stdin The shared stdin line reader.
 * @param fromStdin Whether `--pin-stdin` was given.
 * @param token The token's label, for the prompt, if known.
 * @returns The PIN.
 */
export async function tokenPin(
  io: CliIo,
  stdin: StdinLines,
  fromStdin: boolean,
  token: string | undefined,
): Promise<string> {
  if (fromStdin) return await stdin.next("token PIN");
  const what = token === undefined ? "the vault's token" : `token "${token}"`;
  if (io.stdinIsTerminal) return await nonEmpty(io.promptSecret(`PIN for ${what}:`));
  throw new HecateError("no_credential", "No token PIN given and no terminal to ask on", {
    hint: "use --pin-stdin",
  });
}

/**
 * Gets a new master password (for `init` and `passwd`): from stdin when its flag is given, else
 * from the file `HECATE_NEW_PASSWORD_FILE` names, else (for `init`, which has no current
 * password) from `HECATE_PASSWORD_FILE`, else asked twice on the terminal. Files must pass the
 * private-file check (src/cli/private_file.ts). Checks the policy (length, and not guessable:
 * see src/access/password_policy.ts).
 *
 * @param io The process io.
 * @param stdin The shared stdin line reader.
 * @param fromStdin Whether the new password comes from stdin.
 * @param options `passwordFileFallback`: also read `HECATE_PASSWORD_FILE` (init only: for
 * `passwd` that file holds the current password).
 * @returns The new password.
 */
export async function newPassword(
  io: CliIo,
  stdin: StdinLines,
  fromStdin: boolean,
  options: { passwordFileFallback?: boolean } = {},
): Promise<string> {
  let pw: string;
  const file = io.env("HECATE_NEW_PASSWORD_FILE") ||
    (options.passwordFileFallback ? io.env("HECATE_PASSWORD_FILE") : undefined);
  if (fromStdin) {
    pw = await stdin.next("new password");
  } else if (file) {
    pw = await readPasswordFile(file);
  } else if (io.stdinIsTerminal) {
    pw = await nonEmpty(io.promptSecret("New master password:"));
    const again = await io.promptSecret("Repeat the new master password:");
    if (again !== pw) throw new HecateError("usage", "The two passwords differ");
  } else {
    throw new HecateError("no_credential", "No new password given and no terminal to ask on", {
      hint: "use --password-stdin or HECATE_PASSWORD_FILE (init), --new-password-stdin " +
        "(passwd), or HECATE_NEW_PASSWORD_FILE",
    });
  }
  await checkPasswordPolicy(pw);
  return pw;
}

/**
 * Gets a profile secret (e.g. the database password): stdin line, or a hidden prompt.
 *
 * @param io The process io.
 * @param stdin The shared stdin line reader.
 * @param fromStdin Whether `--secret-stdin` was given.
 * @param label The prompt label.
 * @returns The secret.
 */
export async function profileSecret(
  io: CliIo,
  stdin: StdinLines,
  fromStdin: boolean,
  label: string,
): Promise<string> {
  if (fromStdin) return await stdin.next("profile secret");
  if (io.stdinIsTerminal) return await nonEmpty(io.promptSecret(label));
  throw new HecateError(
    "no_credential",
    "No secret given for the profile and no terminal to ask on",
    {
      hint: "use --secret-stdin or --secret-ref env:NAME",
    },
  );
}

async function nonEmpty(p: Promise<string>): Promise<string> {
  const v = await p;
  if (v === "") throw new HecateError("usage", "An empty secret was entered");
  return v;
}

async function readPasswordFile(path: string): Promise<string> {
  const text = await readPrivateFile(path, "password file");
  const pw = text.replace(/\r?\n$/, "");
  if (pw === "") throw new HecateError("no_credential", `The password file "${path}" is empty`);
  return pw;
}
