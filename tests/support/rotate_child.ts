/**
 * A child process for tests/rotate_test.ts: opens the vault with the master password (from the
 * environment variable HECATE_TEST_PASSWORD, never argv) and rotates it over and over, so the
 * parent can kill it with SIGKILL at random moments.
 *
 * ```text
 * deno run --allow-read --allow-write --allow-env --allow-sys rotate_child.ts HOME
 * ```
 *
 * Prints `ready` once the vault is open and `rotated` after each rotation.
 */

import { openVault } from "../../src/hecate.ts";

const [home] = Deno.args;
const password = Deno.env.get("HECATE_TEST_PASSWORD");
if (!home || password === undefined) {
  console.error("usage: rotate_child.ts HOME (password in HECATE_TEST_PASSWORD)");
  Deno.exit(2);
}
const out = (line: string) => Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
const vault = await openVault({ home, password, lockout: "off" });
out("ready");
for (;;) {
  await vault.keys.rotate(password);
  out("rotated");
}
