/**
 * The PKCS#11 slot against a real SoftHSM2 token (Debian's `softhsm2`; each test makes its own
 * token directory and token with `softhsm2-util`): add a slot, unlock with the token and PIN and
 * no master password, refuse without the token, with a look-alike token, with wrong PINs (counted
 * by the lockout), after `slot remove` + `rotate`, and keep the PIN out of every output.
 */

import assert from "node:assert/strict";
import { HECATE_PERMISSIONS } from "../scripts/permissions.ts";
import { openRootWithToken } from "../src/vault/pkcs11/slot.ts";
import { parseVaultFile, type Pkcs11Slot } from "../src/vault/format.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import { openVault } from "../src/hecate.ts";
import { totpCode } from "../src/access/totp.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import { fromBase64Url, toBase64Url } from "../src/vault/encoding.ts";
import { editLogical, readLogical } from "./support/vault_lines.ts";
import { auditLines, PW, ROOT, runHecate, vaultWith, withHome } from "./support/access.ts";
import { hasSoftHsm, SOFTHSM_MODULE, softhsmToken } from "./support/softhsm.ts";

const MODULE = SOFTHSM_MODULE;
/** A PIN no output may ever contain. */
const PIN = "pin-canary-7ab3e91";
const WRONG_PIN = "wrong-canary-55c0d2";

/** A private SoftHSM2 token store with one token; `env` points the module at it. */
function softhsm(dir: string, label: string, pin = PIN): Promise<Record<string, string>> {
  return softhsmToken(dir, label, pin);
}

/** `hecate --home HOME ...` with the token's environment. */
function hecate(home: string, env: Record<string, string>, args: string[], stdin: string) {
  return runHecate(["--home", home, ...args], { env, stdin });
}

async function addSlot(home: string, env: Record<string, string>, token: string) {
  const r = await hecate(
    home,
    env,
    [
      "slot",
      "add",
      "pkcs11",
      "--module",
      MODULE,
      "--token",
      token,
      "--password-stdin",
      "--pin-stdin",
    ],
    `${PW}\n${PIN}\n`,
  );
  assert.equal(r.code, 0, r.stderr);
  return r;
}

function tokenList(home: string, env: Record<string, string>, pin = PIN, extra: string[] = []) {
  return hecate(
    home,
    env,
    ["--pkcs11", MODULE, ...extra, "--pin-stdin", "server", "list"],
    `${pin}\n`,
  );
}

async function assertNoPin(home: string, outputs: string[]) {
  const audit = await Deno.readTextFile(`${home}/audit.jsonl`);
  for (const text of [...outputs, audit]) {
    assert.ok(!text.includes(PIN) && !text.includes(WRONG_PIN), "a PIN leaked");
  }
}

Deno.test({
  name:
    "slot add pkcs11 wraps the root key on the token; the token and PIN alone then open the vault",
  ignore: !hasSoftHsm,
  fn: () =>
    withHome(async (home) => {
      await vaultWith(home, ["billing"]);
      const env = await softhsm(`${home}/hsm`, "hecate-t1");
      const added = await addSlot(home, env, "hecate-t1");

      // The header holds the slot: labels, IV and 48 bytes that are not the root key in clear.
      const body = parseVaultFile(await Deno.readFile(`${home}/${VAULT_FILE}`)).body;
      const slots = body.slots.filter((s): s is Pkcs11Slot => s.kind === "pkcs11");
      assert.equal(slots.length, 1);
      assert.equal(slots[0]!.token, "hecate-t1");
      assert.equal(slots[0]!.key, "hecate");
      assert.equal(slots[0]!.wrapped.length, 48);

      // No master password anywhere: the token (named by the environment here) and its PIN.
      const byEnv = await runHecate(["--home", home, "--pin-stdin", "server", "list"], {
        env: { ...env, HECATE_PKCS11_MODULE: MODULE, HECATE_PKCS11_TOKEN: "hecate-t1" },
        stdin: `${PIN}\n`,
      });
      assert.equal(byEnv.code, 0, byEnv.stderr);
      assert.match(byEnv.stdout, /billing/);
      const byFlag = await tokenList(home, env);
      assert.equal(byFlag.code, 0, byFlag.stderr);
      assert.match(byFlag.stdout, /billing/);
      // A write after a token unlock keeps the slot (the root key is unchanged).
      const edit = await hecate(
        home,
        env,
        ["--pkcs11", MODULE, "--pin-stdin", "server", "remove", "billing"],
        `${PIN}\n`,
      );
      assert.equal(edit.code, 0, edit.stderr);
      assert.equal((await tokenList(home, env)).code, 0);

      const lines = await auditLines(home);
      const add = lines.find((l) => l.event === "slot.add")!;
      assert.equal(add.outcome, "ok");
      assert.deepEqual((add.detail as Record<string, unknown>).token, "hecate-t1");
      const used = lines.filter((l) =>
        l.event === "unlock" && (l.actor as { kind: string }).kind === "pkcs11"
      );
      assert.equal(used.length, 4);
      assert.ok(used.every((l) => l.outcome === "ok"));
      assert.deepEqual(used[0]!.actor, {
        kind: "pkcs11",
        id: toBase64Url(slots[0]!.id),
        name: "hecate-t1",
      });
      await assertNoPin(home, [added.stdout, added.stderr, byEnv.stderr, byFlag.stderr]);
    }),
});

Deno.test({
  name: "without the token the vault stays shut: missing module, missing token, a look-alike token",
  ignore: !hasSoftHsm,
  fn: () =>
    withHome(async (home) => {
      await vaultWith(home, ["billing"]);
      const env = await softhsm(`${home}/hsm`, "hecate-t1");
      await addSlot(home, env, "hecate-t1");
      const before = await Deno.readFile(`${home}/${VAULT_FILE}`);

      const noModule = await hecate(
        home,
        env,
        ["--pkcs11", `${home}/missing.so`, "--pin-stdin", "server", "list"],
        `${PIN}\n`,
      );
      assert.equal(noModule.code, 19, noModule.stderr);
      assert.match(noModule.stderr, /could not be loaded/);

      // The token is not plugged in: the module sees an empty token store.
      const empty = `${home}/empty`;
      await Deno.mkdir(`${empty}/tokens`, { recursive: true });
      await Deno.writeTextFile(
        `${empty}/softhsm2.conf`,
        `directories.tokendir = ${empty}/tokens\n`,
      );
      const absent = await tokenList(home, { SOFTHSM2_CONF: `${empty}/softhsm2.conf` });
      assert.equal(absent.code, 19, absent.stderr);
      assert.match(absent.stderr, /No token labelled "hecate-t1" is present/);

      // The attack: a token of the attacker's with the same label, PIN and key label. Its key is
      // another key, so the token cannot decrypt the slot: refused as a failed credential.
      const fake = await softhsm(`${home}/fake`, "hecate-t1");
      const { withToken } = await import("../src/vault/pkcs11/cryptoki.ts");
      Deno.env.set("SOFTHSM2_CONF", fake.SOFTHSM2_CONF!);
      try {
        withToken(MODULE, "hecate-t1", PIN, (s) => s.generateKey("hecate"));
      } finally {
        Deno.env.delete("SOFTHSM2_CONF");
      }
      const lookAlike = await tokenList(home, fake);
      assert.equal(lookAlike.code, 3, lookAlike.stderr);
      assert.match(lookAlike.stderr, /does not open this slot/);

      assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before, "vault unchanged");
      const fails = (await auditLines(home)).filter((l) =>
        l.event === "unlock" && l.outcome === "fail"
      );
      assert.deepEqual(fails.map((l) => l.reason), [
        "no_credential",
        "no_credential",
        "auth_failed",
      ]);
      await assertNoPin(home, [noModule.stderr, absent.stderr, lookAlike.stderr]);
    }),
});

Deno.test({
  name: "wrong PINs are refused and counted: after the limit even the right PIN is locked out",
  ignore: !hasSoftHsm,
  fn: () =>
    withHome(async (home) => {
      await vaultWith(home, ["billing"]);
      const env = await softhsm(`${home}/hsm`, "hecate-t1");
      await addSlot(home, env, "hecate-t1");
      const limited = { ...env, HECATE_LOCKOUT: "3/15m" };
      const outputs: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await tokenList(home, limited, WRONG_PIN);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /Wrong PIN for token "hecate-t1"/);
        outputs.push(r.stdout, r.stderr);
      }
      const locked = await tokenList(home, limited, PIN);
      assert.equal(locked.code, 13, locked.stderr);
      outputs.push(locked.stderr);
      // The master password is another subject: it still opens the vault.
      const byPassword = await runHecate(["--home", home, "--password-stdin", "server", "list"], {
        env: limited,
        stdin: `${PW}\n`,
      });
      assert.equal(byPassword.code, 0, byPassword.stderr);

      const lines = await auditLines(home);
      const fails = lines.filter((l) =>
        l.event === "unlock" && l.outcome === "fail" &&
        (l.actor as { kind: string }).kind === "pkcs11"
      );
      assert.deepEqual(fails.map((l) => l.reason), [
        "auth_failed",
        "auth_failed",
        "auth_failed",
        "locked_out",
      ]);
      assert.equal(lines.filter((l) => l.event === "lockout").length, 1);
      await assertNoPin(home, outputs);
    }),
});

Deno.test({
  name: "slot remove and rotate cut the token off, even from a root key it recovered before",
  ignore: !hasSoftHsm,
  fn: () =>
    withHome(async (home) => {
      await vaultWith(home, ["billing"]);
      const env = await softhsm(`${home}/hsm`, "hecate-t1");
      await addSlot(home, env, "hecate-t1");
      // The token holder keeps what the token gave them: the old file's slot opens the old root.
      const oldFile = await Deno.readFile(`${home}/${VAULT_FILE}`);
      const oldBody = parseVaultFile(oldFile).body;
      const oldSlot = oldBody.slots.find((s): s is Pkcs11Slot => s.kind === "pkcs11")!;
      Deno.env.set("SOFTHSM2_CONF", env.SOFTHSM2_CONF!);
      let oldRoot: Uint8Array<ArrayBuffer>;
      try {
        oldRoot = openRootWithToken(oldSlot, oldBody.vaultId, { module: MODULE, pin: PIN });
      } finally {
        Deno.env.delete("SOFTHSM2_CONF");
      }

      const list = await hecate(home, env, ["slot", "list", "--password-stdin"], `${PW}\n`);
      const id = /^(\S+)\s+pkcs11/m.exec(list.stdout)?.[1];
      assert.ok(id, list.stdout);
      const removed = await hecate(
        home,
        env,
        ["slot", "remove", id, "--password-stdin"],
        `${PW}\n`,
      );
      assert.equal(removed.code, 0, removed.stderr);
      const gone = await tokenList(home, env);
      assert.equal(gone.code, 19, gone.stderr);
      assert.match(gone.stderr, /no PKCS#11 slot/);
      const rotated = await hecate(home, env, ["rotate", "--password-stdin"], `${PW}\n`);
      assert.equal(rotated.code, 0, rotated.stderr);

      // The recovered old root key does not open the rotated file.
      const now = await Deno.readFile(`${home}/${VAULT_FILE}`);
      await assert.rejects(
        () => UnlockedVault.unlockWithSlot(now, () => Promise.resolve(oldRoot.slice())),
        (e: Error & { code?: string }) => e.code === "vault_integrity",
      );
      // A slot added again before a rotate is dropped by it, with a warning.
      await addSlot(home, env, "hecate-t1");
      assert.equal((await tokenList(home, env)).code, 0);
      const again = await hecate(home, env, ["rotate", "--password-stdin"], `${PW}\n`);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /1 PKCS#11 slot\(s\) wrapped the old root key and were removed/);
      assert.equal((await tokenList(home, env)).code, 19);

      const lines = await auditLines(home);
      assert.equal(lines.filter((l) => l.event === "slot.add" && l.outcome === "ok").length, 2);
      const rm = lines.find((l) => l.event === "slot.remove")!;
      assert.equal((rm.detail as Record<string, unknown>).slot_id, id);
    }),
});

Deno.test({
  name: "the PIN has no argv form, and without --allow-ffi everything but the token still works",
  ignore: !hasSoftHsm,
  fn: () =>
    withHome(async (home) => {
      await vaultWith(home, ["billing"]);
      const env = await softhsm(`${home}/hsm`, "hecate-t1");
      const argv = await hecate(
        home,
        env,
        ["--pkcs11", MODULE, "--pin", PIN, "server", "list"],
        "",
      );
      assert.equal(argv.code, 2, argv.stderr);
      assert.ok(!argv.stderr.includes(PIN));
      await addSlot(home, env, "hecate-t1");

      const noFfi = HECATE_PERMISSIONS.filter((p) => !p.startsWith("--allow-ffi"));
      const run = async (args: string[], stdin: string) => {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--quiet",
            "--no-prompt",
            ...noFfi,
            `${ROOT}main.ts`,
            "--home",
            home,
            ...args,
          ],
          env: { ...env, NO_COLOR: "1" },
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const w = child.stdin.getWriter();
        await w.write(new TextEncoder().encode(stdin));
        await w.close();
        const out = await child.output();
        return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
      };
      const byPassword = await run(["--password-stdin", "server", "list"], `${PW}\n`);
      assert.equal(byPassword.code, 0, byPassword.stderr);
      const byToken = await run(["--pkcs11", MODULE, "--pin-stdin", "server", "list"], `${PIN}\n`);
      assert.equal(byToken.code, 19, byToken.stderr);
      assert.match(byToken.stderr, /--allow-ffi/);
    }),
});

Deno.test({
  name: "an edited or transplanted PKCS#11 slot never opens a vault (checksums recomputed)",
  ignore: !hasSoftHsm,
  fn: () =>
    withHome(async (home) => {
      // Two vaults with slots on one token and one key: an attacker who can write the home of B
      // moves A's slot (A's root key, as the token wrapped it) into B's header.
      const homeA = `${home}/a`;
      const homeB = `${home}/b`;
      for (const h of [homeA, homeB]) await Deno.mkdir(h, { mode: 0o700 });
      await vaultWith(homeA, ["alpha"]);
      await vaultWith(homeB, ["beta"]);
      const env = await softhsm(`${home}/hsm`, "hecate-t1");
      await addSlot(homeA, env, "hecate-t1");
      await addSlot(homeB, env, "hecate-t1");
      const slotOf = (body: Record<string, unknown>) =>
        (body.slots as Record<string, unknown>[]).findIndex((s) => s.kind === "pkcs11");
      const fileA = await Deno.readFile(`${homeA}/${VAULT_FILE}`);
      const slotA = readLogical(fileA).body.slots as Record<string, unknown>[];
      const original = await Deno.readFile(`${homeB}/${VAULT_FILE}`);

      const attempts: [string, (slot: Record<string, unknown>) => void][] = [
        ["A's slot with B's slot id", (s) =>
          Object.assign(s, slotA[slotOf(readLogical(fileA).body)], { id: s.id })],
        ["A's slot as it was", (s) =>
          Object.assign(s, slotA[slotOf(readLogical(fileA).body)])],
        ["another IV", (s) => (s.iv = toBase64Url(new Uint8Array(12)))],
        ["a flipped ciphertext bit", (s) => {
          const w = fromBase64Url(String(s.wrapped));
          w[5]! ^= 1;
          s.wrapped = toBase64Url(w);
        }],
      ];
      for (const [what, change] of attempts) {
        const edited = await editLogical(original, (body) =>
          change(
            (body.slots as Record<string, unknown>[])[slotOf(body)]!,
          ));
        await Deno.writeFile(`${homeB}/${VAULT_FILE}`, edited, { mode: 0o600 });
        const r = await tokenList(homeB, env);
        // The token refuses to decrypt (AAD binds vault and slot ids; tag): a failed credential.
        assert.equal(r.code, 3, `${what}: ${r.stderr}`);
        assert.match(r.stderr, /does not open this slot/, what);
        assert.ok(!r.stdout.includes("beta") && !r.stdout.includes("alpha"), what);
      }
      await Deno.writeFile(`${homeB}/${VAULT_FILE}`, original, { mode: 0o600 });
      assert.equal((await tokenList(homeB, env)).code, 0);
    }),
});

Deno.test({
  name: "library: openVault({ pkcs11 }) opens with the token; slots change only with the password",
  ignore: !hasSoftHsm,
  fn: () =>
    withHome(async (home) => {
      const owner = await vaultWith(home, ["billing"]);
      const env = await softhsm(`${home}/hsm`, "hecate-t1");
      Deno.env.set("SOFTHSM2_CONF", env.SOFTHSM2_CONF!);
      try {
        const id = await owner.slots.addPkcs11({ module: MODULE, token: "hecate-t1", pin: PIN });
        const listed = (await owner.slots.list()).filter((s) => s.kind === "pkcs11");
        assert.deepEqual(
          listed.map((s) => [s.id, s.label, s.detail]),
          [[id, "hecate-t1/hecate", 'token "hecate-t1" key "hecate"']],
        );
        assert.ok(listed[0]!.created);
        const byToken = await openVault({ home, pkcs11: { module: MODULE, pin: PIN } });
        assert.deepEqual(byToken.actor, { kind: "pkcs11", id, name: "hecate-t1" });
        assert.deepEqual(byToken.profiles.list().map((p) => p.name), ["billing"]);
        // A token unlock cannot add or remove ways in: that needs the master password.
        await assert.rejects(
          () => byToken.slots.remove(id),
          (e: Error & { code?: string }) => e.code === "no_credential",
        );
        await assert.rejects(
          () => byToken.slots.addPkcs11({ module: MODULE, token: "hecate-t1", pin: PIN }),
          (e: Error & { code?: string }) => e.code === "no_credential",
        );
        // The owner-only list (src/api/_core.ts) binds a token unlock as it binds an age identity.
        await assert.rejects(
          () => byToken.backups.setRetention(3),
          (e: Error & { code?: string }) => e.code === "no_credential",
        );
        await assert.rejects(
          () => byToken.setPolicy("complexity.min-length", "20"),
          (e: Error & { code?: string }) => e.code === "no_credential",
        );
        await assert.rejects(
          () => byToken.keys.rotate(PW),
          (e: Error & { code?: string }) => e.code === "no_credential",
        );
        // The token unlock is recorded as this slot's last use.
        const used = (await owner.slots.list()).filter((s) => s.kind === "pkcs11");
        assert.equal(used.length, 1);
        assert.ok(used[0]!.lastUsed);
        // Bad labels are refused before the token is touched.
        await assert.rejects(
          () => owner.slots.addPkcs11({ module: MODULE, token: "x".repeat(33), pin: PIN }),
          (e: Error & { code?: string }) => e.code === "usage",
        );
        await owner.slots.remove(id);
        assert.deepEqual((await owner.slots.list()).filter((s) => s.kind === "pkcs11"), []);
        await byToken.close();
      } finally {
        Deno.env.delete("SOFTHSM2_CONF");
      }
    }),
});

Deno.test({
  name:
    "with the vault's TOTP on, a token unlock needs the code too, and no recovery code stands in",
  ignore: !hasSoftHsm,
  fn: () =>
    withHome(async (home) => {
      const owner = await vaultWith(home, ["billing"]);
      const env = await softhsm(`${home}/hsm`, "hecate-t1");
      await addSlot(home, env, "hecate-t1");
      const setup = await owner.totp.beginSetup();
      const recovery = await owner.totp.enable(setup, await totpCode(setup.secret, new Date()));
      await owner.close();
      const noCode = await tokenList(home, env);
      assert.equal(noCode.code, 16, noCode.stderr);
      const byRecovery = await tokenList(home, { ...env, HECATE_TOTP: recovery[0]! });
      assert.equal(byRecovery.code, 16, byRecovery.stderr);
      // The next time step: the code enable() spent cannot be replayed.
      const code = await totpCode(setup.secret, new Date(Date.now() + 30_000));
      const ok = await tokenList(home, { ...env, HECATE_TOTP: code });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /billing/);
    }),
});

/** `age-keygen` into `dir`: the identity file and its recipient. */
async function ageKeygen(dir: string): Promise<{ file: string; recipient: string }> {
  const file = `${dir}/alice.txt`;
  const made = await new Deno.Command("age-keygen", { args: ["-o", file], stderr: "null" })
    .output();
  assert.equal(made.code, 0);
  const pub = await new Deno.Command("age-keygen", { args: ["-y", file] }).output();
  return { file, recipient: new TextDecoder().decode(pub.stdout).trim() };
}

const hasAge = await new Deno.Command("age-keygen", { args: ["--version"] }).output()
  .then((o) => o.code === 0, () => false);

Deno.test({
  name:
    "age and PKCS#11 slots side by side: one slot list; rotate keeps the age slot, drops the token's cleanly",
  ignore: !hasSoftHsm || !hasAge,
  fn: () =>
    withHome(async (home) => {
      await vaultWith(home, ["billing"]);
      const env = await softhsm(`${home}/hsm`, "hecate-t1");
      await addSlot(home, env, "hecate-t1");
      const alice = await ageKeygen(home);
      const addAge = await hecate(
        home,
        env,
        ["slot", "add", "age", alice.recipient, "--label", "alice", "--password-stdin"],
        `${PW}\n`,
      );
      assert.equal(addAge.code, 0, addAge.stderr);
      assert.equal((await tokenList(home, env)).code, 0);

      type Listed = { id: string; kind: string; label: string; created: string; lastUsed: string };
      const slots = async (): Promise<Listed[]> => {
        const r = await hecate(
          home,
          env,
          ["slot", "list", "--json", "--password-stdin"],
          `${PW}\n`,
        );
        assert.equal(r.code, 0, r.stderr);
        return JSON.parse(r.stdout);
      };
      const before = await slots();
      const token = before.find((s) => s.kind === "pkcs11")!;
      assert.equal(token.label, "hecate-t1/hecate");
      assert.ok(token.created);
      assert.ok(token.lastUsed, "the token unlock is its last use");
      assert.equal(before.find((s) => s.kind === "age")!.label, "alice");

      // An identity and a token at once are refused (exit 2), not silently one of them.
      const both = await runHecate(
        [
          "--home",
          home,
          "--identity",
          alice.file,
          "--pkcs11",
          MODULE,
          "--pin-stdin",
          "server",
          "list",
        ],
        { env, stdin: `${PIN}\n` },
      );
      assert.equal(both.code, 2, both.stderr);

      const rotated = await hecate(home, env, ["rotate", "--password-stdin"], `${PW}\n`);
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(rotated.stderr, /1 PKCS#11 slot\(s\) wrapped the old root key and were removed/);
      // The token now finds no slot (exit 19), never a slot wrapping the old root key (exit 4).
      const byToken = await tokenList(home, env);
      assert.equal(byToken.code, 19, byToken.stderr);
      // The age slot was re-made under the new root key; the password still opens everything.
      const byAge = await runHecate(["--home", home, "--identity", alice.file, "server", "list"]);
      assert.equal(byAge.code, 0, byAge.stderr);
      assert.match(byAge.stdout, /billing/);
      const after = await slots();
      assert.deepEqual(after.map((s) => s.kind).sort(), ["age", "password"]);
      assert.equal(after.find((s) => s.kind === "age")!.label, "alice");
      // The token's slot, and its label in the meta, can be added again after the rotate.
      await addSlot(home, env, "hecate-t1");
      assert.equal((await tokenList(home, env)).code, 0);
      assert.equal((await slots()).filter((s) => s.kind === "pkcs11").length, 1);
    }),
});
