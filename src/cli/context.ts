/**
 * What every command handler gets: the process io, the shared stdin reader, and the global
 * options (`--home`, `--password-stdin`, `--api-key-file`, `--identity`, `--pkcs11`, `--totp`).
 *
 * @module
 */

import { policyAuditOptions } from "../policy/overrides.ts";
import { CoalescingAuditSink } from "../audit/coalesce.ts";
import { FileAuditLog } from "../audit/log.ts";
import { HecateError } from "../errors.ts";
import { LOG_LEVELS, type LogLevel, parseLogLevel, setLogLevel } from "../log.ts";
import {
  openVault,
  type OpenVaultOptions,
  type Pkcs11UnlockOptions,
  type Vault,
} from "../hecate.ts";
import { openVaultForListing } from "../api/open.ts";
import { resolveHome } from "../vault/home.ts";
import type { CliIo } from "./io.ts";
import { readPrivateFile } from "./private_file.ts";
import { masterPassword, StdinLines, tokenPin } from "./secrets.ts";

/** Options accepted before or after any subcommand. */
export interface GlobalOptions {
  home?: string | undefined;
  passwordStdin?: boolean | undefined;
  /** A file holding an API key (instead of the master password). */
  apiKeyFile?: string | undefined;
  /** An age identity file (instead of the master password). */
  identity?: string | undefined;
  /** A one-time code (TOTP or recovery code). */
  totp?: string | undefined;
  /** Diagnostic log level (`--log-level`, else `HECATE_LOG`). */
  logLevel?: LogLevel | undefined;
  /** A PKCS#11 module to unlock with a token slot (else `HECATE_PKCS11_MODULE`). */
  pkcs11?: string | undefined;
  /** The token's label (else `HECATE_PKCS11_TOKEN`, else the vault's only token slot). */
  pkcs11Token?: string | undefined;
  /** Read the token PIN from standard input (the line after the master password's, if any). */
  pinStdin?: boolean | undefined;
}

/**
 * Turns diagnostic logging on from `--log-level` or, without it, `HECATE_LOG`.
 *
 * @param ctx The invocation context (its globals parsed).
 * @throws {HecateError} `usage` when `HECATE_LOG` is not a level.
 */
export function configureLogging(ctx: CliContext): void {
  const env = ctx.io.env("HECATE_LOG");
  let level = ctx.globals.logLevel;
  if (level === undefined && env !== undefined && env !== "") {
    level = parseLogLevel(env);
    if (level === undefined) {
      throw new HecateError("usage", `HECATE_LOG must be one of ${LOG_LEVELS.join(", ")}`);
    }
  }
  setLogLevel(level);
}

function nonBlank(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
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
   * The API key from `--api-key-file` or `HECATE_API_KEY`, if any. The file must be a regular
   * file of this user that no one else can read (./private_file.ts).
   *
   * @returns The key text, or undefined.
   */
  async apiKey(): Promise<string | undefined> {
    const file = this.globals.apiKeyFile;
    if (file !== undefined) return (await readPrivateFile(file, "API key file")).trim();
    const env = this.io.env("HECATE_API_KEY");
    return env === undefined || env.trim() === "" ? undefined : env.trim();
  }

  /** The age identity file named by `--identity` or `HECATE_IDENTITY`, if any. */
  identityPath(): string | undefined {
    const env = this.io.env("HECATE_IDENTITY");
    return this.globals.identity ?? (env === undefined || env.trim() === "" ? undefined : env);
  }

  /**
   * The text of the age identity file, if one is named. The file must be a regular file of this
   * user that no one else can read (./private_file.ts), as `age-keygen -o` writes it.
   *
   * @returns The file's text, or undefined.
   */
  async identity(): Promise<string | undefined> {
    const path = this.identityPath();
    return path === undefined ? undefined : await readPrivateFile(path, "age identity file");
  }

  /**
   * Supplies a one-time code when one is required: `--totp`, `HECATE_TOTP`, else a prompt on a
   * terminal, else none.
   *
   * @param what What the code is for.
   * @returns The code, or undefined.
   */
  async code(what: string): Promise<string | undefined> {
    const given = this.globals.totp ?? this.io.env("HECATE_TOTP");
    if (given !== undefined && given !== "") return given;
    if (this.io.stdinIsTerminal) return await this.io.promptSecret(`One-time code for ${what}:`);
    return undefined;
  }

  /**
   * The token to unlock with, when `--pkcs11` or `HECATE_PKCS11_MODULE` names a module.
   *
   * @returns Module path and token label (if given), or undefined.
   */
  pkcs11(): { module: string; token: string | undefined } | undefined {
    const module = this.globals.pkcs11 ?? nonBlank(this.io.env("HECATE_PKCS11_MODULE"));
    if (module === undefined) return undefined;
    return {
      module,
      token: this.globals.pkcs11Token ?? nonBlank(this.io.env("HECATE_PKCS11_TOKEN")),
    };
  }

  /**
   * Offers an operation to the unlock agent (src/agent/) unless the command line chose a
   * credential itself (an API key, a token, or `--password-stdin`).
   *
   * @param ask Runs the operation through the agent of a home; false when there is none.
   * @returns What `ask` returned, or false when the agent is not to be used.
   */
  async viaAgent(ask: (home: string) => Promise<boolean>): Promise<boolean> {
    const apiKey = this.globals.apiKeyFile ?? this.io.env("HECATE_API_KEY");
    if ((apiKey !== undefined && apiKey.trim() !== "") || this.globals.passwordStdin) return false;
    if (this.pkcs11() !== undefined) return false; // the token's own unlock, not the agent
    if (this.identityPath() !== undefined) return false; // the teammate's own key, not the agent
    const home = resolveHome({ home: this.globals.home, env: (n) => this.io.env(n) });
    return await ask(home.startsWith("/") ? home : `${Deno.cwd()}/${home}`);
  }

  /**
   * Like {@link viaAgent}, for an operation whose answer is a value.
   *
   * @param ask Asks the agent of a home; undefined when there is none.
   * @returns The answer, or undefined when there is no agent or it is not to be used.
   */
  async fromAgent(ask: (home: string) => Promise<unknown>): Promise<unknown> {
    let answer: unknown;
    await this.viaAgent(async (home) => {
      answer = await ask(home);
      return answer !== undefined;
    });
    return answer;
  }

  /**
   * A one-time code given on the command line or in the environment, for a profile that
   * requires one when the agent connects it (the agent cannot ask on this terminal).
   *
   * @returns `{ totp }` when one was given, else an empty object.
   */
  profileCode(): { totp?: string } {
    const given = this.globals.totp ?? this.io.env("HECATE_TOTP");
    return given !== undefined && given !== "" ? { totp: given } : {};
  }

  /**
   * Opens the vault with the API key when one is given (`HECATE_API_KEY`, `--api-key-file`),
   * else with the age identity file when one is named (`--identity`, `HECATE_IDENTITY`), else
   * with a token when a PKCS#11 module is named (`--pkcs11`, `HECATE_PKCS11_MODULE`), else with
   * the master password from the configured source.
   *
   * @returns The open vault.
   * @throws {HecateError} `usage` when both an API key and an identity, or an identity and a
   * token, are given.
   */
  async unlock(): Promise<Vault> {
    return await this.#unlockWith(openVault);
  }

  /**
   * As {@link unlock}, for `server list`: with a root-key credential only the header, record
   * table and index line of the vault file are read (`openVaultForListing`); the vault returned
   * lists profiles and reads the policy, and opens no record.
   *
   * @returns The open vault, for listing only.
   */
  async unlockForListing(): Promise<Vault> {
    return await this.#unlockWith(openVaultForListing);
  }

  async #unlockWith(open: (options: OpenVaultOptions) => Promise<Vault>): Promise<Vault> {
    const apiKey = await this.apiKey();
    const totp = (what: string) => this.code(what);
    if (apiKey !== undefined && this.identityPath() !== undefined) {
      throw new HecateError("usage", "Give either an API key or an age identity, not both");
    }
    if (apiKey !== undefined) return await open({ home: this.globals.home, apiKey, totp });
    return await open({ home: this.globals.home, ...(await this.fullCredential()), totp });
  }

  /**
   * The credential that opens the whole vault (everything but an API key), from the command line
   * or its sources: the age identity file's text when one is named, else a token with its PIN when
   * a PKCS#11 module is named, else the master password. `unlock` and the unlock agent's start
   * (src/cli/commands/agent.ts) both take it from here.
   *
   * @returns One of `identity`, `pkcs11`, `password`, as `openVault` takes it.
   * @throws {HecateError} `usage` when both an identity and a token are given; the errors of
   * reading the identity file, the PIN or the password.
   */
  async fullCredential(): Promise<
    { identity: string } | { pkcs11: Pkcs11UnlockOptions } | { password: string }
  > {
    const token = this.pkcs11();
    if (token !== undefined && this.identityPath() !== undefined) {
      throw new HecateError("usage", "Give either an age identity or a token, not both");
    }
    const identity = await this.identity();
    if (identity !== undefined) return { identity };
    if (token !== undefined) {
      const pin = await tokenPin(this.io, this.stdin, this.globals.pinStdin === true, token.token);
      return { pkcs11: { ...token, pin } };
    }
    return { password: await masterPassword(this.io, this.stdin, this.globals) };
  }

  /**
   * Like {@link unlock}, for a command whose next audited step releases one profile (`query`):
   * with an API key, the unlock record is held and written in one flush with the next record,
   * the `profile.read` that comes before the secret is used (src/audit/coalesce.ts). Call
   * `flush` when the command ends: it writes the held record if nothing followed it.
   *
   * @returns The open vault and the flush.
   */
  async unlockForRelease(): Promise<{ vault: Vault; flush: () => Promise<void> }> {
    const apiKey = await this.apiKey();
    if (apiKey === undefined) return { vault: await this.unlock(), flush: () => Promise.resolve() };
    const home = this.globals.home;
    const dir = resolveHome({ home });
    const audit = new CoalescingAuditSink(new FileAuditLog(dir, await policyAuditOptions(dir)));
    const totp = (what: string) => this.code(what);
    try {
      const vault = await openVault({ home, apiKey, totp, audit });
      return { vault, flush: () => audit.flush() };
    } catch (e) {
      await audit.flush().catch(() => {}); // the error that stopped the unlock is the one to report
      throw e;
    }
  }

  /**
   * Opens the vault with the master password (for commands that need it again, e.g. `rotate`).
   *
   * @returns The open vault and the password.
   * @throws {HecateError} `no_credential` when an API key or an age identity was given instead.
   */
  async unlockWithPassword(): Promise<{ vault: Vault; password: string }> {
    if (this.identityPath() !== undefined) {
      throw new HecateError(
        "no_credential",
        "This command needs the master password, not an age identity",
        { hint: "run it without --identity / HECATE_IDENTITY" },
      );
    }
    if (this.globals.apiKeyFile !== undefined) {
      throw new HecateError(
        "no_credential",
        "This command needs the master password, not an API key",
        {
          hint: "run it without --api-key-file",
        },
      );
    }
    const password = await masterPassword(this.io, this.stdin, this.globals);
    const totp = (what: string) => this.code(what);
    return { vault: await openVault({ home: this.globals.home, password, totp }), password };
  }
}
