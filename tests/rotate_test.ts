/**
 * `rotate` interrupted by SIGKILL at random moments: the vault always opens with the master
 * password afterwards, every profile keeps its secret, and existing API keys still open exactly
 * their scope. Each surviving rotation really changed the keys.
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { toBase64Url } from "../src/vault/encoding.ts";
import { parseVaultFile } from "../src/vault/format.ts";
import { openScoped } from "../src/vault/scoped.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { PW, ROOT, vaultWith, withHome } from "./support/access.ts";

const CHILD = new URL("./support/rotate_child.ts", import.meta.url).pathname;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function spawnRotator(home: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", CHILD, home],
    cwd: ROOT,
    env: { HECATE_TEST_PASSWORD: PW, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let markReady: (v: boolean) => void = () => {};
  const ready = new Promise<boolean>((r) => (markReady = r));
  const done = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      text += dec.decode(chunk, { stream: true });
      if (text.includes("ready\n")) markReady(true);
    }
    markReady(false);
  })();
  const stderr = new Response(child.stderr).text();
  return { child, ready, rotations: () => text.split("rotated\n").length - 1, done, stderr };
}

function secretOf(value: Record<string, unknown>): string | undefined {
  return (value as { secrets?: { password?: { value?: string } } }).secrets?.password?.value;
}

Deno.test("rotate killed with SIGKILL at random moments always leaves a vault that opens with the password and the API keys", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing", "hr", "crm"]);
    const keyA = await vault.apiKeys.create({ name: "a", profiles: ["billing"], expires: null });
    const keyB = await vault.apiKeys.create({ name: "b", profiles: ["hr", "crm"], expires: null });
    const RUNS = 16;
    let rotations = 0, lastRecordKeys = "";
    // On a loaded machine rotations take longer: keep going (with a wider window) until some
    // kills have landed among completed rotations, within a bound.
    let run = 0;
    for (; run < RUNS || (rotations < 3 && run < 3 * RUNS); run++) {
      const r = spawnRotator(home);
      try {
        // (No await inside the message: it would wait for the child to exit.)
        if (!(await r.ready)) {
          assert.fail(`run ${run}: child did not open the vault: ${await r.stderr}`);
        }
        // A rotation takes ~300-500 ms in a fresh process (two PBKDF2 runs and a durable write):
        // land anywhere in the first few.
        await sleep(Math.floor(Math.random() * 1500 * (1 + Math.floor(run / RUNS))));
      } finally {
        try {
          r.child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      const status = await r.child.status;
      await r.done;
      assert.equal(status.signal, "SIGKILL", `run ${run}: ${await r.stderr}`);
      rotations += r.rotations();

      // The password opens it, with every profile and secret.
      const v = await openVault({ home, password: PW, lockout: "off" });
      assert.deepEqual(v.profiles.list().map((p) => p.name), ["billing", "crm", "hr"]);
      // Each API key opens exactly its scope, with the right secrets.
      const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
      for (const [key, want] of [[keyA, ["billing"]], [keyB, ["crm", "hr"]]] as const) {
        const scoped = await openScoped(file, key, { now: new Date() });
        const got = scoped.records().map((x) => x.value.name as string).sort();
        assert.deepEqual(got, want, `run ${run}`);
        for (const x of scoped.records()) {
          assert.equal(secretOf(x.value), `secret-of-${x.value.name}`);
        }
      }
      const recordKeys = parseVaultFile(file).body.records.map((x) => toBase64Url(x.key)).join();
      if (r.rotations() > 0) {
        assert.notEqual(recordKeys, lastRecordKeys, `run ${run}: keys unchanged`);
      }
      lastRecordKeys = recordKeys;
      const left = [];
      for await (const e of Deno.readDir(home)) {
        if (e.name.startsWith(".vault.hecate.tmp-")) left.push(e);
      }
      assert.ok(left.length <= 1, "at most the killed writer's temp file");
    }
    console.log(`  ${run} kills, ${rotations} rotations completed in between`);
    assert.ok(rotations >= 3, "the kills must land among real rotations");
  });
});
