/**
 * Helpers shared by the access-control tests (API keys, TOTP, lockout, rotate): a throwaway home,
 * error-code assertions, a vault with a few SQLite profiles, and running the real CLI.
 */

import assert from "node:assert/strict";
import { HecateError } from "../../src/errors.ts";
import { initVault, openVault, type Vault } from "../../src/hecate.ts";
import { HECATE_PERMISSIONS } from "../../scripts/permissions.ts";

/** A master password that passes the policy. */
export const PW = "access-test: violet kettle marathon";
/** The KDF floor: every unlock costs the real ~100 ms. */
export const ITER = 600_000;
/** Repository root. */
export const ROOT = new URL("../..", import.meta.url).pathname;

/** Runs `fn` with a fresh 0700 home directory, removed afterwards. */
export async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "hecate-access-test-" });
  await Deno.chmod(home, 0o700);
  try {
    await fn(home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

/** Asserts that `run` rejects with a HecateError of `code`; returns the error. */
export async function assertCode(
  run: () => Promise<unknown>,
  code: HecateError["code"],
  what: string = code,
): Promise<HecateError> {
  let caught: HecateError | undefined;
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof HecateError, `${what}: not a HecateError: ${e}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    caught = e;
    return true;
  });
  return caught!;
}

/**
 * Creates a vault with SQLite profiles named `names`, each holding a password secret
 * `secret-of-<name>` (SQLite ignores it; it stands for a real secret in the file).
 */
export async function vaultWith(home: string, names: string[]): Promise<Vault> {
  await initVault({ home, password: PW, kdfIterations: ITER });
  const vault = await openVault({ home, password: PW, lockout: "off" });
  for (const name of names) {
    // An empty file is a valid empty SQLite database (Hecate refuses a missing one).
    await Deno.writeFile(`${home}/${name}.db`, new Uint8Array(), { mode: 0o600 });
    await vault.profiles.add({
      name,
      engine: "sqlite",
      database: `${home}/${name}.db`,
      secrets: { password: { value: `secret-of-${name}` } },
    });
  }
  return vault;
}

/** Output of one CLI run. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link runHecate}. */
export interface RunHecateOptions {
  env?: Record<string, string>;
  stdin?: string;
}

/**
 * Runs `main.ts` as a child process with the project's permission set.
 *
 * @param args Arguments after the program name.
 * @param options Environment and stdin.
 */
export async function runHecate(args: string[], options: RunHecateOptions = {}): Promise<CliRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...HECATE_PERMISSIONS,
      `${ROOT}main.ts`,
      ...args,
    ],
    // The parent's environment minus any HECATE_ setting, so only what the test gives counts.
    env: { ...inherited(), NO_COLOR: "1", ...(options.env ?? {}) },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  if (options.stdin !== undefined) await w.write(new TextEncoder().encode(options.stdin));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function inherited(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) =>
      !k.startsWith("HECATE_") && k !== "RUST_BACKTRACE"
    ),
  );
}

/** Writes the master password to a 0600 file in `dir` and returns its path. */
export async function passwordFile(dir: string, password = PW): Promise<string> {
  const path = `${dir}/pw.txt`;
  await Deno.writeTextFile(path, password + "\n", { mode: 0o600 });
  return path;
}

/** Reads the audit trail as parsed lines. */
export async function auditLines(home: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(`${home}/audit.jsonl`);
  return text.split("\n").filter((l) => l).map((l) => JSON.parse(l));
}
