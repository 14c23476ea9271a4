/**
 * `credential_process` from a shared-config profile: the command runs through the shell, as the
 * AWS CLI runs it, and prints `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken"?,
 * "Expiration"?}` on stdout. Its stderr goes to ours (it may ask for a touch or a PIN).
 *
 * @module
 */

import { awsError } from "./fail.ts";
import { type AwsCredentials, credentialsFromJson } from "./net.ts";
import { runCaptured } from "../../../src/run/spawn.ts";

/**
 * Runs a profile's `credential_process`.
 *
 * @param profile The profile name, for messages.
 * @param command The command line from the config file.
 * @param signal Stops the process when aborted.
 * @returns The credentials.
 */
export async function processCredentials(
  profile: string,
  command: string,
  signal: AbortSignal | undefined,
): Promise<AwsCredentials> {
  const what = `AWS credential_process of profile "${profile}"`;
  const hint = "run the command by hand to see what it prints";
  const windows = Deno.build.os === "windows";
  let out: Deno.CommandOutput;
  try {
    out = await runCaptured(
      windows ? "cmd.exe" : "/bin/sh",
      windows ? ["/d", "/s", "/c", command] : ["-c", command],
      { stderr: "inherit", ...(signal ? { signal } : {}) },
    );
  } catch {
    throw awsError(what, signal?.aborted ? "timed out" : "failed to start", hint);
  }
  if (!out.success) throw awsError(what, "failed", hint, `exit ${out.code}`);
  const text = new TextDecoder().decode(out.stdout);
  let version: unknown;
  try {
    version = JSON.parse(text)?.Version;
  } catch {
    throw awsError(what, "malformed answer", hint, "stdout is not JSON");
  }
  if (version !== 1) throw awsError(what, "malformed answer", hint, "Version must be 1");
  return credentialsFromJson(what, text, `profile "${profile}" credential_process`, "SessionToken");
}
