/**
 * Age slots (a teammate's age identity opens the vault): interoperability with the `age` program
 * in both directions, `--identity` round trip with keys made by `age-keygen`, and the attacks: a
 * wrong identity, an identity file others can read, a slot moved to another vault, a teammate
 * doing what only the master password may, and a removed teammate after `rotate`, with the
 * current file and with an old copy put back (the rollback gate).
 */

import assert from "node:assert/strict";
import { totpCode } from "../src/access/totp.ts";
import { openVault } from "../src/hecate.ts";
import { checkAgeRecipient, openAgeSlot, sealAgeSlot } from "../src/vault/age_slot.ts";
import { fromBase64Url, toBase64Url } from "../src/vault/encoding.ts";
import { type AgeSlot, parseVaultFile } from "../src/vault/format.ts";
import { associatedDataV2 } from "../src/vault/keyring.ts";
import { AuthenticationFailure, open, randomBytes, seal } from "../src/vault/primitives.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import {
  assertCode,
  auditLines,
  passwordFile,
  PW,
  runHecate,
  vaultWith,
  withHome,
} from "./support/access.ts";

const dec = new TextDecoder();

/** Runs a program to completion; fails the test on a non-zero exit. */
async function run(cmd: string, args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return out.stdout;
}

/** A key pair made by `age-keygen` in `dir` (file mode 0600, as age-keygen -o writes it). */
async function keygen(dir: string, name: string): Promise<{ file: string; recipient: string }> {
  const file = `${dir}/${name}.txt`;
  await run("age-keygen", ["-o", file]);
  const recipient = dec.decode(await run("age-keygen", ["-y", file])).trim();
  return { file, recipient };
}

const aad = (vaultId: Uint8Array, slotId: Uint8Array) =>
  associatedDataV2("age-slot", vaultId, slotId);

Deno.test("interop: a slot key the age program encrypted opens through the library's code path, and the reverse", async () => {
  await withHome(async (dir) => {
    const { file, recipient } = await keygen(dir, "alice");
    const identity = (await Deno.readTextFile(file)).split("\n").find((l) =>
      l.startsWith("AGE-SECRET-KEY-1")
    )!;
    const vaultId = randomBytes(16), slotId = randomBytes(8), root = randomBytes(32);

    // age program -> library: `age -r` encrypts the slot key; openAgeSlot recovers the root key.
    const slotKey = randomBytes(32);
    const ageFile = await run("age", ["-r", recipient], slotKey);
    const fromAge: AgeSlot = {
      id: slotId,
      kind: "age",
      recipient,
      age: new Uint8Array(ageFile),
      wrapped: await seal(slotKey, root, aad(vaultId, slotId)),
    };
    assert.deepEqual(await openAgeSlot(fromAge, identity, vaultId), root);

    // library -> age program: sealAgeSlot's age file decrypts with `age -d -i`, and its
    // plaintext is the key the root key is sealed under (docs/FORMAT.md, "Age slot").
    const slot = await sealAgeSlot(root, recipient, vaultId, slotId);
    const key = await run("age", ["-d", "-i", file], slot.age);
    assert.equal(key.length, 32);
    assert.deepEqual(await open(new Uint8Array(key), slot.wrapped, aad(vaultId, slotId)), root);

    // The binding: the same slot under another vault id or slot id opens nothing.
    await assert.rejects(() => openAgeSlot(slot, identity, randomBytes(16)), AuthenticationFailure);
    await assert.rejects(
      () => openAgeSlot({ ...slot, id: randomBytes(8) }, identity, vaultId),
      AuthenticationFailure,
    );
  });
});

Deno.test("recipients: only X25519 age1... with a valid checksum", async () => {
  const good = "age1xp23qed8kysxpk67rvfhqgcnu5dxq5ejh9jkguve9ref2qyee38s8klj59";
  assert.equal(await checkAgeRecipient(` ${good}\n`), good);
  for (
    const bad of [
      good.slice(0, -1) + (good.endsWith("9") ? "8" : "9"), // checksum
      good.toUpperCase(),
      "age1",
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI",
      "AGE-SECRET-KEY-1QQQQ",
    ]
  ) {
    await assert.rejects(
      () => checkAgeRecipient(bad),
      (e: Error) => (e as { code?: string }).code === "usage",
    );
  }
});

Deno.test("CLI: slot add age, then --identity (and HECATE_IDENTITY) opens the vault; slot list shows it; all audited", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing", "hr"]);
    const dir = await Deno.makeTempDir({ dir: home, prefix: "keys-" });
    const alice = await keygen(dir, "alice");
    const pwEnv = { HECATE_PASSWORD_FILE: await passwordFile(dir) };
    const add = await runHecate(
      ["--home", home, "slot", "add", "age", alice.recipient, "--label", "alice"],
      { env: pwEnv },
    );
    assert.equal(add.code, 0, add.stderr);
    // The same recipient again: exit 10; not an X25519 recipient: exit 2; the file unchanged.
    const afterAdd = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const again = await runHecate(["--home", home, "slot", "add", "age", alice.recipient], {
      env: pwEnv,
    });
    assert.equal(again.code, 10, again.stderr);
    const bad = await runHecate(["--home", home, "slot", "add", "age", "age1pq1nope"], {
      env: pwEnv,
    });
    assert.equal(bad.code, 2, bad.stderr);
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), afterAdd);

    const listed = await runHecate(["--home", home, "--identity", alice.file, "server", "list"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /billing/);
    assert.match(listed.stdout, /hr/);
    // The fast query line (src/cli/cron_path.ts) takes --identity too.
    const query = await runHecate([
      "--home",
      home,
      "--identity",
      alice.file,
      "query",
      "billing",
      "select 6 * 7 as answer",
      "--format",
      "csv",
    ]);
    assert.equal(query.code, 0, query.stderr);
    assert.match(query.stdout, /^answer\r?\n42\r?\n$/);
    const viaEnv = await runHecate(["--home", home, "slot", "list", "--json"], {
      env: { HECATE_IDENTITY: alice.file },
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const slots = JSON.parse(viaEnv.stdout) as Record<string, unknown>[];
    assert.deepEqual(slots.map((s) => s.kind), ["password", "age"]);
    const age = slots[1]!;
    assert.equal(age.label, "alice");
    assert.equal(age.detail, alice.recipient);
    assert.equal(typeof age.created, "string");
    assert.equal(typeof age.lastUsed, "string");
    // The teammate reads a secret through the library with the same file.
    const vault = await openVault({ home, identity: await Deno.readTextFile(alice.file) });
    assert.deepEqual(vault.actor, { kind: "age", id: age.id, name: "alice" });
    assert.deepEqual(vault.profiles.list().map((p) => p.name).sort(), ["billing", "hr"]);

    const lines = await auditLines(home);
    const added = lines.find((l) => l.event === "slot.add")!;
    assert.equal(added.outcome, "ok");
    assert.deepEqual(added.detail, {
      kind: "age",
      label: "alice",
      recipient: alice.recipient,
      slot_id: age.id,
    });
    const unlocks = lines.filter((l) =>
      l.event === "unlock" && (l.actor as { kind: string }).kind === "age"
    );
    assert.ok(unlocks.length >= 3);
    assert.ok(unlocks.every((l) => l.outcome === "ok"));
    assert.deepEqual(unlocks[0]!.actor, { kind: "age", id: age.id, name: "alice" });
    // A program run with the teammate's credentials does not inherit the identity's path.
    const ran = await runHecate(["--home", home, "run", "billing", "--", "env"], {
      env: { HECATE_IDENTITY: alice.file },
    });
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout, /^HECATE_PROFILE=billing$/m);
    assert.ok(!ran.stdout.includes("HECATE_IDENTITY") && !ran.stdout.includes(alice.file));
    // No secret key material anywhere in the trail.
    const identityLine = (await Deno.readTextFile(alice.file)).match(/AGE-SECRET-KEY-1\S+/)![0];
    assert.ok(!JSON.stringify(lines).includes(identityLine));
  });
});

Deno.test("attack: a wrong identity is refused with exit 3 (counted toward lockout, exit 13), audited, vault unchanged", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing"]);
    const dir = await Deno.makeTempDir({ dir: home, prefix: "keys-" });
    const alice = await keygen(dir, "alice");
    const mallory = await keygen(dir, "mallory");
    const env = { HECATE_PASSWORD_FILE: await passwordFile(dir) };
    assert.equal(
      (await runHecate(["--home", home, "slot", "add", "age", alice.recipient], { env })).code,
      0,
    );
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const lock = { HECATE_LOCKOUT: "2/10m" };
    for (let i = 0; i < 2; i++) {
      const r = await runHecate(["--home", home, "--identity", mallory.file, "server", "list"], {
        env: lock,
      });
      assert.equal(r.code, 3, r.stderr);
      assert.equal(
        r.stderr.trim().split("\n")[0],
        "hecate: error: No age slot of this vault is for this identity",
      );
    }
    const locked = await runHecate(["--home", home, "--identity", mallory.file, "server", "list"], {
      env: lock,
    });
    assert.equal(locked.code, 13, locked.stderr);
    // A locked-out stranger does not lock the teammate out.
    const ok = await runHecate(["--home", home, "--identity", alice.file, "server", "list"], {
      env: lock,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
    const fails = (await auditLines(home)).filter((l) =>
      l.event === "unlock" && l.outcome === "fail"
    );
    assert.deepEqual(fails.map((l) => l.reason), ["auth_failed", "auth_failed", "locked_out"]);
  });
});

Deno.test("attack: an identity file with mode 0644 is refused (exit 11) before it is read; a non-identity file is exit 2", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing"]);
    const dir = await Deno.makeTempDir({ dir: home, prefix: "keys-" });
    const alice = await keygen(dir, "alice");
    const env = { HECATE_PASSWORD_FILE: await passwordFile(dir) };
    await runHecate(["--home", home, "slot", "add", "age", alice.recipient], { env });
    await Deno.chmod(alice.file, 0o644);
    const r = await runHecate(["--home", home, "--identity", alice.file, "server", "list"]);
    assert.equal(r.code, 11, r.stderr);
    assert.match(r.stderr, /open to other users \(mode 644\)/);
    await Deno.chmod(alice.file, 0o640);
    assert.equal(
      (await runHecate(["--home", home, "--identity", alice.file, "server", "list"])).code,
      11,
    );
    // A file that is not an identity: usage, and the line is never echoed.
    const junk = `${dir}/junk.txt`;
    await Deno.writeTextFile(junk, "AGE-SECRET-KEY-1-canary-not-a-key\n", { mode: 0o600 });
    const j = await runHecate(["--home", home, "--identity", junk, "server", "list"]);
    assert.equal(j.code, 2, j.stderr);
    assert.ok(!j.stderr.includes("canary"));
  });
});

Deno.test("attack: a teammate's identity cannot change keys, slots, API keys or TOTP (exit 19), CLI and library", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing"]);
    const dir = await Deno.makeTempDir({ dir: home, prefix: "keys-" });
    const alice = await keygen(dir, "alice");
    const other = await keygen(dir, "other");
    const env = { HECATE_PASSWORD_FILE: await passwordFile(dir) };
    await runHecate(["--home", home, "slot", "add", "age", alice.recipient], { env });
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const id = ["--home", home, "--identity", alice.file];
    for (
      const args of [
        ["rotate"],
        ["passwd"],
        ["slot", "add", "age", other.recipient],
        ["slot", "remove", "AAAAAAAAAAA"],
        ["apikey", "create", "x", "--server", "billing"],
        ["totp", "disable"],
      ]
    ) {
      const r = await runHecate([...id, ...args], { env });
      assert.equal(r.code, 19, `${args.join(" ")}: ${r.stderr}`);
    }
    const vault = await openVault({ home, identity: await Deno.readTextFile(alice.file) });
    await assertCode(() => vault.slots.addAge(other.recipient), "no_credential");
    await assertCode(
      () => vault.apiKeys.create({ name: "x", profiles: ["billing"], expires: null }),
      "no_credential",
    );
    await assertCode(() => vault.keys.rotate(PW), "no_credential");
    const ageId = (await vault.slots.list()).find((s) => s.kind === "age")!.id;
    await assertCode(() => vault.slots.remove(ageId), "no_credential");
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
    // What it may do: change profiles (the owner still opens the result).
    await vault.profiles.add({ name: "scratch", engine: "sqlite", database: `${home}/billing.db` });
    const owner = await openVault({ home, password: PW });
    assert.deepEqual(owner.profiles.list().map((p) => p.name).sort(), ["billing", "scratch"]);
  });
});

Deno.test("attack: after slot remove + rotate the removed teammate opens nothing: the current file (exit 3), an old copy put back (exit 25), nor the new file with the old root key", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing"]);
    const dir = await Deno.makeTempDir({ dir: home, prefix: "keys-" });
    const alice = await keygen(dir, "alice");
    const bob = await keygen(dir, "bob");
    const env = { HECATE_PASSWORD_FILE: await passwordFile(dir) };
    for (const [who, k] of [["alice", alice], ["bob", bob]] as const) {
      const r = await runHecate(
        ["--home", home, "slot", "add", "age", k.recipient, "--label", who],
        {
          env,
        },
      );
      assert.equal(r.code, 0, r.stderr);
    }
    // Alice keeps a copy of the vault file while she is still on the team.
    const oldCopy = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const aliceText = await Deno.readTextFile(alice.file);
    const aliceId = (await openVault({ home, password: PW }).then((v) => v.slots.list()))
      .find((s) => s.label === "alice")!.id;

    // The password slot is not removable; an unknown id is a usage error; both leave the file.
    const pwSlot = (await (await openVault({ home, password: PW })).slots.list())[0]!;
    assert.equal((await runHecate(["--home", home, "slot", "remove", pwSlot.id], { env })).code, 2);
    assert.equal((await runHecate(["--home", home, "slot", "remove", "nope"], { env })).code, 2);

    assert.equal((await runHecate(["--home", home, "slot", "remove", aliceId], { env })).code, 0);
    const rotated = await runHecate(["--home", home, "rotate"], { env });
    assert.equal(rotated.code, 0, rotated.stderr);

    // 1. The current file: her identity matches no slot.
    const now = await runHecate(["--home", home, "--identity", alice.file, "server", "list"]);
    assert.equal(now.code, 3, now.stderr);
    // Bob's slot was re-wrapped to the new root key and still opens.
    const b = await runHecate(["--home", home, "--identity", bob.file, "server", "list"]);
    assert.equal(b.code, 0, b.stderr);

    // 2. Her old copy put back over the vault file: the rollback gate refuses it.
    const current = await Deno.readFile(`${home}/${VAULT_FILE}`);
    await Deno.writeFile(`${home}/${VAULT_FILE}`, oldCopy, { mode: 0o600 });
    const back = await runHecate(["--home", home, "--identity", alice.file, "server", "list"]);
    assert.equal(back.code, 25, back.stderr);
    await Deno.writeFile(`${home}/${VAULT_FILE}`, current, { mode: 0o600 });

    // 3. Offline, her old copy still opens (she had that root key), but nothing it yields opens
    // the rotated file: not its MAC, not a record's data key.
    const { vault: old } = await UnlockedVault.unlockWithAge(oldCopy, [{
      identity: aliceText.match(/AGE-SECRET-KEY-1\S+/)![0],
      recipient: alice.recipient,
    }]);
    await assertCode(() => old.reload(current), "vault_integrity");
    const { body } = parseVaultFile(current);
    assert.ok(!body.slots.some((s) => s.kind === "age" && s.recipient === alice.recipient));
    assert.ok(body.slots.some((s) => s.kind === "age" && s.recipient === bob.recipient));

    const lines = await auditLines(home);
    const removed = lines.find((l) => l.event === "slot.remove" && l.outcome === "ok")!;
    assert.deepEqual(removed.detail, { kind: "age", slot_id: aliceId });
    assert.ok(lines.some((l) => l.event === "rotate" && l.outcome === "ok"));
  });
});

Deno.test("format: an age slot holds exactly id, kind, recipient, age (a binary age file), wrapped; a malformed one is refused as damaged", async () => {
  await withHome(async (home) => {
    await vaultWith(home, []);
    const dir = await Deno.makeTempDir({ dir: home, prefix: "keys-" });
    const alice = await keygen(dir, "alice");
    const vault = await openVault({ home, password: PW });
    await vault.slots.addAge(alice.recipient, { label: "alice" });
    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const header = JSON.parse(dec.decode(file.subarray(0, file.indexOf(0x0a))));
    const slot = header.slots.find((s: { kind: string }) => s.kind === "age");
    assert.deepEqual(Object.keys(slot).sort(), ["age", "id", "kind", "recipient", "wrapped"]);
    assert.equal(slot.recipient, alice.recipient);
    // The age member is an ordinary binary age file.
    assert.ok(
      dec.decode(fromBase64Url(slot.age).subarray(0, 21)).startsWith("age-encryption.org/v1"),
    );
    const rest = file.subarray(file.indexOf(0x0a));
    const withSlot = (patch: Record<string, unknown>) => {
      const h = structuredClone(header);
      const i = h.slots.findIndex((s: { kind: string }) => s.kind === "age");
      h.slots[i] = { ...h.slots[i], ...patch };
      for (const k of Object.keys(patch)) if (patch[k] === undefined) delete h.slots[i][k];
      const head = new TextEncoder().encode(JSON.stringify(h));
      const out = new Uint8Array(head.length + rest.length);
      out.set(head);
      out.set(rest, head.length);
      return out;
    };
    for (
      const patch of [
        { recipient: "age1pq1notx25519" },
        { recipient: alice.recipient.toUpperCase() },
        { age: "not base64url!" },
        { age: "A".repeat(8000) },
        { wrapped: undefined },
        { extra: "x" },
      ]
    ) {
      await assertCode(
        () => Promise.resolve().then(() => parseVaultFile(withSlot(patch))),
        "vault_integrity",
      );
    }
  });
});

Deno.test("attack: with vault TOTP on, an identity alone does not open the vault (exit 16); a recovery code is the owner's only", async () => {
  await withHome(async (home) => {
    let now = Date.parse("2026-11-23T10:00:05Z");
    const clock = () => new Date(now);
    await vaultWith(home, ["billing"]);
    const dir = await Deno.makeTempDir({ dir: home, prefix: "keys-" });
    const alice = await keygen(dir, "alice");
    const owner = await openVault({ home, password: PW, now: clock, lockout: "off" });
    await owner.slots.addAge(alice.recipient, { label: "alice" });
    const setup = await owner.totp.beginSetup();
    const codes = await owner.totp.enable(setup, await totpCode(setup.secret, clock()));
    const identity = await Deno.readTextFile(alice.file);
    const open = (totp?: string) => openVault({ home, identity, now: clock, totp, lockout: "off" });
    await assertCode(() => open(undefined), "totp_failed", "missing code");
    await assertCode(() => open(codes[0]!), "totp_failed", "recovery code");
    now += 30_000;
    const vault = await open(await totpCode(setup.secret, clock()));
    assert.equal(vault.actor.kind, "age");
    // The CLI: no code, no terminal: exit 16.
    const r = await runHecate(["--home", home, "--identity", alice.file, "server", "list"]);
    assert.equal(r.code, 16, r.stderr);
  });
});

Deno.test("attack: an age slot given an API key's slot id (and put first) does not confuse the API-key reader: exit 4, no crash", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const key = await vault.apiKeys.create({ name: "ci", profiles: ["billing"], expires: null });
    const dir = await Deno.makeTempDir({ dir: home, prefix: "keys-" });
    await vault.slots.addAge((await keygen(dir, "alice")).recipient, { label: "alice" });
    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const nl = file.indexOf(0x0a);
    const sealEnd = file.indexOf(0x0a, nl + 1);
    const header = JSON.parse(dec.decode(file.subarray(0, nl)));
    const api = header.slots.find((s: { kind: string }) => s.kind === "apikey");
    const age = header.slots.find((s: { kind: string }) => s.kind === "age");
    header.slots = [
      { ...age, id: api.id },
      ...header.slots.filter((s: { kind: string }) => s.kind !== "age"),
    ];
    // The attacker recomputes the unkeyed checksum; the MAC and signature they cannot.
    const head = new TextEncoder().encode(JSON.stringify(header));
    const seal = JSON.parse(dec.decode(file.subarray(nl + 1, sealEnd)));
    seal.sha256 = toBase64Url(new Uint8Array(await crypto.subtle.digest("SHA-256", head)));
    const forged = new Uint8Array([
      ...head,
      0x0a,
      ...new TextEncoder().encode(JSON.stringify(seal)),
      ...file.subarray(sealEnd),
    ]);
    await Deno.writeFile(`${home}/${VAULT_FILE}`, forged, { mode: 0o600 });
    const r = await runHecate(["--home", home, "server", "list"], { env: { HECATE_API_KEY: key } });
    assert.equal(r.code, 4, r.stderr);
    assert.ok(!r.stderr.includes("TypeError"), r.stderr);
  });
});
