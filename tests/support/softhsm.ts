/**
 * A private SoftHSM2 token for the PKCS#11 tests (Debian's `softhsm2`, installed by
 * scripts/install_test_deps.sh): each test makes its own token directory and token with
 * `softhsm2-util`, and points the module at it through `SOFTHSM2_CONF`.
 */

import assert from "node:assert/strict";

/** SoftHSM2's PKCS#11 module on Debian. */
export const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";

/** Whether the module is installed (the tests that need it are skipped otherwise). */
export const hasSoftHsm = await Deno.stat(SOFTHSM_MODULE).then(() => true, () => false);

/**
 * Makes a token store in `dir` holding one token.
 *
 * @param dir A directory of the test (created if missing).
 * @param label The token's label.
 * @param pin Its user PIN.
 * @returns The environment that points the module at this store (`SOFTHSM2_CONF`).
 */
export async function softhsmToken(
  dir: string,
  label: string,
  pin: string,
): Promise<Record<string, string>> {
  await Deno.mkdir(`${dir}/tokens`, { recursive: true });
  const conf = `${dir}/softhsm2.conf`;
  await Deno.writeTextFile(
    conf,
    `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const env = { SOFTHSM2_CONF: conf };
  const out = await new Deno.Command("softhsm2-util", {
    args: ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-4321"],
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return env;
}
