/**
 * SSH tunnels in front of a real PostgreSQL, through real OpenSSH sshd instances on loopback:
 * every way of logging in, host key verification, jump chains, a dead tunnel, and leaks.
 */

import nodeAssert from "node:assert/strict";
import { startPostgres } from "./support/postgres.ts";
import { makeKeyPair, startAgent, startSshd } from "./support/sshd.ts";
import { initVault, openVault, type Vault } from "../src/hecate.ts";
import { HecateError } from "../src/errors.ts";
import type { Profile, SshHop, SshProfile } from "../src/profile.ts";
import { openTunnel, openTunnelCount } from "../src/tunnel/tunnel.ts";
import { connectThroughTunnel } from "../src/tunnel/through.ts";
import { postgresDriver } from "../src/db/postgres.ts";
import type { ConnectSettings, Driver } from "../src/db/driver.ts";
import { connectSettings } from "../providers/mod.ts";

const PASSWORD = "test master password";
const assert = (v: unknown, msg?: string) => nodeAssert.ok(v, msg ?? "assertion failed");
const assertEquals = (a: unknown, b: unknown, msg?: string) =>
  nodeAssert.deepStrictEqual(a, b, msg ?? "values differ");
const assertMatch = (s: string, re: RegExp) => nodeAssert.match(s, re);
async function assertRejects<E>(
  fn: () => Promise<unknown>,
  cls: new (...a: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    nodeAssert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return e as E;
  }
  throw new Error("expected a rejection");
}

// Module-level servers live until the last test stops them (`await using` here would stop them
// as soon as the module finished loading).
const pg = await startPostgres();
const sshd = await startSshd();
const dir = await Deno.makeTempDir({ prefix: "hecate-ssh-test-" });
const home = `${dir}/home`;
await initVault({ home, password: PASSWORD, kdfIterations: 600_000 });
const vault: Vault = await openVault({ home, password: PASSWORD });
const knownHosts = `${dir}/known_hosts`;
await Deno.writeTextFile(knownHosts, sshd.knownHostsLine + "\n");

let n = 0;
/** Adds a PostgreSQL profile behind the tunnel and returns its name. */
async function addProfile(
  hops: SshHop[],
  secrets: Record<string, string> = {},
  extra: Partial<SshProfile> = {},
): Promise<string> {
  const name = `p${++n}`;
  const sec: Record<string, { value: string }> = { password: { value: pg.password } };
  for (const [k, v] of Object.entries(secrets)) sec[k] = { value: v };
  await vault.profiles.add({
    name,
    engine: "postgres",
    host: "127.0.0.1",
    port: pg.port,
    database: pg.database,
    user: pg.user,
    tls: { mode: "disable" },
    connectTimeoutMs: 10_000,
    ssh: { hops, knownHostsFile: knownHosts, ...extra },
    secrets: sec,
  });
  return name;
}

function hop(extra: Partial<SshHop> = {}): SshHop {
  return { host: sshd.host, port: sshd.port, user: sshd.user, auth: "password", ...extra };
}

async function whoAmI(name: string): Promise<unknown> {
  const rows = await vault.query(name, "select current_user as u, inet_server_port() as p");
  return rows[0];
}

async function rejectsWith(fn: () => Promise<unknown>, code: string): Promise<HecateError> {
  const e = await assertRejects(fn, HecateError);
  assertEquals(e.code, code, e.message);
  return e;
}

Deno.test("a password tunnel verified by known_hosts reaches PostgreSQL", async () => {
  const name = await addProfile([hop()], { "ssh.0.password": sshd.password });
  assertEquals(await whoAmI(name), { u: pg.user, p: pg.port });
  assertEquals(openTunnelCount(), 0);
});

Deno.test("a pinned fingerprint is enough without known_hosts", async () => {
  const name = await addProfile(
    [hop({ hostKey: sshd.hostKey.fingerprint })],
    { "ssh.0.password": sshd.password },
    { knownHostsFile: `${dir}/nonexistent` },
  );
  assertEquals(await whoAmI(name), { u: pg.user, p: pg.port });
});

Deno.test("hashed known_hosts entries (ssh-keygen -H) are matched", async () => {
  const hashed = `${dir}/known_hosts_hashed`;
  await Deno.writeTextFile(hashed, sshd.knownHostsLine + "\n");
  const out = await new Deno.Command("/usr/bin/ssh-keygen", { args: ["-H", "-f", hashed] })
    .output();
  assert(out.success);
  const text = await Deno.readTextFile(hashed);
  assertMatch(text, /^\|1\|[^|]+\|[^ ]+ ssh-ed25519 /);
  const name = await addProfile([hop()], { "ssh.0.password": sshd.password }, {
    knownHostsFile: hashed,
  });
  assertEquals(await whoAmI(name), { u: pg.user, p: pg.port });
});

Deno.test("an unknown host is refused with its fingerprint and the command to pin it", async () => {
  const empty = `${dir}/known_hosts_empty`;
  await Deno.writeTextFile(empty, "");
  const name = await addProfile([hop()], { "ssh.0.password": sshd.password }, {
    knownHostsFile: empty,
  });
  const e = await rejectsWith(() => whoAmI(name), "host_key_unknown");
  assertEquals(e.exitCode, 21);
  assert(e.message.includes(sshd.hostKey.fingerprint), e.message);
  assertEquals(
    e.hint,
    `check the fingerprint with the server's administrator, then pin it: ` +
      `hecate server edit ${name} --ssh-host-key ${sshd.hostKey.fingerprint}`,
  );
  assertEquals(openTunnelCount(), 0);
});

Deno.test("a changed host key is refused loudly, from known_hosts and from a pin", async () => {
  const other = await makeKeyPair(`${dir}/other_host_key`);
  const [type, key] = other.publicLine.split(" ");
  const changed = `${dir}/known_hosts_changed`;
  await Deno.writeTextFile(changed, `[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
  const a = await addProfile([hop()], { "ssh.0.password": sshd.password }, {
    knownHostsFile: changed,
  });
  const e1 = await rejectsWith(() => whoAmI(a), "host_key_changed");
  assertEquals(e1.exitCode, 22);
  assertMatch(e1.message, /^HOST KEY CHANGED for SSH server 127\.0\.0\.1:\d+: expected /);
  assert(e1.message.includes(other.fingerprint) && e1.message.includes(sshd.hostKey.fingerprint));
  assert(e1.message.includes(`${changed}:1`), e1.message);

  const b = await addProfile(
    [hop({ hostKey: other.fingerprint })],
    { "ssh.0.password": sshd.password },
  );
  const e2 = await rejectsWith(() => whoAmI(b), "host_key_changed");
  assert(e2.message.includes("(profile)"), e2.message);
});

Deno.test("accept-new pins the host key on first use, then holds it", async () => {
  const empty = `${dir}/known_hosts_empty2`;
  await Deno.writeTextFile(empty, "");
  const name = await addProfile([hop()], { "ssh.0.password": sshd.password }, {
    knownHostsFile: empty,
    acceptNew: true,
  });
  assertEquals(await whoAmI(name), { u: pg.user, p: pg.port });
  const shown = (await vault.profiles.show(name)) as { ssh: SshProfile };
  assertEquals(shown.ssh.hops[0]!.hostKey, sshd.hostKey.fingerprint);
  // The vault write is audited.
  const audit = (await Deno.readTextFile(`${home}/audit.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert(
    audit.some((e) =>
      e.event === "profile.pin_host_key" && e.profile === name && e.outcome === "ok"
    ),
  );
  // A second unlock sees the pin on disk.
  const again = await openVault({ home, password: PASSWORD });
  assertEquals(
    ((await again.profiles.show(name)) as { ssh: SshProfile }).ssh.hops[0]!.hostKey,
    sshd.hostKey.fingerprint,
  );
});

Deno.test("a wrong SSH password is refused as auth_failed naming the hop", async () => {
  const name = await addProfile([hop()], { "ssh.0.password": "not the password" });
  const e = await rejectsWith(() => whoAmI(name), "auth_failed");
  assert(e.message.includes(`SSH login to SSH server ${sshd.user}@127.0.0.1:${sshd.port}`));
  assert(!e.message.includes("not the password"));
  assertEquals(openTunnelCount(), 0);
});

Deno.test("key logins: plain, encrypted with passphrase, wrong key, wrong passphrase", async () => {
  const plain = await makeKeyPair(`${dir}/id_plain`);
  const enc = await makeKeyPair(`${dir}/id_enc`, { type: "rsa", passphrase: "key pass phrase" });
  const stranger = await makeKeyPair(`${dir}/id_stranger`);
  await sshd.authorize(plain.publicLine);
  await sshd.authorize(enc.publicLine);

  const a = await addProfile([hop({ auth: "key", keyFile: plain.privateFile })]);
  assertEquals(await whoAmI(a), { u: pg.user, p: pg.port });

  const b = await addProfile([hop({ auth: "key", keyFile: enc.privateFile })], {
    "ssh.0.passphrase": "key pass phrase",
  });
  assertEquals(await whoAmI(b), { u: pg.user, p: pg.port });

  const c = await addProfile([hop({ auth: "key", keyFile: stranger.privateFile })]);
  await rejectsWith(() => whoAmI(c), "auth_failed");

  const d = await addProfile([hop({ auth: "key", keyFile: enc.privateFile })], {
    "ssh.0.passphrase": "wrong phrase",
  });
  const e = await rejectsWith(() => whoAmI(d), "auth_failed");
  assertMatch(e.message, /wrong passphrase/);
  assert(!e.message.includes("wrong phrase"));

  const f = await addProfile([hop({ auth: "key", keyFile: enc.privateFile })]);
  await rejectsWith(() => whoAmI(f), "invalid_profile");
  assertEquals(openTunnelCount(), 0);
});

Deno.test("agent login through a real ssh-agent", async () => {
  const key = await makeKeyPair(`${dir}/id_agent`);
  await sshd.authorize(key.publicLine);
  await using agent = await startAgent(dir);
  await agent.add(key.privateFile);
  const name = await addProfile([hop({ auth: "agent" })]);
  const before = Deno.env.get("SSH_AUTH_SOCK");
  Deno.env.set("SSH_AUTH_SOCK", agent.socket);
  try {
    assertEquals(await whoAmI(name), { u: pg.user, p: pg.port });
  } finally {
    if (before === undefined) Deno.env.delete("SSH_AUTH_SOCK");
    else Deno.env.set("SSH_AUTH_SOCK", before);
  }
  Deno.env.delete("SSH_AUTH_SOCK");
  try {
    const e = await rejectsWith(() => whoAmI(name), "connection_failed");
    assertMatch(e.message, /SSH_AUTH_SOCK is not set/);
  } finally {
    if (before !== undefined) Deno.env.set("SSH_AUTH_SOCK", before);
  }
});

Deno.test("a two-hop chain through two sshd instances reaches PostgreSQL", async () => {
  await using second = await startSshd();
  const kh = `${dir}/known_hosts_two`;
  await Deno.writeTextFile(kh, `${sshd.knownHostsLine}\n${second.knownHostsLine}\n`);
  const steps: string[] = [];
  const name = await addProfile(
    [
      hop(),
      { host: second.host, port: second.port, user: second.user, auth: "password" },
    ],
    { "ssh.0.password": sshd.password, "ssh.1.password": second.password },
    {
      knownHostsFile: kh,
    },
  );
  const conn = await vault.connect(name, {
    onStep: (s) => steps.push("hop" in s ? `${s.hop}:${s.step}` : s.step),
  });
  try {
    const rows = [];
    for await (const r of conn.query("select 42 as x")) rows.push(r);
    assertEquals(rows, [{ x: 42 }]);
    // Both sshd instances carry a session right now.
    assert(sshd.sessionProcesses() > 0, `first: ${sshd.sessionProcesses()}`);
    assert(second.sessionProcesses() > 0, `second: ${second.sessionProcesses()}`);
  } finally {
    await conn.close();
  }
  assertEquals(steps, [
    "0:host key",
    "0:handshake",
    "0:auth",
    "0:forward",
    "1:host key",
    "1:handshake",
    "1:auth",
    "1:forward",
    "database login",
  ]);

  // The second hop's key is checked too: pin a wrong one for it.
  const other = await makeKeyPair(`${dir}/other_key_2`);
  const bad = await addProfile(
    [
      hop(),
      {
        host: second.host,
        port: second.port,
        user: second.user,
        auth: "password",
        hostKey: other.fingerprint,
      },
    ],
    { "ssh.0.password": sshd.password, "ssh.1.password": second.password },
    {
      knownHostsFile: kh,
    },
  );
  const e = await rejectsWith(() => whoAmI(bad), "host_key_changed");
  assert(e.message.includes(`${second.port}`), e.message);
  // The last hop's pin is the plain --ssh-host-key; a jump host's names its host:port.
  assert(e.hint?.endsWith(`--ssh-host-key ${second.hostKey.fingerprint}`), e.hint);
  const badJump = await addProfile(
    [
      hop({ hostKey: other.fingerprint }),
      { host: second.host, port: second.port, user: second.user, auth: "password" },
    ],
    { "ssh.0.password": sshd.password, "ssh.1.password": second.password },
    {
      knownHostsFile: kh,
    },
  );
  const e2 = await rejectsWith(() => whoAmI(badJump), "host_key_changed");
  assert(
    e2.hint?.endsWith(`--ssh-host-key 127.0.0.1:${sshd.port}=${sshd.hostKey.fingerprint}`),
    e2.hint,
  );
  assertEquals(openTunnelCount(), 0);
});

Deno.test("TLS through the tunnel is verified against the database's name, not 127.0.0.1", async () => {
  await using tlsPg = await startPostgres({ tls: true });
  const profile = (name: string, host: string) =>
    vault.profiles.add({
      name,
      engine: "postgres",
      host,
      port: tlsPg.port,
      database: tlsPg.database,
      user: tlsPg.user,
      tls: { mode: "verify", caFile: tlsPg.caFile! },
      ssh: { hops: [hop()], knownHostsFile: knownHosts },
      secrets: {
        password: { value: tlsPg.password },
        "ssh.0.password": { value: sshd.password },
      },
    });
  // The certificate names localhost and 127.0.0.1; the driver itself connects to 127.0.0.1:<port>.
  await profile("tls-ok", "localhost");
  const rows = await vault.query(
    "tls-ok",
    "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
  );
  assertEquals(rows, [{ ssl: true }]);
  // The driver is pointed at 127.0.0.1:<ephemeral> and told which name to verify.
  const seen: ConnectSettings[] = [];
  const recording: Driver = {
    connect: (settings) => {
      seen.push(settings);
      return postgresDriver.connect(settings);
    },
  };
  const p = ((await vault.profiles.show("tls-ok")) as unknown) as Profile;
  const full = {
    ...p,
    secrets: { password: { value: tlsPg.password }, "ssh.0.password": { value: sshd.password } },
  };
  const conn = await connectThroughTunnel(full, await connectSettings(full), recording);
  await conn.ping();
  await conn.close();
  assertEquals(seen[0]!.host, "127.0.0.1");
  assertEquals(seen[0]!.tls.serverName, "localhost");
  assertEquals(seen[0]!.tls.mode, "verify");
  assertEquals(openTunnelCount(), 0);
});

Deno.test("the tunnel is driver-neutral: an unmodified psql connects to its local port", async () => {
  const tunnel = await openTunnel({
    profile: "raw",
    hops: [{ ...hop(), port: sshd.port, password: sshd.password }],
    target: { host: "127.0.0.1", port: pg.port },
    knownHostsFiles: [knownHosts],
  });
  try {
    const out = await new Deno.Command("psql", {
      args: [
        "-X",
        "-A",
        "-t",
        "-h",
        tunnel.host,
        "-p",
        String(tunnel.port),
        "-U",
        pg.user,
        "-d",
        pg.database,
        "-c",
        "select 'through ' || 'ssh'",
      ],
      env: { PGPASSWORD: pg.password },
    }).output();
    assertEquals(new TextDecoder().decode(out.stdout), "through ssh\n");
  } finally {
    await tunnel.close();
  }
  assertEquals(openTunnelCount(), 0);
});

Deno.test("a failed database login closes the tunnel it opened", async () => {
  const name = await addProfile([hop()], { "ssh.0.password": sshd.password });
  await vault.profiles.edit(name, { secrets: { password: { value: "wrong db password" } } });
  await rejectsWith(() => whoAmI(name), "auth_failed");
  assertEquals(openTunnelCount(), 0);
  // The forward to a closed port names the bastion that could not reach it.
  const closed = await addProfile([hop()], { "ssh.0.password": sshd.password });
  await vault.profiles.edit(closed, { port: 1 });
  const e = await rejectsWith(() => whoAmI(closed), "connection_failed");
  assertMatch(e.message, /cannot reach 127\.0\.0\.1:1/);
  assertEquals(openTunnelCount(), 0);
});

Deno.test("sshd killed in the middle of a query: a clear error within the timeout", async () => {
  await using doomed = await startSshd();
  const kh = `${dir}/known_hosts_doomed`;
  await Deno.writeTextFile(kh, doomed.knownHostsLine + "\n");
  const name = await addProfile(
    [{ host: doomed.host, port: doomed.port, user: doomed.user, auth: "password" }],
    { "ssh.0.password": doomed.password },
    { knownHostsFile: kh, keepaliveMs: 500, keepaliveCountMax: 2 },
  );
  const conn = await vault.connect(name);
  const t0 = performance.now();
  const running = (async () => {
    for await (const _ of conn.query("select pg_sleep(30)")) { /* no rows before the kill */ }
  })();
  await new Promise((r) => setTimeout(r, 300));
  doomed.kill();
  const e = await assertRejects(() => running, HecateError);
  const ms = performance.now() - t0;
  assertEquals(e.code, "connection_failed");
  assertMatch(e.message, /^SSH tunnel lost: SSH connection to .* (closed|failed)/);
  assert(ms < 5000, `took ${ms} ms`);
  await conn.close();
  assertEquals(openTunnelCount(), 0);
});

Deno.test("a silent (stopped) sshd is detected by keepalives", async () => {
  await using frozen = await startSshd();
  const kh = `${dir}/known_hosts_frozen`;
  await Deno.writeTextFile(kh, frozen.knownHostsLine + "\n");
  const name = await addProfile(
    [{ host: frozen.host, port: frozen.port, user: frozen.user, auth: "password" }],
    { "ssh.0.password": frozen.password },
    { knownHostsFile: kh, keepaliveMs: 300, keepaliveCountMax: 2 },
  );
  const conn = await vault.connect(name);
  const pids = frozen.sessionPids();
  const t0 = performance.now();
  for (const pid of pids) Deno.kill(pid, "SIGSTOP");
  try {
    const e = await assertRejects(async () => {
      for await (const _ of conn.query("select 1")) { /* never answered */ }
    }, HecateError);
    assertMatch(e.message, /^SSH tunnel lost: .*Keepalive timeout/);
    assert(performance.now() - t0 < 5000);
  } finally {
    for (const pid of pids) Deno.kill(pid, "SIGCONT");
    await conn.close();
  }
  assertEquals(openTunnelCount(), 0);
});

Deno.test("no leaks after 1,000 queries through tunnels", async () => {
  const name = await addProfile([hop()], { "ssh.0.password": sshd.password });
  const sockets = () =>
    [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${e.name}`).startsWith("socket:");
      } catch {
        return false;
      }
    }).length;
  // Warm up once (lazy imports, DNS caches) before counting.
  await whoAmI(name);
  const before = sockets();
  let total = 0;
  // 50 tunnels, each carrying 20 queries: every tunnel's whole life cycle, 1,000 queries in all.
  for (let c = 0; c < 50; c++) {
    const conn = await vault.connect(name);
    try {
      for (let q = 0; q < 20; q++) {
        for await (const r of conn.query("select $1::int as i", [q])) total += r.i as number;
      }
    } finally {
      await conn.close();
    }
  }
  assertEquals(total, 50 * 190);
  assertEquals(openTunnelCount(), 0);
  // sshd ends its session processes shortly after the client disconnects.
  const deadline = Date.now() + 5000;
  while (sshd.sessionProcesses() > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assertEquals(sshd.sessionProcesses(), 0);
  assertEquals(sockets(), before);
});

Deno.test({
  name: "cleanup",
  fn: async () => {
    await sshd.stop();
    await pg.stop();
    await Deno.remove(dir, { recursive: true });
  },
});
