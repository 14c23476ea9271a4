/**
 * The doctor's checks one by one, on values and planted files (the CLI runs are in
 * doctor_test.ts): severities, exit codes, and the fix each finding names.
 */

import assert from "node:assert/strict";
import { ExitCode } from "../src/errors.ts";
import { checkApiKeys } from "../src/doctor/api_keys.ts";
import { doctorExitCode, type Finding, shellQuote, sortFindings } from "../src/doctor/finding.ts";
import { FAST_MS, judgeKdfCost, measurePbkdf2, SLOW_MS } from "../src/doctor/kdf_cost.ts";
import { checkLocks, lockIsFree } from "../src/doctor/locks.ts";
import { checkPermissions } from "../src/doctor/permissions.ts";
import { checkTempFiles, STALE_AFTER_MS } from "../src/doctor/temp_files.ts";
import { checkTransport, type TransportProfile } from "../src/doctor/transport.ts";
import { withHome } from "./support/access.ts";

const f = (severity: Finding["severity"]): Finding => ({ check: "x", severity, message: "m" });

Deno.test("doctor exit code follows the worst severity: 0, 26, 27", () => {
  assert.equal(doctorExitCode([]), ExitCode.OK);
  assert.equal(doctorExitCode([f("info"), f("info")]), 0);
  assert.equal(doctorExitCode([f("info"), f("warn")]), 26);
  assert.equal(doctorExitCode([f("warn"), f("error"), f("info")]), 27);
  assert.deepEqual(sortFindings([f("info"), f("error"), f("warn")]).map((x) => x.severity), [
    "error",
    "warn",
    "info",
  ]);
});

Deno.test("fix commands quote paths for a POSIX shell", async () => {
  assert.equal(shellQuote("/home/a/.hecate"), "/home/a/.hecate");
  assert.equal(shellQuote("/tmp/it's here"), `'/tmp/it'\\''s here'`);
  // The quoted word, run through a real shell, is the original string.
  const odd = "/tmp/a b'c$HOME;rm -rf x";
  const out = await new Deno.Command("sh", { args: ["-c", `printf %s ${shellQuote(odd)}`] })
    .output();
  assert.equal(new TextDecoder().decode(out.stdout), odd);
});

Deno.test("KDF cost: below the floor, slow here, fast here, fine", () => {
  // 0.0002 ms per iteration: 600,000 take 120 ms.
  assert.equal(judgeKdfCost(100_000, 0.0002).severity, "warn");
  assert.match(judgeKdfCost(100_000, 0.0002).message, /below the floor/);
  const slow = judgeKdfCost(600_000, (SLOW_MS + 500) / 600_000);
  assert.equal(slow.severity, "warn");
  assert.match(slow.fix!, /^hecate passwd --kdf-iterations 600000 /);
  const fast = judgeKdfCost(600_000, (FAST_MS / 2) / 600_000);
  assert.equal(fast.severity, "info");
  assert.match(fast.message, /could afford/);
  const fine = judgeKdfCost(1_000_000, 0.0002);
  assert.equal(fine.severity, "info");
  assert.equal(fine.fix, undefined);
});

Deno.test("KDF speed is measured, not assumed", async () => {
  const ms = await measurePbkdf2();
  assert.ok(ms > 0 && ms < 1, `ms per iteration: ${ms}`);
});

Deno.test("transport: TLS off is an error, unverified a warning, loopback a note", () => {
  const base: TransportProfile = {
    name: "billing",
    engine: "postgres",
    host: "db.example.com",
    tls: { mode: "verify" },
  };
  assert.deepEqual(checkTransport(base), []);
  assert.deepEqual(checkTransport({ ...base, engine: "sqlite", tls: { mode: "disable" } }), []);
  const off = checkTransport({ ...base, tls: { mode: "disable" } });
  assert.equal(off[0]!.severity, "error");
  assert.match(off[0]!.fix!, /^hecate server edit billing --tls verify/);
  assert.equal(checkTransport({ ...base, tls: { mode: "insecure" } })[0]!.severity, "warn");
  const loop = checkTransport({ ...base, host: "127.0.0.1", tls: { mode: "disable" } });
  assert.deepEqual(loop.map((x) => x.severity), ["info"]);
  const plain = checkTransport({ ...base, tls: { mode: "insecure", allowPlainAuth: true } });
  assert.deepEqual(plain.map((x) => x.severity), ["warn", "warn"]);
});

Deno.test("transport: unpinned SSH hops, trusted on first use or by known_hosts", () => {
  const pinned = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8";
  const p: TransportProfile = {
    name: "tun",
    engine: "mysql",
    host: "10.0.0.5",
    tls: { mode: "verify" },
    ssh: {
      hops: [
        { host: "jump.example", port: 2201, user: "ops", auth: "agent" },
        { host: "bastion", user: "ops", auth: "agent", hostKey: pinned },
      ],
    },
  };
  const known = checkTransport(p);
  assert.equal(known.length, 1);
  assert.equal(known[0]!.severity, "info");
  // The jump host is pinned by name; the last hop (the --ssh host) by a bare fingerprint.
  assert.match(known[0]!.fix!, /--ssh-host-key jump\.example:2201=SHA256:\.\.\.$/);
  const tofu = checkTransport({ ...p, ssh: { ...p.ssh!, acceptNew: true } });
  assert.equal(tofu[0]!.severity, "warn");
  assert.match(tofu[0]!.message, /trusted on first use/);
});

Deno.test("API keys: expired and expiring within 14 days are reported, others not", () => {
  const now = new Date("2026-12-03T07:00:00Z");
  const key = (name: string, expires: string | null) => ({ name, expires, profiles: ["a"] });
  const out = checkApiKeys([
    key("gone", "2026-12-01T00:00:00Z"),
    key("soon", "2026-12-06T07:00:00Z"),
    key("edge", "2026-12-17T06:59:00Z"),
    key("later", "2026-12-17T07:00:01Z"),
    key("forever", null),
  ], now);
  assert.deepEqual(out.map((x) => x.message.match(/"(\w+)"/)![1]), ["gone", "soon", "edge"]);
  assert.ok(out.every((x) => x.severity === "warn"));
  assert.match(out[0]!.message, /expired/);
  assert.match(out[1]!.message, /in 3 day\(s\)/);
  assert.match(
    out[1]!.fix!,
    /hecate apikey create soon-new --server a .*hecate apikey revoke soon/,
  );
  // A key's stored secrets are named in its replacement too.
  const [withSecret] = checkApiKeys(
    [{ ...key("s", "2026-12-01T00:00:00Z"), secrets: ["tok"] }],
    now,
  );
  assert.match(withSecret!.fix!, /--server a --secret tok --expires 90d/);
});

Deno.test("permissions: each unsafe mode or owner is named with its fix", async () => {
  await withHome(async (home) => {
    assert.deepEqual(await checkPermissions(home), []);
    await Deno.writeTextFile(`${home}/vault.hecate`, "x", { mode: 0o600 });
    await Deno.writeTextFile(`${home}/lockout.state.json`, "{}", { mode: 0o600 });
    await Deno.mkdir(`${home}/generations`, { mode: 0o700 });
    await Deno.writeTextFile(`${home}/generations/vault.3.hecate`, "x", { mode: 0o600 });
    assert.deepEqual(await checkPermissions(home), []);

    await Deno.chmod(`${home}/lockout.state.json`, 0o644); // readable: metadata only
    await Deno.chmod(`${home}/generations/vault.3.hecate`, 0o640); // an old vault: offline guessing
    await Deno.symlink("/etc/passwd", `${home}/vault.lock`);
    const found = await checkPermissions(home, Deno.uid());
    const by = (p: string) => found.find((x) => x.path === `${home}/${p}`);
    assert.equal(by("lockout.state.json")?.severity, "warn");
    assert.equal(by("lockout.state.json")?.fix, `chmod 600 ${home}/lockout.state.json`);
    assert.equal(by("generations/vault.3.hecate")?.severity, "error");
    assert.equal(by("vault.lock")?.severity, "error");
    assert.match(by("vault.lock")!.message, /symbolic link/);

    await Deno.chmod(home, 0o770);
    const home770 = (await checkPermissions(home)).find((x) => x.path === home);
    assert.equal(home770?.severity, "error");
    assert.equal(home770?.fix, `chmod 700 ${home}`);
    await Deno.chmod(home, 0o700);

    // Another owner (as seen from a different uid).
    const other = await checkPermissions(home, (Deno.uid() ?? 0) + 1);
    assert.ok(other.some((x) => x.severity === "error" && /owned by another user/.test(x.message)));
    assert.match(other[0]!.fix!, /chown|chmod -R/);
  });
});

Deno.test("temp files: stale ones are reported, a live writer's are not", async () => {
  await withHome(async (home) => {
    const old = new Date(Date.now() - STALE_AFTER_MS - 5_000);
    for (const name of [".vault.hecate.tmp-0011223344556677", ".audit.state.tmp"]) {
      await Deno.writeTextFile(`${home}/${name}`, "x", { mode: 0o600 });
      await Deno.utime(`${home}/${name}`, old, old);
    }
    await Deno.writeTextFile(`${home}/.lockout.state.json.tmp-aa`, "x", { mode: 0o600 });
    await Deno.utime(`${home}/.lockout.state.json.tmp-aa`, old, old);
    await Deno.mkdir(`${home}/backups`, { mode: 0o700 });
    await Deno.writeTextFile(`${home}/backups/.tmp-1234`, "x", { mode: 0o600 });
    await Deno.utime(`${home}/backups/.tmp-1234`, old, old);
    // An unlock agent killed during a handover: its temporary socket and session file.
    await Deno.mkdir(`${home}/agent`, { mode: 0o700 });
    // (Deno removes a socket file when its listener closes: it stays open for the check.)
    using _socket = Deno.listen({ transport: "unix", path: `${home}/agent/s4242` });
    await Deno.writeTextFile(`${home}/agent/session.json.4242.tmp`, "{}", { mode: 0o600 });
    for (const name of ["agent/s4242", "agent/session.json.4242.tmp"]) {
      await Deno.utime(`${home}/${name}`, old, old);
    }
    await Deno.writeTextFile(`${home}/agent/session.json`, "{}", { mode: 0o600 });
    await Deno.utime(`${home}/agent/session.json`, old, old);
    // Fresh: a writer may be between create and rename.
    await Deno.writeTextFile(`${home}/.vault.hecate.tmp-fresh`, "x", { mode: 0o600 });
    const found = await checkTempFiles(home);
    assert.deepEqual(found.map((x) => [x.path!.slice(home.length + 1), x.severity]), [
      [".audit.state.tmp", "warn"],
      [".lockout.state.json.tmp-aa", "info"],
      [".vault.hecate.tmp-0011223344556677", "warn"],
      ["agent/s4242", "info"],
      ["agent/session.json.4242.tmp", "info"],
      ["backups/.tmp-1234", "warn"],
    ]);
    assert.match(found[0]!.fix!, /hecate audit verify/);
  });
});

Deno.test("locks: a free lock is free, a held one is reported", async () => {
  await withHome(async (home) => {
    await Deno.writeTextFile(`${home}/vault.lock`, "", { mode: 0o600 });
    await Deno.writeTextFile(`${home}/audit.lock`, "", { mode: 0o600 });
    assert.equal(await lockIsFree(`${home}/vault.lock`, 500), true);
    assert.deepEqual(await checkLocks(home, 300), []);
    // Held (by this process, on its own descriptor). The doctor's try stays queued in the kernel
    // until the holder lets go, so it runs in a child: a test must not leave an op pending.
    await Deno.mkdir(`${home}/agent`, { mode: 0o700 });
    await Deno.writeTextFile(`${home}/agent/handover.lock`, "", { mode: 0o600 });
    assert.deepEqual(await checkLocks(home, 300), []);
    const held = await Deno.open(`${home}/audit.lock`, { read: true });
    const handover = await Deno.open(`${home}/agent/handover.lock`, { read: true });
    try {
      await held.lock(true);
      await handover.lock(true);
      const locks = new URL("../src/doctor/locks.ts", import.meta.url).href;
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `import { checkLocks } from ${JSON.stringify(locks)};
           console.log(JSON.stringify(await checkLocks(${JSON.stringify(home)}, 300)));
           Deno.exit(0);`,
        ],
        stdout: "piped",
      });
      const out = JSON.parse(new TextDecoder().decode((await child.output()).stdout));
      assert.deepEqual(
        out.map((f: { path: string; severity: string }) => [f.path, f.severity]),
        [[`${home}/audit.lock`, "warn"], [`${home}/agent/handover.lock`, "warn"]],
      );
    } finally {
      handover.close();
      held.close();
    }
  });
});
