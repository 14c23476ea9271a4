/**
 * `hecate doctor` through the real CLI: a healthy home, then one problem planted at a time the
 * way an attacker with write access to the home (or a crash, or a careless chmod) would leave it,
 * each reported with its severity, its fix and the exit code (26 warnings, 27 errors). No secret
 * (profile secret, master password) ever appears in the output.
 */

import assert from "node:assert/strict";
import { ExitCode } from "../src/errors.ts";
import { openVault } from "../src/hecate.ts";
import { type CliRun, PW, runHecate, vaultWith, withHome } from "./support/access.ts";

const CANARY = "doctor-canary-secret-7f3a";

interface Report {
  home: string;
  unlocked: boolean;
  status: string;
  exitCode: number;
  findings: { check: string; severity: string; message: string; fix?: string; path?: string }[];
}

/** A vault with two SQLite profiles, a verified-TLS PostgreSQL one and a key valid for 90 days. */
async function healthy(home: string): Promise<void> {
  const vault = await vaultWith(home, ["alpha", "beta"]);
  await vault.profiles.add({
    name: "billing",
    engine: "postgres",
    host: "db.example.com",
    user: "app",
    tls: { mode: "verify" },
    secrets: { password: { value: CANARY } },
  });
  await vault.apiKeys.create({
    name: "nightly",
    profiles: ["alpha"],
    expires: new Date(Date.now() + 90 * 86_400_000),
  });
  await vault.close();
}

async function pwFile(home: string): Promise<string> {
  const path = `${home}.pw`;
  await Deno.writeTextFile(path, PW + "\n", { mode: 0o600 });
  return path;
}

/** Runs `hecate doctor --json`, with the master password unless `password` is false. */
async function doctor(
  home: string,
  options: { password?: boolean; args?: string[] } = {},
): Promise<{ run: CliRun; report: Report }> {
  const env: Record<string, string> = { HECATE_HOME: home };
  if (options.password !== false) env.HECATE_PASSWORD_FILE = await pwFile(home);
  const run = await runHecate(["doctor", "--json", ...(options.args ?? [])], { env });
  for (const text of [run.stdout, run.stderr]) {
    assert.ok(!text.includes(CANARY), "a profile secret reached the output");
    assert.ok(!text.includes(PW), "the master password reached the output");
  }
  let report: Report;
  try {
    report = JSON.parse(run.stdout);
  } catch {
    throw new Error(`not JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
  assert.equal(report.exitCode, run.code, "the JSON names the exit code the process ends with");
  return { run, report };
}

function only(report: Report, severity: string, check?: string) {
  return report.findings.filter((f) => f.severity === severity && (!check || f.check === check));
}

Deno.test("doctor: a healthy home exits 0, with and without the master password", async () => {
  await withHome(async (home) => {
    await healthy(home);
    const { run, report } = await doctor(home);
    assert.equal(run.code, ExitCode.OK, run.stdout + run.stderr);
    assert.equal(report.status, "ok");
    assert.equal(report.unlocked, true);
    assert.deepEqual(only(report, "error").concat(only(report, "warn")), []);
    assert.ok(report.findings.some((f) => f.check === "audit" && /verified/.test(f.message)));
    assert.ok(report.findings.some((f) => f.check === "kdf" && /600,000/.test(f.message)));

    const without = await doctor(home, { password: false });
    assert.equal(without.run.code, 0, without.run.stdout);
    assert.equal(without.report.unlocked, false);
    assert.ok(without.report.findings.some((f) => f.check === "unlock"));

    // The text form: one line per finding, a summary, the same exit code.
    const text = await runHecate(["doctor", "--no-unlock"], { env: { HECATE_HOME: home } });
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^Hecate doctor: /);
    assert.match(text.stdout, /0 errors, 0 warnings, \d+ notes\n$/);
  });
});

Deno.test("doctor: a missing home is an error naming 'hecate init'", async () => {
  await withHome(async (dir) => {
    const { run, report } = await doctor(`${dir}/nothing-here`, { password: false });
    assert.equal(run.code, ExitCode.DOCTOR_ERRORS);
    assert.match(report.findings[0]!.fix!, /hecate init/);
  });
});

Deno.test("doctor: unsafe permissions on the vault (error, 27) and the home (warning, 26)", async () => {
  await withHome(async (home) => {
    await healthy(home);
    await Deno.chmod(`${home}/vault.hecate`, 0o644);
    let { run, report } = await doctor(home);
    assert.equal(run.code, ExitCode.DOCTOR_ERRORS, run.stdout);
    const f = report.findings.find((x) => x.path === `${home}/vault.hecate`);
    assert.equal(f?.severity, "error");
    assert.equal(f?.fix, `chmod 600 ${home}/vault.hecate`);
    await Deno.chmod(`${home}/vault.hecate`, 0o600);

    await Deno.chmod(home, 0o750);
    ({ run, report } = await doctor(home));
    assert.equal(run.code, ExitCode.DOCTOR_WARNINGS, run.stdout);
    assert.equal(report.findings.find((x) => x.path === home)?.fix, `chmod 700 ${home}`);
    await Deno.chmod(home, 0o700);
  });
});

Deno.test("doctor: a kept generation put back over the vault is reported (27), even with the gate file deleted", async () => {
  await withHome(async (home) => {
    await healthy(home);
    const kept = [...Deno.readDirSync(`${home}/generations`)].map((e) => e.name).sort().at(-1)!;
    // The attacker puts an older vault file back.
    await Deno.copyFile(`${home}/generations/${kept}`, `${home}/vault.hecate`);
    let { run, report } = await doctor(home, { password: false });
    assert.equal(run.code, ExitCode.DOCTOR_ERRORS, run.stdout);
    assert.match(only(report, "error", "vault")[0]!.message, /older copy was put back/);

    // ... and removes the rollback gate too: only the verified trail tells, with the password.
    await Deno.remove(`${home}/generation.state.json`);
    ({ run } = await doctor(home, { password: false }));
    assert.equal(run.code, 0, "without the password the gate is all there is");
    ({ run, report } = await doctor(home));
    assert.equal(run.code, ExitCode.DOCTOR_ERRORS, run.stdout);
    assert.match(only(report, "error", "audit")[0]!.message, /verified audit trail records/);
  });
});

Deno.test("doctor: an edited audit line needs the password to be seen; a cut trail does not", async () => {
  await withHome(async (home) => {
    await healthy(home);
    const path = `${home}/audit.jsonl`;
    const lines = (await Deno.readTextFile(path)).split("\n");
    // Edit an entry in the middle (same length, so sizes still agree).
    lines[2] = lines[2]!.replace('"outcome":"ok"', '"outcome":"no"');
    await Deno.writeTextFile(path, lines.join("\n"));
    let { run, report } = await doctor(home, { password: false });
    assert.equal(run.code, 0, "continuity alone cannot see an edit in the middle");
    ({ run, report } = await doctor(home));
    assert.equal(run.code, ExitCode.DOCTOR_ERRORS, run.stdout);
    assert.match(only(report, "error", "audit")[0]!.message, /failed verification \(edited\)/);
  });
  await withHome(async (home) => {
    await healthy(home);
    const path = `${home}/audit.jsonl`;
    const text = await Deno.readTextFile(path);
    // Cut the last entry off.
    await Deno.writeTextFile(path, text.slice(0, text.lastIndexOf("\n", text.length - 2) + 1));
    const { run, report } = await doctor(home, { password: false });
    assert.equal(run.code, ExitCode.DOCTOR_ERRORS, run.stdout);
    assert.match(only(report, "error", "audit")[0]!.message, /cut or replaced/);
  });
});

Deno.test("doctor: an older audit.state put back is reported without the password (27)", async () => {
  await withHome(async (home) => {
    await healthy(home);
    const old = await Deno.readFile(`${home}/audit.state`);
    const vault = await openVault({ home, password: PW, lockout: "off" }); // appends an entry
    await vault.close();
    await Deno.writeFile(`${home}/audit.state`, old, { mode: 0o600 });
    const { run, report } = await doctor(home, { password: false });
    assert.equal(run.code, ExitCode.DOCTOR_ERRORS, run.stdout);
    const f = only(report, "error", "audit")[0]!;
    assert.match(f.message, /audit\.jsonl is \d+ bytes|older copy/);
    assert.match(f.fix!, /hecate audit verify/);
  });
});

Deno.test("doctor: a leftover chain-key temp file is a warning (26) with its fix", async () => {
  await withHome(async (home) => {
    await healthy(home);
    const temp = `${home}/.audit.state.tmp`;
    await Deno.copyFile(`${home}/audit.state`, temp);
    const old = new Date(Date.now() - 3_600_000);
    await Deno.utime(temp, old, old);
    const { run, report } = await doctor(home, { password: false });
    assert.equal(run.code, ExitCode.DOCTOR_WARNINGS, run.stdout);
    const f = report.findings.find((x) => x.path === temp);
    assert.equal(f?.severity, "warn");
    assert.match(f!.fix!, /hecate audit verify/);
  });
});

Deno.test("doctor: a vault lock held by a hung process is a warning (26); the unlock is skipped", async () => {
  await withHome(async (home) => {
    await healthy(home);
    const lock = await Deno.open(`${home}/vault.lock`, { read: true });
    try {
      await lock.lock(true); // this test process is the hung holder
      const { run, report } = await doctor(home);
      assert.equal(run.code, ExitCode.DOCTOR_WARNINGS, run.stdout);
      assert.equal(only(report, "warn", "locks")[0]?.path, `${home}/vault.lock`);
      assert.equal(report.unlocked, false);
      assert.match(report.findings.find((f) => f.check === "unlock")!.message, /lock is held/);
    } finally {
      lock.close();
    }
  });
});

Deno.test("doctor: TLS off for a remote profile (27), an API key expiring in 3 days (26)", async () => {
  await withHome(async (home) => {
    await healthy(home);
    const vault = await openVault({ home, password: PW, lockout: "off" });
    await vault.apiKeys.create({
      name: "soon",
      profiles: ["beta"],
      expires: new Date(Date.now() + 3 * 86_400_000),
    });
    await vault.close();
    let { run, report } = await doctor(home);
    assert.equal(run.code, ExitCode.DOCTOR_WARNINGS, run.stdout);
    assert.match(only(report, "warn", "apikey")[0]!.message, /"soon" expires/);

    const again = await openVault({ home, password: PW, lockout: "off" });
    await again.profiles.edit("billing", { tls: { mode: "disable" } });
    await again.close();
    ({ run, report } = await doctor(home));
    assert.equal(run.code, ExitCode.DOCTOR_ERRORS, run.stdout);
    const tls = only(report, "error", "tls")[0]!;
    assert.match(tls.message, /"billing"/);
    assert.match(tls.fix!, /^hecate server edit billing --tls verify/);

    // Without the password these checks are skipped, and said to be.
    ({ run, report } = await doctor(home, { args: ["--no-unlock"] }));
    assert.equal(run.code, 0);
    assert.match(report.findings.find((f) => f.check === "unlock")!.message, /--no-unlock/);
  });
});

Deno.test("doctor: an SSH hop trusted on first use is a warning (26), pinned it is not", async () => {
  await withHome(async (home) => {
    await healthy(home);
    const vault = await openVault({ home, password: PW, lockout: "off" });
    await vault.profiles.add({
      name: "tunnelled",
      engine: "postgres",
      host: "db.internal",
      user: "app",
      ssh: { hops: [{ host: "bastion.example.com", user: "ops", auth: "agent" }], acceptNew: true },
      secrets: { password: { value: CANARY } },
    });
    await vault.close();
    let { run, report } = await doctor(home);
    assert.equal(run.code, ExitCode.DOCTOR_WARNINGS, run.stdout);
    const ssh = only(report, "warn", "ssh")[0]!;
    assert.match(ssh.message, /bastion\.example\.com:22 of profile "tunnelled"/);
    assert.match(ssh.fix!, /hecate server edit tunnelled --ssh-host-key SHA256:/);

    const again = await openVault({ home, password: PW, lockout: "off" });
    await again.profiles.edit("tunnelled", {
      ssh: {
        hops: [{
          host: "bastion.example.com",
          user: "ops",
          auth: "agent",
          hostKey: "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
        }],
        acceptNew: true,
      },
    });
    await again.close();
    ({ run, report } = await doctor(home));
    assert.equal(run.code, 0, run.stdout);
    assert.deepEqual(report.findings.filter((f) => f.check === "ssh"), []);
  });
});

Deno.test("doctor --identity: a teammate's age key runs the checks that need the vault's meta, with no password", async () => {
  await withHome(async (home) => {
    await healthy(home);
    const dir = await Deno.makeTempDir({ prefix: "doctor-age-" });
    try {
      const file = `${dir}/alice.txt`;
      const keygen = await new Deno.Command("age-keygen", { args: ["-o", file] }).output();
      assert.equal(keygen.code, 0, new TextDecoder().decode(keygen.stderr));
      const pub = await new Deno.Command("age-keygen", { args: ["-y", file] }).output();
      const vault = await openVault({ home, password: PW });
      await vault.slots.addAge(new TextDecoder().decode(pub.stdout).trim(), { label: "alice" });
      await vault.close();

      const { run, report } = await doctor(home, { password: false, args: ["--identity", file] });
      assert.equal(run.code, ExitCode.OK, run.stdout + run.stderr);
      assert.equal(report.unlocked, true);
      assert.ok(report.findings.some((f) => f.check === "audit" && /verified/.test(f.message)));
      assert.ok(!report.findings.some((f) => f.check === "unlock"));
      const keyText = await Deno.readTextFile(file);
      const secretLine = keyText.split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-"))!;
      assert.ok(!run.stdout.includes(secretLine) && !run.stderr.includes(secretLine));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
