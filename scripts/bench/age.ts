/**
 * `deno task bench age`: opening the vault with a teammate's age identity (`--identity FILE`)
 * against the master password, in process (the unwrap alone) and as a whole `hecate server list`
 * process, run in turns (scripts/bench/measure.ts). The password is at the KDF floor, the cost every
 * vault has at least; the age path costs one X25519 and no KDF.
 *
 * @module
 */

import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { initVault, openVault } from "../../src/hecate.ts";
import { MIN_KDF_ITERATIONS } from "../../src/kdf.ts";
import { parseAgeIdentities } from "../../src/vault/age_slot.ts";
import { UnlockedVault } from "../../src/vault/vault.ts";
import { measure, medianInterleaved, report } from "./measure.ts";

/**
 * Runs the section.
 *
 * @param root A scratch directory.
 * @param password The master password to use.
 * @param hecateCmd Builds a `hecate --home HOME ARGS` command line.
 */
export async function benchAge(
  root: string,
  password: string,
  hecateCmd: (home: string, ...args: string[]) => string[],
): Promise<void> {
  const home = `${root}/home-age`;
  await initVault({ home, password, kdfIterations: MIN_KDF_ITERATIONS });
  const identity = await generateX25519Identity();
  const idFile = `${root}/age-identity.txt`;
  await Deno.writeTextFile(idFile, identity + "\n", { mode: 0o600 });
  const vault = await openVault({ home, password, lockout: "off" });
  await vault.slots.addAge(await identityToRecipient(identity), { label: "bench" });
  const file = await Deno.readFile(`${home}/vault.hecate`);
  const ids = await parseAgeIdentities(identity);

  const timed = async (fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    await fn();
    return { wallS: (performance.now() - t0) / 1000, peakMiB: 0 };
  };
  const inProcess = await medianInterleaved(11, {
    age: () => timed(() => UnlockedVault.unlockWithAge(file, ids)),
    password: () => timed(() => UnlockedVault.unlock(file, password)),
  });
  report(
    `unlock in process at ${MIN_KDF_ITERATIONS} PBKDF2 iterations (interleaved, median of 11)`,
    inProcess.age,
    inProcess.password,
    "master password",
    "age identity",
  );

  const pwFile = `${root}/age-bench-password`;
  await Deno.writeTextFile(pwFile, password, { mode: 0o600 });
  const cli = await medianInterleaved(7, {
    age: () => measure(hecateCmd(home, "--identity", idFile, "server", "list")),
    password: () =>
      measure(hecateCmd(home, "server", "list"), { env: { HECATE_PASSWORD_FILE: pwFile } }),
  });
  report(
    "hecate server list, whole process (interleaved, median of 7)",
    cli.age,
    cli.password,
    "master password",
    "--identity",
  );
}
