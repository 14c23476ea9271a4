/**
 * A child process for tests/vault_store_test.ts: opens a vault through the library and writes to
 * it, so the parent can kill it at random moments or run many at once.
 *
 * Usage (password in the environment variable HECATE_TEST_PASSWORD, never in argv):
 *
 * ```text
 * deno run --allow-read --allow-write --allow-env --allow-sys vault_writer.ts HOME sequence [MAX]
 * deno run --allow-read --allow-write --allow-env --allow-sys vault_writer.ts HOME add PREFIX COUNT
 * ```
 *
 * `sequence`: finds the highest `p<N>` in the vault, then forever (or up to MAX profiles) adds
 * `p<N+1>` (host `h-<N+1>`, secret `s-<N+1>`) and then edits it to host `e-<N+1>`, secret
 * `t-<N+1>`. If the newest profile was left unedited by a killed writer, it is edited first. So
 * any consistent state is: profiles p1..pK, all edited except perhaps pK.
 *
 * `add`: adds PREFIX-1 .. PREFIX-COUNT and exits.
 *
 * Prints `ready` on stdout once the vault is unlocked, and `done` when it finishes.
 */

import { openVault } from "../../src/hecate.ts";

const [home, mode, ...rest] = Deno.args;
const password = Deno.env.get("HECATE_TEST_PASSWORD");
if (!home || !mode || password === undefined) {
  console.error("usage: vault_writer.ts HOME sequence [MAX] | HOME add PREFIX COUNT");
  Deno.exit(2);
}

const out = (line: string) => Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));

const vault = await openVault({ home, password });
out("ready");

if (mode === "sequence") {
  const max = Number(rest[0] ?? Infinity);
  let n = 0;
  for (const p of vault.profiles.list()) {
    const m = /^p(\d+)$/.exec(p.name);
    if (m) n = Math.max(n, Number(m[1]));
  }
  // A writer killed between the add and the edit left the newest profile unedited: finish it.
  if (vault.profiles.list().some((p) => p.name === `p${n}` && p.host === `h-${n}`)) {
    await vault.profiles.edit(`p${n}`, {
      host: `e-${n}`,
      secrets: { password: { value: `t-${n}` } },
    });
  }
  while (n < max) {
    n++;
    await vault.profiles.add({
      name: `p${n}`,
      engine: "postgres",
      host: `h-${n}`,
      user: "u",
      secrets: { password: { value: `s-${n}` } },
    });
    await vault.profiles.edit(`p${n}`, {
      host: `e-${n}`,
      secrets: { password: { value: `t-${n}` } },
    });
  }
} else if (mode === "add") {
  const [prefix, count] = rest;
  for (let i = 1; i <= Number(count); i++) {
    await vault.profiles.add({
      name: `${prefix}-${i}`,
      engine: "postgres",
      host: `host-${prefix}-${i}`,
      user: "u",
      secrets: { password: { value: `secret-${prefix}-${i}` } },
    });
  }
} else {
  console.error(`unknown mode ${mode}`);
  Deno.exit(2);
}
out("done");
