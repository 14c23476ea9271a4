/**
 * The `pkcs11` benchmark: unlocking with a SoftHSM2 token (a PKCS#11 slot: load the module, log
 * in, one AES-GCM decryption on the token) against the master password (PBKDF2 at the calibrated
 * cost), in-process and as `hecate server list` processes, interleaved, as ratios. Needs Debian's
 * `softhsm2` (scripts/install_test_deps.sh); the token store is a scratch directory.
 *
 * @module
 */

import { UnlockedVault } from "../../src/vault/vault.ts";
import { parseVaultFile, type Pkcs11Slot } from "../../src/vault/format.ts";
import { unlockWithToken } from "../../src/api/pkcs11_open.ts";
import { measure, medianInterleaved, medianMs, report } from "./measure.ts";
import { vaultWith } from "./setup.ts";

const MODULE = "/usr/lib/softhsm/libsofthsm2.so";
const PIN = "bench-pin-2468";

/**
 * Runs the section.
 *
 * @param root A scratch directory.
 * @param password The master password.
 * @param hecateCmd The command line of `hecate --home HOME ARGS`.
 */
export async function benchPkcs11(
  root: string,
  password: string,
  hecateCmd: (home: string, ...args: string[]) => string[],
): Promise<void> {
  const dir = `${root}/softhsm`;
  await Deno.mkdir(`${dir}/tokens`, { recursive: true });
  const conf = `${dir}/softhsm2.conf`;
  await Deno.writeTextFile(conf, `directories.tokendir = ${dir}/tokens\nlog.level = ERROR\n`);
  Deno.env.set("SOFTHSM2_CONF", conf); // read by the module in this process
  const init = await new Deno.Command("softhsm2-util", {
    args: ["--init-token", "--free", "--label", "bench", "--pin", PIN, "--so-pin", "so-bench"],
    stdout: "null",
  }).output();
  if (!init.success) throw new Error("softhsm2-util --init-token failed");

  const home = `${root}/home-pkcs11`;
  const vault = await vaultWith(home, password, []);
  await vault.slots.addPkcs11({ module: MODULE, token: "bench", pin: PIN });
  const bytes = await Deno.readFile(`${home}/vault.hecate`);
  const slot = parseVaultFile(bytes).body.slots.find((s): s is Pkcs11Slot => s.kind === "pkcs11")!;

  const byPassword = await medianMs(9, () => UnlockedVault.unlock(bytes, password));
  const byToken = await medianMs(
    9,
    () => unlockWithToken(bytes, slot, { module: MODULE, pin: PIN }),
  );
  console.log(
    `in-process unlock: token ${byToken.toFixed(1)} ms, master password ` +
      `${byPassword.toFixed(1)} ms (${vault.keys.kdfIterations} PBKDF2 iterations), ratio ` +
      `${(byToken / byPassword).toFixed(2)}x (median of 9)`,
  );

  const pwFile = `${root}/pkcs11-pw`;
  await Deno.writeTextFile(pwFile, password, { mode: 0o600 });
  const runs = await medianInterleaved(7, {
    token: () =>
      measure(hecateCmd(home, "--pkcs11", MODULE, "--pin-stdin", "server", "list"), {
        env: { SOFTHSM2_CONF: conf },
        stdin: `${PIN}\n`,
      }),
    password: () =>
      measure(hecateCmd(home, "server", "list"), { env: { HECATE_PASSWORD_FILE: pwFile } }),
  });
  report(
    "hecate server list, token against master password (interleaved, median of 7)",
    runs.token,
    runs.password,
    "master password",
    "token",
  );
}
