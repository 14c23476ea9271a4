/**
 * The vault's security policy (`hecate policy`): values checked, persistence across processes,
 * tampering with the sealed policy refused, environment overrides that may only tighten it, the
 * TOTP requirement for a named profile, vault-wide complexity and history defaults, and the
 * vault-key rotation schedule in `rotate-due`. Attacks go through files and the CLI.
 */

import assert from "node:assert/strict";
import { totpCode } from "../src/access/totp.ts";
import { openVault } from "../src/hecate.ts";
import { SessionStore } from "../src/console/session.ts";
import { agentPaths } from "../src/agent/paths.ts";
import { effectiveAuditFailure, effectiveLockout } from "../src/policy/overrides.ts";
import {
  DEFAULT_POLICY,
  parsePolicyValue,
  POLICY_KEYS,
  resolvePolicy,
} from "../src/policy/policy.ts";
import { sha256 } from "../src/sha256.ts";
import { fromUtf8, toBase64Url, utf8 } from "../src/vault/encoding.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import {
  assertCode,
  auditLines,
  passwordFile,
  PW,
  runHecate,
  vaultWith,
  withHome,
} from "./support/access.ts";

const stored = (settings: Record<string, string>) => ({ v: 1, settings });

Deno.test("policy values: each key parses its documented forms and refuses anything else", () => {
  assert.equal(parsePolicyValue("lockout.attempts", "3"), 3);
  assert.equal(parsePolicyValue("lockout.window", "1h"), 3_600_000);
  assert.equal(parsePolicyValue("keys.rotate-every", "90d"), 90 * 86_400_000);
  assert.equal(parsePolicyValue("keys.rotate-every", "off"), 0);
  assert.equal(parsePolicyValue("totp.unlock", "on"), true);
  assert.deepEqual(parsePolicyValue("totp.profiles", "hr, billing"), ["billing", "hr"]);
  assert.equal(parsePolicyValue("audit.on-failure", "warn"), "warn");
  const bad: [string, string][] = [
    ["lockout.attempts", "0"],
    ["lockout.attempts", "3.5"],
    ["lockout.attempts", "-1"],
    ["lockout.window", "off"],
    ["lockout.window", "15"],
    ["complexity.classes", "5"],
    ["complexity.min-length", "129"],
    ["history.keep", "101"],
    ["totp.unlock", "yes"],
    ["totp.profiles", "a b"],
    ["audit.on-failure", "open"],
    ["keys.rotate-every", "99999d"],
    ["no.such-key", "1"],
    ["__proto__", "1"],
  ];
  for (const [key, value] of bad) {
    assert.throws(() => parsePolicyValue(key, value), (e: Error) => {
      assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
      return (e as { code?: string }).code === "usage";
    }, `${key}=${value}`);
  }
  // Every key's default text parses back to the default.
  const d = resolvePolicy(undefined);
  assert.deepEqual(d, { ...DEFAULT_POLICY, totpProfiles: [] });
  assert.ok(Object.keys(POLICY_KEYS).length >= 14);
});

Deno.test("overrides only tighten a stored policy; without one the variable applies as before", () => {
  const warnings: string[] = [];
  const warn = (m: string) => void warnings.push(m);
  const policy = stored({ "lockout.attempts": "3", "lockout.window": "1h" });
  // Looser count and window: the stored ones stay, with a warning.
  assert.deepEqual(effectiveLockout(policy, "10/15m", warn), {
    max: 3,
    windowMs: 3_600_000,
    lockMs: 900_000,
  });
  assert.equal(warnings.length, 1);
  // Tighter in every part: the variable wins, silently.
  assert.deepEqual(effectiveLockout(policy, "2/2h/1d", warn), {
    max: 2,
    windowMs: 7_200_000,
    lockMs: 86_400_000,
  });
  assert.equal(warnings.length, 1);
  // off cannot turn a stored lockout off.
  assert.deepEqual(effectiveLockout(policy, "off", warn)?.max, 3);
  assert.equal(warnings.length, 2);
  // No stored policy: today's behaviour, off included.
  assert.equal(effectiveLockout(undefined, "off", warn), null);
  assert.equal(effectiveLockout(undefined, "10/15m", warn)?.max, 10);
  // Audit failure mode: warn cannot loosen closed; closed tightens warn.
  assert.equal(effectiveAuditFailure(stored({}), "warn", warn), "closed");
  assert.equal(warnings.length, 3);
  assert.equal(effectiveAuditFailure(stored({ "audit.on-failure": "warn" }), "closed"), "closed");
  assert.equal(effectiveAuditFailure(stored({ "audit.on-failure": "warn" }), undefined), "warn");
  assert.equal(effectiveAuditFailure(undefined, "warn"), undefined);
});

Deno.test("policy set persists across processes, is audited with old and new value, and show lists it", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["billing"])).close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const set = await runHecate(["--home", home, "policy", "set", "lockout.attempts", "3"], {
      env,
    });
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, "lockout.attempts: 5 -> 3\n");
    const show = await runHecate(["--home", home, "policy", "show", "--json"], { env });
    assert.equal(show.code, 0, show.stderr);
    const shown = JSON.parse(show.stdout);
    assert.equal(shown.policy["lockout.attempts"], "3");
    assert.equal(shown.policy["history.keep"], "5");
    assert.deepEqual(shown.set, ["lockout.attempts"]);
    const text = await runHecate(["--home", home, "policy", "show"], { env });
    assert.match(text.stdout, /^lockout\.attempts +3$/m);
    assert.match(text.stdout, /^history\.keep +5 +\(default\)$/m);
    const line = (await auditLines(home)).find((l) => l.event === "policy.set");
    assert.deepEqual(line?.detail, { key: "lockout.attempts", old: "5", new: "3" });
    assert.equal(line?.outcome, "ok");
    // The library reads the same typed policy.
    const vault = await openVault({ home, password: PW });
    assert.equal(vault.policy().lockoutAttempts, 3);
    await vault.close();
  });
});

Deno.test("an invalid value or unknown key: one-line error, exit 2, the vault file unchanged", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["billing"])).close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);
    for (const args of [["lockout.attempts", "0"], ["lockout.window", "soon"], ["nope", "1"]]) {
      const r = await runHecate(["--home", home, "policy", "set", ...args], { env });
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      const errors = r.stderr.split("\n").filter((l) => l.startsWith("hecate: error:"));
      assert.equal(errors.length, 1, r.stderr);
      assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before, `${args}`);
    }
    // totp.unlock on without the vault's TOTP would promise what unlock cannot do: refused.
    const r = await runHecate(["--home", home, "policy", "set", "totp.unlock", "on"], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
  });
});

Deno.test("attack: lockout set to 3, HECATE_LOCKOUT=10/15m in the environment: the fourth attempt is still refused", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["billing"])).close();
    const right = await passwordFile(home);
    const set = await runHecate(["--home", home, "policy", "set", "lockout.attempts", "3"], {
      env: { HECATE_PASSWORD_FILE: right },
    });
    assert.equal(set.code, 0, set.stderr);
    const wrong = `${home}/wrong.txt`;
    await Deno.writeTextFile(wrong, "not the password, clearly\n", { mode: 0o600 });
    const list = (file: string) =>
      runHecate(["--home", home, "server", "list"], {
        env: { HECATE_PASSWORD_FILE: file, HECATE_LOCKOUT: "10/15m" },
      });
    for (let i = 0; i < 3; i++) {
      const r = await list(wrong);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /HECATE_LOCKOUT is looser than the vault's policy/);
    }
    const locked = await list(right);
    assert.equal(locked.code, 13, locked.stderr);
    // HECATE_LOCKOUT=off cannot lift it either.
    const off = await runHecate(["--home", home, "server", "list"], {
      env: { HECATE_PASSWORD_FILE: right, HECATE_LOCKOUT: "off" },
    });
    assert.equal(off.code, 13, off.stderr);
  });
});

/**
 * The header of a vault file and its seal, parsed, and the rest as bytes (format 4's record table
 * and index line are binary).
 */
function splitFile(bytes: Uint8Array) {
  const nl = bytes.indexOf(0x0a);
  const nl2 = bytes.indexOf(0x0a, nl + 1);
  return {
    header: JSON.parse(fromUtf8(bytes.subarray(0, nl))) as Record<string, unknown>,
    seal: JSON.parse(fromUtf8(bytes.subarray(nl + 1, nl2))) as Record<string, unknown>,
    rest: bytes.subarray(nl2 + 1),
  };
}

Deno.test("attack: the sealed policy swapped for an older, looser one (checksum recomputed) is refused as tampered", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["billing"])).close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const loose = await Deno.readFile(`${home}/${VAULT_FILE}`);
    const set = await runHecate(["--home", home, "policy", "set", "lockout.attempts", "2"], {
      env,
    });
    assert.equal(set.code, 0, set.stderr);
    // The attacker (write access to the home, no password) puts the older meta, which has no
    // policy, into the current header and recomputes the unkeyed checksum.
    const current = splitFile(await Deno.readFile(`${home}/${VAULT_FILE}`));
    const old = splitFile(loose);
    assert.notEqual(current.header.meta, old.header.meta);
    const header = JSON.stringify({ ...current.header, meta: old.header.meta });
    const seal = { ...current.seal, sha256: toBase64Url(sha256(utf8(header))) };
    const head = utf8(`${header}\n${JSON.stringify(seal)}\n`);
    const forged = new Uint8Array(head.length + current.rest.length);
    forged.set(head);
    forged.set(current.rest, head.length);
    await Deno.writeFile(`${home}/${VAULT_FILE}`, forged);
    const show = await runHecate(["--home", home, "policy", "show", "--json"], { env });
    assert.equal(show.code, 4, show.stderr);
    assert.match(show.stderr, /authentication|tampered|altered/i);
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), forged, "nothing written");
  });
});

Deno.test("attack: the home's policy copy loosened by hand is rewritten from the sealed policy at the next password unlock", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["billing"])).close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    await runHecate(["--home", home, "policy", "set", "lockout.attempts", "3"], { env });
    const copyPath = `${home}/policy.state.json`;
    const copy = JSON.parse(await Deno.readTextFile(copyPath));
    assert.equal(copy.policy.settings["lockout.attempts"], "3");
    copy.policy.settings["lockout.attempts"] = "1000";
    await Deno.writeTextFile(copyPath, JSON.stringify(copy));
    const r = await runHecate(["--home", home, "server", "list"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /policy\.state\.json differed from the vault's sealed policy/);
    const again = JSON.parse(await Deno.readTextFile(copyPath));
    assert.equal(again.policy.settings["lockout.attempts"], "3");
  });
});

Deno.test("totp.profiles: a named profile without its own TOTP is refused (exit 16) with the password and with an API key", async () => {
  await withHome(async (home) => {
    const owner = await vaultWith(home, ["billing", "hr"]);
    const key = await owner.apiKeys.create({ name: "k", profiles: ["billing"], expires: null });
    await owner.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const set = await runHecate(["--home", home, "policy", "set", "totp.profiles", "billing"], {
      env,
    });
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stderr, /no TOTP on billing/);
    const byPassword = await runHecate(["--home", home, "env", "billing"], { env });
    assert.equal(byPassword.code, 16, byPassword.stderr);
    assert.ok(!byPassword.stdout.includes("secret-of-billing"));
    const byKey = await runHecate(["--home", home, "env", "billing"], {
      env: { HECATE_API_KEY: key },
    });
    assert.equal(byKey.code, 16, byKey.stderr);
    assert.ok(!byKey.stdout.includes("secret-of-billing"));
    // A profile the policy does not name is released as before.
    const hr = await runHecate(["--home", home, "env", "hr"], { env });
    assert.equal(hr.code, 0, hr.stderr);
    const refused = (await auditLines(home)).filter((l) =>
      l.event === "profile.read" && l.outcome === "fail" && l.profile === "billing"
    );
    assert.equal(refused.length, 2);
  });
});

Deno.test("totp.profiles with the profile's TOTP on: a code is asked, and disabling it is refused while required", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    const setup = await vault.totp.beginSetup("billing");
    await vault.totp.enable(setup, await totpCode(setup.secret, new Date()));
    await vault.setPolicy("totp.profiles", "billing");
    const code = await totpCode(setup.secret, new Date(Date.now() + 30_000));
    await assertCode(() => vault.totp.disable("billing", code), "usage", "disable while required");
    assert.deepEqual(vault.totp.status().profiles, ["billing"]);
    await vault.close();
  });
});

Deno.test("complexity and history defaults from the policy apply to profiles without their own rule", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    await vault.setPolicy("complexity.min-length", "20");
    await vault.setPolicy("complexity.classes", "3");
    await assertCode(
      () =>
        vault.profiles.add({
          name: "short",
          engine: "sqlite",
          database: `${home}/billing.db`,
          secrets: { password: { value: "tooShort1" } },
        }),
      "usage",
      "short secret",
    );
    // A profile's own rule overrides the vault's.
    await vault.profiles.add({
      name: "own",
      engine: "sqlite",
      database: `${home}/billing.db`,
      complexity: { minLength: 4 },
      secrets: { password: { value: "four" } },
    });
    await vault.setPolicy("history.keep", "1");
    for (const v of ["Long-enough-secret-1", "Long-enough-secret-2", "Long-enough-secret-3"]) {
      await vault.profiles.edit("billing", { secrets: { password: { value: v } } });
    }
    const history = await vault.profiles.history("billing");
    assert.equal(history.filter((h) => !h.current).length, 1, JSON.stringify(history));
    await vault.close();
  });
});

Deno.test("complexity and history defaults from the policy apply to stored secrets without their own rule", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    await vault.setPolicy("complexity.min-length", "20");
    await vault.setPolicy("history.keep", "1");
    await assertCode(() => vault.secrets.set("webhook", "tooShort1"), "usage", "short secret");
    assert.deepEqual((await vault.secrets.list()).map((s) => s.name), [], "nothing stored");
    // The secret's own rule overrides the vault's.
    await vault.secrets.set("pin", "four", { complexity: { minLength: 4 } });
    for (const v of ["Long-enough-secret-1", "Long-enough-secret-2", "Long-enough-secret-3"]) {
      await vault.secrets.set("webhook", v);
    }
    const history = await vault.secrets.history("webhook");
    assert.equal(history.filter((h) => !h.current).length, 1, JSON.stringify(history));
    await vault.close();
  });
});

Deno.test("keys.rotate-every: rotate-due rotates the vault keys when due, says so, and not again until the next due date", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["billing"])).close();
    // The schedule was set two days ago (the clock is injected), so it is due now.
    const past = new Date(Date.now() - 2 * 86_400_000);
    const vault = await openVault({ home, password: PW, now: () => past });
    await vault.setPolicy("keys.rotate-every", "1d");
    await vault.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const slotBefore = splitFile(await Deno.readFile(`${home}/${VAULT_FILE}`)).header.slots;
    const due = await runHecate(["--home", home, "rotate-due"], { env });
    assert.equal(due.code, 0, due.stderr);
    assert.match(due.stdout, /rotated the vault keys/);
    const slotAfter = splitFile(await Deno.readFile(`${home}/${VAULT_FILE}`)).header.slots;
    assert.notDeepEqual(slotAfter, slotBefore, "new root key: the password slot changed");
    assert.ok((await auditLines(home)).some((l) => l.event === "rotate" && l.outcome === "ok"));
    const next = /Vault keys next due: (\S+)/.exec(due.stdout)?.[1];
    assert.ok(next && Date.parse(next) > Date.now() + 23 * 3600_000, due.stdout);
    const again = await runHecate(["--home", home, "rotate-due"], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /rotated the vault keys/);
    const show = await runHecate(["--home", home, "policy", "show", "--json"], { env });
    assert.equal(JSON.parse(show.stdout).keysNextDue, next);
    const list = await runHecate(["--home", home, "server", "list"], { env });
    assert.ok(list.stdout.includes(`Vault keys next due for rotation: ${next}`), list.stdout);
    // The vault still opens with the password, and its profile with it.
    const reopened = await openVault({ home, password: PW });
    assert.equal(reopened.profiles.list().length, 1);
    await reopened.close();
  });
});

Deno.test("console.idle and console.max-session cap an unlocked session's limits; the console's own flags cannot loosen them", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    await vault.setPolicy("console.idle", "1m");
    await vault.setPolicy("console.max-session", "10m");
    let t = 0;
    // The console was started with looser limits (as `ui --idle 1h --max-session 8h` would).
    const store = new SessionStore(
      { idleMs: 3_600_000, absoluteMs: 8 * 3_600_000, loginMs: 600_000 },
      () => t,
    );
    const s = store.spendLoginToken(store.loginToken!)!;
    const live = store.rotate(s);
    live.vault = vault;
    t = 50_000;
    assert.ok(await store.get(live.id), "within the policy's idle limit");
    t = 50_000 + 61_000;
    assert.equal(await store.get(live.id), undefined, "idle past the policy's minute");
    // The absolute ceiling, with requests often enough never to be idle.
    const other = await openVault({ home, password: PW });
    const s2 = store.rotate(store.startLocked());
    s2.vault = other;
    for (t = 120_000; t < 120_000 + 9 * 60_000; t += 30_000) {
      assert.ok(await store.get(s2.id), `alive at ${t}`);
    }
    t = 120_000 + 10 * 60_000 + 1_000;
    assert.equal(await store.get(s2.id), undefined, "past the policy's 10 minutes");
  });
});

Deno.test("agent.max-for and agent.max-idle cap 'unlock --for/--idle'", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hecate-policy-agent-" });
  await Deno.chmod(dir, 0o700);
  const home = `${dir}/home`;
  await Deno.mkdir(home, { mode: 0o700 });
  let pid: number | undefined;
  try {
    const vault = await vaultWith(home, ["a"]);
    await vault.setPolicy("agent.max-for", "1m");
    await vault.setPolicy("agent.max-idle", "30s");
    await vault.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(dir) };
    const started = Date.now();
    const r = await runHecate(["--home", home, "unlock", "--for", "2h", "--idle", "1h"], { env });
    assert.equal(r.code, 0, r.stderr);
    const session = JSON.parse(await Deno.readTextFile(agentPaths(home).session));
    pid = session.pid;
    const expires = Date.parse(session.expires);
    assert.ok(expires <= Date.now() + 60_000 && expires >= started + 50_000, session.expires);
    const start = (await auditLines(home)).find((l) => l.event === "agent.start");
    assert.deepEqual(start?.detail, { pid, for_ms: 60_000, idle_ms: 30_000 });
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
  } finally {
    if (pid !== undefined) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // already gone after lock
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("audit.on-failure: with the trail unwritable, HECATE_AUDIT_FAILURE=warn cannot loosen 'closed'; 'closed' tightens a stored 'warn'", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing"]);
    await vault.setPolicy("audit.on-failure", "closed");
    await vault.close();
    const pw = await passwordFile(home);
    const log = `${home}/audit.jsonl`;
    const saved = `${home}/audit.jsonl.saved`;
    const withFullTrail = async (env: Record<string, string>) => {
      await Deno.rename(log, saved);
      await Deno.symlink("/dev/full", log); // every write fails with ENOSPC
      try {
        return await runHecate(["--home", home, "server", "list"], {
          env: { HECATE_PASSWORD_FILE: pw, ...env },
        });
      } finally {
        await Deno.remove(log);
        await Deno.rename(saved, log);
      }
    };
    const refused = await withFullTrail({ HECATE_AUDIT_FAILURE: "warn" });
    assert.equal(refused.code, 12, refused.stderr);
    assert.match(refused.stderr, /HECATE_AUDIT_FAILURE=warn is ignored/);
    // The owner chooses warn in the policy: the unlock goes on, with a warning ...
    const owner = await openVault({ home, password: PW });
    await owner.setPolicy("audit.on-failure", "warn");
    await owner.close();
    const warned = await withFullTrail({});
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /hecate: warning: Cannot write the audit record/);
    // The warning names the mode, not an environment variable nobody set.
    assert.doesNotMatch(warned.stderr, /HECATE_AUDIT_FAILURE/);
    // ... and HECATE_AUDIT_FAILURE=closed makes it fail closed again.
    const tightened = await withFullTrail({ HECATE_AUDIT_FAILURE: "closed" });
    assert.equal(tightened.code, 12, tightened.stderr);
  });
});
