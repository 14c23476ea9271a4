/**
 * TOTP: RFC 6238 vectors, the one-step window, replay refusal, recovery codes (each once), per
 * vault and per profile, with the password and with an API key. The clock is injected.
 */

import assert from "node:assert/strict";
import {
  hashRecoveryCode,
  matchTotp,
  newRecoveryCodes,
  totpCode,
  totpConfigOf,
} from "../src/access/totp.ts";
import { openVault, type Vault } from "../src/hecate.ts";
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

/** RFC 6238 appendix B, SHA-1 column: the seed is the ASCII string "12345678901234567890". */
const RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const RFC_VECTORS: [number, string][] = [
  [59, "94287082"],
  [1111111109, "07081804"],
  [1111111111, "14050471"],
  [1234567890, "89005924"],
  [2000000000, "69279037"],
  [20000000000, "65353130"],
];

Deno.test("totpCode matches the RFC 6238 SHA-1 vectors (6-digit truncation of the 8-digit values)", async () => {
  for (const [t, code8] of RFC_VECTORS) {
    // Both truncate the same 31-bit value: mod 10^6 is the last six digits of mod 10^8.
    assert.equal(await totpCode(RFC_SECRET, new Date(t * 1000)), code8.slice(2), `T=${t}`);
    assert.equal(
      await matchTotp(RFC_SECRET, code8.slice(2), new Date(t * 1000)),
      Math.floor(t / 30),
    );
  }
});

Deno.test("matchTotp accepts one step either side and refuses two, and refuses malformed codes", async () => {
  const t = new Date(1_111_111_111_000);
  const code = await totpCode(RFC_SECRET, t);
  const step = Math.floor(t.getTime() / 30_000);
  assert.equal(await matchTotp(RFC_SECRET, code, new Date(t.getTime() + 30_000)), step);
  assert.equal(await matchTotp(RFC_SECRET, code, new Date(t.getTime() - 30_000)), step);
  assert.equal(await matchTotp(RFC_SECRET, code, new Date(t.getTime() + 60_000)), null);
  assert.equal(await matchTotp(RFC_SECRET, code, new Date(t.getTime() - 60_000)), null);
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
  assert.equal(await matchTotp(RFC_SECRET, wrong, t), null);
  for (const bad of ["", "12345", "1234567", "abcdef", ` ${code}x`]) {
    assert.equal(await matchTotp(RFC_SECRET, bad, t), null, JSON.stringify(bad));
  }
});

Deno.test("recovery codes are distinct, 50-bit, and hash the same however they are typed", async () => {
  const codes = newRecoveryCodes();
  assert.equal(new Set(codes).size, 10);
  for (const c of codes) assert.match(c, /^[a-z2-7]{5}-[a-z2-7]{5}$/);
  assert.equal(
    await hashRecoveryCode(codes[0]!),
    await hashRecoveryCode(` ${codes[0]!.toUpperCase().replace("-", "")} `),
  );
});

/** A clock the test moves. */
function clock(start: number) {
  let t = start;
  return { now: () => new Date(t), set: (ms: number) => (t = ms) };
}

async function enableVaultTotp(
  vault: Vault,
  at: Date,
): Promise<{ secret: string; codes: string[] }> {
  const setup = await vault.totp.beginSetup();
  assert.match(setup.uri, /^otpauth:\/\/totp\/Hecate:vault\?.*secret=/);
  await assertCode(() => vault.totp.enable(setup, "12345"), "totp_failed");
  const codes = await vault.totp.enable(setup, await totpCode(setup.secret, at));
  return { secret: setup.secret, codes };
}

Deno.test("vault TOTP: missing, wrong, replayed, out-of-window codes refused; right code accepted once", async () => {
  await withHome(async (home) => {
    const c = clock(Date.parse("2026-11-23T10:00:05Z"));
    await vaultWith(home, ["billing"]);
    const setupVault = await openVault({ home, password: PW, now: c.now, lockout: "off" });
    const { secret } = await enableVaultTotp(setupVault, c.now());
    const open = (totp?: string) =>
      openVault({ home, password: PW, now: c.now, totp, lockout: "off" });

    // The confirming code was spent at setup: it cannot open the vault.
    await assertCode(() => open(undefined), "totp_failed", "missing");
    await assertCode(() => open(""), "totp_failed", "empty");
    c.set(c.now().getTime() + 30_000);
    const code = await totpCode(secret, c.now());
    const wrong = String((Number(code) + 7) % 1_000_000).padStart(6, "0");
    const e = await assertCode(() => open(wrong), "totp_failed", "wrong");
    assert.equal(e.exitCode, 16);
    await open(code);
    await assertCode(() => open(code), "totp_failed", "replayed");
    // An old code (two steps back) is out of the window.
    c.set(c.now().getTime() + 90_000);
    await assertCode(() => open(code), "totp_failed", "out of window");
    // A code asked for lazily through a callback, only when needed.
    let asked = 0;
    await openVault({
      home,
      password: PW,
      now: c.now,
      lockout: "off",
      totp: async (what) => {
        asked++;
        assert.equal(what, "the vault");
        return await totpCode(secret, c.now());
      },
    });
    assert.equal(asked, 1);
    const reasons = (await auditLines(home)).filter((l) =>
      l.event === "unlock" && l.outcome === "fail"
    )
      .map((l) => l.reason);
    assert.deepEqual(reasons, Array(5).fill("totp_failed"));
  });
});

Deno.test("a recovery code opens the vault once, is spent in the vault file, and is refused the second time", async () => {
  await withHome(async (home) => {
    const c = clock(Date.parse("2026-11-23T10:00:05Z"));
    await vaultWith(home, ["billing"]);
    const v = await openVault({ home, password: PW, now: c.now, lockout: "off" });
    const { codes } = await enableVaultTotp(v, c.now());
    const open = (totp?: string) =>
      openVault({ home, password: PW, now: c.now, totp, lockout: "off" });
    await open(codes[3]!.toUpperCase());
    const state = await UnlockedVault.unlock(await Deno.readFile(`${home}/${VAULT_FILE}`), PW);
    assert.equal(totpConfigOf(state.meta.totp)!.recovery.length, 9);
    await assertCode(() => open(codes[3]!), "totp_failed", "recovery code used twice");
    await open(codes[4]!);
    // Nothing of the codes or the secret reaches the audit trail.
    const text = await Deno.readTextFile(`${home}/audit.jsonl`);
    for (const code of codes) {
      assert.ok(!text.includes(code.replace("-", "")) && !text.includes(code));
    }
    assert.ok(!text.includes(totpConfigOf(state.meta.totp)!.secret));
  });
});

/** Runs `fns` so that each has read (and unlocked) the vault before any of them spends a code. */
function inStep(n: number) {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((r) => (release = r));
  return async (code: string) => {
    if (++arrived === n) release();
    await all;
    return code;
  };
}

Deno.test("two unlocks racing with the same recovery code: exactly one succeeds (16 for the other); a code spent meanwhile is not put back", async () => {
  await withHome(async (home) => {
    const c = clock(Date.parse("2026-11-23T10:00:05Z"));
    await vaultWith(home, ["billing"]);
    const v = await openVault({ home, password: PW, now: c.now, lockout: "off" });
    const { codes } = await enableVaultTotp(v, c.now());
    const open = (code: (what: string) => Promise<string>) =>
      openVault({ home, password: PW, now: c.now, totp: code, lockout: "off" });
    const left = async () =>
      totpConfigOf(
        (await UnlockedVault.unlock(await Deno.readFile(`${home}/${VAULT_FILE}`), PW)).meta.totp,
      )!.recovery.length;

    // Both have read the vault, unlocked it and matched the code before either spends it.
    const same = inStep(2);
    const results = await Promise.allSettled([0, 1].map(() => open(() => same(codes[0]!))));
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r) => r.status === "rejected");
    assert.equal(ok.length, 1);
    assert.equal(refused.length, 1);
    const e = (refused[0] as PromiseRejectedResult).reason;
    assert.equal(e.code, "totp_failed");
    assert.equal(e.exitCode, 16);
    assert.equal(await left(), 9);
    const spend = (await auditLines(home)).filter((l) => l.event === "totp.recovery");
    assert.deepEqual(spend.map((l) => l.outcome).sort(), ["fail", "ok"]);

    // Two different codes at once: both are spent, neither write puts the other's code back.
    const two = inStep(2);
    const both = await Promise.allSettled([codes[1]!, codes[2]!].map((x) => open(() => two(x))));
    assert.deepEqual(both.map((r) => r.status), ["fulfilled", "fulfilled"]);
    assert.equal(await left(), 7);
    for (const spent of [codes[0]!, codes[1]!, codes[2]!]) {
      await assertCode(() => open(() => Promise.resolve(spent)), "totp_failed", spent);
    }
  });
});

Deno.test("two connects racing with the same profile recovery code: exactly one gets the profile", async () => {
  await withHome(async (home) => {
    const c = clock(Date.parse("2026-11-23T10:00:05Z"));
    await vaultWith(home, ["billing"]);
    const v = await openVault({ home, password: PW, now: c.now, lockout: "off" });
    const setup = await v.totp.beginSetup("billing");
    const codes = await v.totp.enable(setup, await totpCode(setup.secret, c.now()));
    const same = inStep(2);
    // Both sessions read the profile (with the code unspent) before either connects.
    const sessions = await Promise.all(
      [0, 1].map(() =>
        openVault({ home, password: PW, now: c.now, totp: () => same(codes[0]!), lockout: "off" })
      ),
    );
    const results = await Promise.allSettled(sessions.map((s) => s.connect("billing")));
    const ok = results.filter((r) => r.status === "fulfilled");
    assert.equal(ok.length, 1);
    for (const r of ok) {
      await (r as PromiseFulfilledResult<{ close(): Promise<void> }>).value.close();
    }
    const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assert.equal(refused.reason.code, "totp_failed");
    const after = await openVault({
      home,
      password: PW,
      now: c.now,
      totp: codes[0]!,
      lockout: "off",
    });
    await assertCode(() => after.connect("billing"), "totp_failed", "spent code");
  });
});

Deno.test("two hecate processes racing with the same recovery code: exactly one gets in", async () => {
  await withHome(async (home) => {
    const c = clock(Date.now());
    await vaultWith(home, ["billing"]);
    const v = await openVault({ home, password: PW, now: c.now, lockout: "off" });
    const { codes } = await enableVaultTotp(v, c.now());
    const pw = await passwordFile(home);
    for (const code of codes.slice(0, 3)) {
      const runs = await Promise.all(
        [0, 1, 2].map(() =>
          runHecate(["--home", home, "--totp", code, "server", "list"], {
            env: { HECATE_PASSWORD_FILE: pw },
          })
        ),
      );
      const codesSeen = runs.map((r) => r.code).sort();
      assert.deepEqual(codesSeen, [0, 16, 16], runs.map((r) => r.stderr).join(""));
    }
    const state = await UnlockedVault.unlock(await Deno.readFile(`${home}/${VAULT_FILE}`), PW);
    assert.equal(totpConfigOf(state.meta.totp)!.recovery.length, 7);
  });
});

Deno.test("profile TOTP: required at connect for the password and for an API key; replay refused; recovery only with the password", async () => {
  await withHome(async (home) => {
    const c = clock(Date.parse("2026-11-23T10:00:05Z"));
    const vault = await vaultWith(home, ["billing", "hr"]);
    const key = await vault.apiKeys.create({ name: "k", profiles: ["billing"], expires: null });
    const v = await openVault({ home, password: PW, now: c.now, lockout: "off" });
    const setup = await v.totp.beginSetup("billing");
    const codes = await v.totp.enable(setup, await totpCode(setup.secret, c.now()));
    assert.deepEqual(v.totp.status(), { vault: false, profiles: ["billing"] });
    assert.equal((await v.profiles.show("billing")).totp, "required");
    assert.ok(!JSON.stringify(await v.profiles.show("billing")).includes(setup.secret));

    // Unlocking needs no code (the TOTP is per profile); connecting to billing does, hr does not.
    const byPw = await openVault({ home, password: PW, now: c.now, lockout: "off" });
    await (await byPw.connect("hr")).close();
    await assertCode(() => byPw.connect("billing"), "totp_failed", "password, no code");

    c.set(c.now().getTime() + 30_000);
    const code = await totpCode(setup.secret, c.now());
    const byKey = await openVault({ home, apiKey: key, now: c.now, totp: code, lockout: "off" });
    await (await byKey.connect("billing")).close();
    // Once passed, the same session connects again without a new code.
    await (await byKey.connect("billing")).close();
    const replay = await openVault({ home, apiKey: key, now: c.now, totp: code, lockout: "off" });
    await assertCode(() => replay.connect("billing"), "totp_failed", "replayed");
    const rec = await openVault({ home, apiKey: key, now: c.now, totp: codes[0]!, lockout: "off" });
    const e = await assertCode(() => rec.connect("billing"), "totp_failed", "recovery by key");
    assert.match(e.message, /master password/);
    // With the password the recovery code works, once.
    const pw1 = await openVault({
      home,
      password: PW,
      now: c.now,
      totp: codes[0]!,
      lockout: "off",
    });
    await (await pw1.connect("billing")).close();
    const pw2 = await openVault({
      home,
      password: PW,
      now: c.now,
      totp: codes[0]!,
      lockout: "off",
    });
    await assertCode(() => pw2.connect("billing"), "totp_failed", "recovery reused");
    // Editing the profile keeps its TOTP.
    await pw2.profiles.edit("billing", { tags: ["x"] });
    assert.deepEqual(pw2.totp.status().profiles, ["billing"]);
  });
});

Deno.test("totp disable needs a valid code or recovery code; a wrong one changes nothing", async () => {
  await withHome(async (home) => {
    const c = clock(Date.parse("2026-11-23T10:00:05Z"));
    await vaultWith(home, ["billing"]);
    const v = await openVault({ home, password: PW, now: c.now, lockout: "off" });
    const setup = await v.totp.beginSetup("billing");
    const codes = await v.totp.enable(setup, await totpCode(setup.secret, c.now()));
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    await assertCode(() => v.totp.disable("billing", "123456"), "totp_failed");
    await assertCode(() => v.totp.disable("billing", "aaaaa-bbbbb"), "totp_failed");
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
    await v.totp.disable("billing", codes[1]!);
    assert.deepEqual(v.totp.status(), { vault: false, profiles: [] });
    await assertCode(() => v.totp.disable("billing", codes[2]!), "usage");
    await (await v.connect("billing")).close();
  });
});

Deno.test("totp verify (CLI): a valid code exits 0 once, its replay and a wrong code exit 16 with the reason; TOTP off -> 16; all audited", async () => {
  await withHome(async (home) => {
    await vaultWith(home, ["billing", "hr"]);
    // Enabled a step in the past, so the code of the current step is fresh for the CLI.
    const past = await openVault({
      home,
      password: PW,
      now: () => new Date(Date.now() - 30_000),
      lockout: "off",
    });
    const setup = await past.totp.beginSetup("billing");
    await past.totp.enable(setup, await totpCode(setup.secret, new Date(Date.now() - 30_000)));
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const verify = (...args: string[]) =>
      runHecate(["--home", home, "totp", "verify", ...args], { env });

    const code = await totpCode(setup.secret, new Date());
    const ok = await verify("--server", "billing", code);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /accepted for profile "billing"/);
    const again = await verify("--server", "billing", code);
    assert.equal(again.code, 16, again.stderr);
    assert.match(again.stderr, /already used/);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
    const bad = await verify("--server", "billing", wrong);
    assert.equal(bad.code, 16);
    assert.match(bad.stderr, /wrong/);
    const off = await verify("--server", "hr", code);
    assert.equal(off.code, 16);
    assert.match(off.stderr, /TOTP is not on for profile "hr"/);
    const vaultOff = await verify(code);
    assert.equal(vaultOff.code, 16);
    assert.match(vaultOff.stderr, /TOTP is not on for the vault/);
    assert.equal((await verify("--server", "nope", code)).code, 5);

    const lines = (await auditLines(home)).filter((l) => l.event === "totp.verify");
    assert.deepEqual(
      lines.map((l) => [l.outcome, l.profile ?? null]),
      [["ok", "billing"], ["fail", "billing"], ["fail", "billing"], ["fail", "hr"], [
        "fail",
        null,
      ], ["fail", "nope"]],
    );
    const trail = await Deno.readTextFile(`${home}/audit.jsonl`);
    assert.ok(!trail.includes(code) && !trail.includes(setup.secret));
  });
});

Deno.test("vault.totp.verify (library): the vault's code is spent, so unlock refuses it afterwards; recovery codes are not accepted", async () => {
  await withHome(async (home) => {
    const c = clock(Date.parse("2026-11-23T10:00:05Z"));
    await vaultWith(home, ["billing"]);
    const v = await openVault({ home, password: PW, now: c.now, lockout: "off" });
    const { secret, codes } = await enableVaultTotp(v, c.now());
    c.set(Date.parse("2026-11-23T10:00:40Z"));
    const code = await totpCode(secret, c.now());
    await assertCode(() => v.totp.verify(undefined, codes[0]!), "totp_failed", "recovery code");
    await v.totp.verify(undefined, code);
    await assertCode(() => v.totp.verify(undefined, code), "totp_failed", "replayed");
    await assertCode(
      () => openVault({ home, password: PW, now: c.now, totp: code, lockout: "off" }),
      "totp_failed",
      "replayed at unlock",
    );
  });
});
