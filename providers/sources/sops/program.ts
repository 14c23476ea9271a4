/**
 * The `sops` program, for SOPS files Hecate does not open in-process (YAML, dotenv, INI and
 * binary files; PGP, cloud KMS and Vault transit keys; regex rules, key groups). Runs
 * `sops decrypt --extract PATH FILE` with the key path and the file name in argv (locations,
 * never secrets); the value comes back on stdout.
 *
 * @module
 */

import { childEnv } from "../child_env.ts";
import { sourceError } from "../errors.ts";
import type { ParsedRef, SourceContext } from "../source.ts";
import { runCaptured } from "../../../src/run/spawn.ts";

/** What sops reads from the environment to find its keys. */
const SOPS_ENV = [
  "SOPS_AGE_KEY",
  "SOPS_AGE_KEY_FILE",
  "SOPS_AGE_KEY_CMD",
  "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
  "XDG_CONFIG_HOME",
  "GNUPGHOME",
  "SOPS_GPG_EXEC",
  "AWS_PROFILE",
  "AWS_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_CONFIG_FILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "GOOGLE_APPLICATION_CREDENTIALS",
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_CLIENT_SECRET",
  "VAULT_ADDR",
  "VAULT_TOKEN",
];

/** `a.b.0` as sops's `--extract` syntax: `["a"]["b"][0]`. */
export function extractPath(path: readonly string[]): string {
  return path.map((p) => /^(0|[1-9][0-9]{0,8})$/.test(p) ? `[${p}]` : `[${JSON.stringify(p)}]`)
    .join("");
}

/**
 * Decrypts one value with the `sops` program.
 *
 * @param ref The parsed reference (`file`, `path` parts).
 * @param ctx The source context.
 * @param title The source title for errors.
 * @param why Why in-process decryption did not apply (shown when sops is absent).
 * @returns The value as sops prints it.
 * @throws {HecateError} `secret_unresolved` (exit 18): sops not installed, or its failure.
 */
export async function sopsProgram(
  ref: ParsedRef,
  ctx: SourceContext,
  title: string,
  why: string,
): Promise<string> {
  const path = ref.parts.path!.split(".");
  let out: Deno.CommandOutput;
  try {
    out = await runCaptured(
      "sops",
      ["decrypt", "--extract", extractPath(path), "--", ref.parts.file!],
      { env: childEnv(ctx, SOPS_ENV), clearEnv: true, stderr: "null", signal: ctx.signal },
    );
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    throw sourceError(
      title,
      ref.raw,
      "unreachable",
      "install sops (https://github.com/getsops/sops/releases), or encrypt the file as JSON for age recipients",
      `the sops program is not on PATH; needed because ${why}`,
    );
  }
  if (!out.success) {
    throw sourceError(
      title,
      ref.raw,
      "failed",
      "run `sops decrypt` on the file yourself",
      `sops exit ${out.code}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}
