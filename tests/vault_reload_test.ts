/**
 * A writer's reload under the vault lock (`UnlockedVault.reloadCurrent`): when the file on disk
 * has the size and the header and seal lines of the one the session verified, the session's own
 * verified copy is what it writes from, without reading the rest again. These tests damage the
 * file on disk between the unlock and the write, as an attacker with write access to the vault
 * file would, and check that nothing damaged is ever written and no other writer's change is lost.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { HecateError } from "../src/errors.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { openVault } from "../src/api/open.ts";
import { passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";

const sqlite = (home: string, name: string) => ({
  name,
  engine: "sqlite" as const,
  database: `${home}/${name}.db`,
  secrets: { password: { value: `secret-of-${name}` } },
});

/** Opens every record of a file with the password (each line against its table hash). */
async function allRecordsOpen(file: Uint8Array<ArrayBuffer>): Promise<string[]> {
  const state = await UnlockedVault.unlock(file, PW);
  const names: string[] = [];
  for (const { id, summary } of state.summaries()) {
    await state.record(id);
    names.push(String(summary.name));
  }
  return names.sort();
}

/** The file with one byte of its last record line changed (size and header kept). */
function damagedTail(file: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const bad = file.slice();
  const at = bad.length - 20; // inside the last record line's base64url data
  bad[at] = bad[at] === 0x41 ? 0x42 : 0x41;
  return bad;
}

Deno.test("attack: a record line damaged on disk between unlock and write (header kept) is never written; the session writes its verified copy", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta", "gamma"]);
    const path = `${home}/${VAULT_FILE}`;
    const genuine = await Deno.readFile(path);
    const vault = await openVault({ home, password: PW, lockout: "off" });
    // The attacker edits the file after this session verified it, before its write.
    const bad = damagedTail(genuine);
    await Deno.writeFile(path, bad);
    await assert.rejects(
      UnlockedVault.unlock(bad, PW).then(async (s) => {
        for (const { id } of s.summaries()) await s.record(id);
      }),
      (e) => e instanceof HecateError && e.code === "vault_integrity",
      "the damage is real: a reader of the damaged file refuses the record",
    );
    await Deno.writeFile(`${home}/delta.db`, new Uint8Array(), { mode: 0o600 });
    await vault.profiles.add(sqlite(home, "delta"));
    const written = await Deno.readFile(path);
    assert.deepEqual(await allRecordsOpen(written), ["alpha", "beta", "delta", "gamma"]);
    // Every record line of the genuine file, none of the damaged one, went into the new file.
    const lastLine = (f: Uint8Array) => {
      const end = f.length - 1;
      return f.subarray(f.lastIndexOf(0x0a, end - 1) + 1, end);
    };
    const contains = (hay: Uint8Array, needle: Uint8Array) =>
      Buffer.from(hay).indexOf(Buffer.from(needle)) >= 0;
    assert.ok(contains(written, lastLine(genuine)));
    assert.ok(!contains(written, lastLine(bad)));
    // Through the CLI: every profile readable with the password.
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home), HECATE_LOCKOUT: "off" };
    for (const name of ["alpha", "beta", "gamma", "delta"]) {
      const r = await runHecate(["--home", home, "env", name], { env });
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    }
  });
});

Deno.test("attack: a record line damaged on disk with another size (header kept) is refused at the write with vault_integrity, the file left as it was", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha", "beta"]);
    const path = `${home}/${VAULT_FILE}`;
    const genuine = await Deno.readFile(path);
    const vault = await openVault({ home, password: PW, lockout: "off" });
    // One byte inserted into the last record line: the size differs, so the writer reads the
    // whole file again, and its record lines fail the header's hash before anything is written.
    const at = genuine.length - 20;
    const bad = new Uint8Array(genuine.length + 1);
    bad.set(genuine.subarray(0, at));
    bad[at] = 0x41;
    bad.set(genuine.subarray(at), at + 1);
    await Deno.writeFile(path, bad);
    await Deno.writeFile(`${home}/delta.db`, new Uint8Array(), { mode: 0o600 });
    await assert.rejects(
      vault.profiles.add(sqlite(home, "delta")),
      (e) => e instanceof HecateError && e.code === "vault_integrity",
    );
    assert.deepEqual(await Deno.readFile(path), bad, "the vault is left as it was");
  });
});

Deno.test("a change written by another session between unlock and write is kept: the writer reloads the new file, nothing is lost", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["alpha"]);
    const first = await openVault({ home, password: PW, lockout: "off" });
    const second = await openVault({ home, password: PW, lockout: "off" });
    for (const name of ["beta", "gamma"]) {
      await Deno.writeFile(`${home}/${name}.db`, new Uint8Array(), { mode: 0o600 });
    }
    await second.profiles.add(sqlite(home, "beta"));
    await first.profiles.add(sqlite(home, "gamma"));
    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    assert.deepEqual(await allRecordsOpen(file), ["alpha", "beta", "gamma"]);
    // And a file put back from an older generation (another header) is read whole again.
    const older = file; // generation with alpha, beta, gamma
    await Deno.writeFile(`${home}/delta.db`, new Uint8Array(), { mode: 0o600 });
    await second.profiles.add(sqlite(home, "delta"));
    const third = await openVault({ home, password: PW, lockout: "off" });
    await Deno.writeFile(`${home}/${VAULT_FILE}`, older);
    await Deno.writeFile(`${home}/eps.db`, new Uint8Array(), { mode: 0o600 });
    await third.profiles.add(sqlite(home, "eps"));
    assert.deepEqual(
      await allRecordsOpen(await Deno.readFile(`${home}/${VAULT_FILE}`)),
      ["alpha", "beta", "eps", "gamma"],
      "the writer used the file on disk, not the one it had verified",
    );
  });
});

Deno.test("writes that carry records in runs and the index as text (add, remove from the middle, edit, two adds in one session) leave every record line matching its table entry", async () => {
  await withHome(async (home) => {
    const names = Array.from({ length: 12 }, (_, i) => `p${String(i).padStart(2, "0")}`);
    const vault = await vaultWith(home, names);
    const path = `${home}/${VAULT_FILE}`;
    const expect = new Set(names);
    const check = async (what: string) => {
      // A fresh session each time: its records are carried from the file as read.
      assert.deepEqual(await allRecordsOpen(await Deno.readFile(path)), [...expect].sort(), what);
    };
    const fresh = () => openVault({ home, password: PW, lockout: "off" });
    await (await fresh()).profiles.remove("p05");
    expect.delete("p05");
    await check("a record removed from the middle");
    await (await fresh()).profiles.edit("p07", { secrets: { password: { value: "changed-p07" } } });
    await check("a record in the middle changed");
    await Deno.writeFile(`${home}/zz.db`, new Uint8Array(), { mode: 0o600 });
    await (await fresh()).profiles.add(sqlite(home, "zz"));
    expect.add("zz");
    await check("a record added at the end");
    await (await fresh()).profiles.remove("p00");
    expect.delete("p00");
    await check("the first record removed");
    // One session adding twice (its index carried forward as text both times), then listing.
    const twice = await fresh();
    for (const name of ["zz1", "zz2"]) {
      await Deno.writeFile(`${home}/${name}.db`, new Uint8Array(), { mode: 0o600 });
      await twice.profiles.add(sqlite(home, name));
      expect.add(name);
      await check(`${name} added by a session that wrote before`);
    }
    assert.deepEqual(twice.profiles.list().map((p) => p.name).sort(), [...expect].sort());
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home), HECATE_LOCKOUT: "off" };
    const listed = await runHecate(["--home", home, "server", "list"], { env });
    assert.equal(listed.code, 0, listed.stderr);
    for (const name of expect) assert.match(listed.stdout, new RegExp(`\\b${name}\\b`));
    await vault.close();
  });
});
