/**
 * The SSH tunnel from the command line: `server add/edit` flags, secrets from stdin, exit codes
 * and messages for refused host keys and logins, and `server test` naming each hop. Runs
 * main.ts with the permissions of the `hecate` task against real sshd and PostgreSQL.
 */

import nodeAssert from "node:assert/strict";
import { startPostgres } from "./support/postgres.ts";
import { makeKeyPair, startSshd } from "./support/sshd.ts";
import { initVault } from "../src/hecate.ts";
import { HECATE_PERMISSIONS } from "../scripts/permissions.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PERMISSIONS = HECATE_PERMISSIONS;
const MASTER = "cli test master password";

const pg = await startPostgres();
const sshd = await startSshd();
const dir = await Deno.makeTempDir({ prefix: "hecate-ssh-cli-" });
const home = `${dir}/home`;
await initVault({ home, password: MASTER, kdfIterations: 600_000 });
const known = `${dir}/known_hosts`;
await Deno.writeTextFile(known, sshd.knownHostsLine + "\n");
const empty = `${dir}/known_hosts_empty`;
await Deno.writeTextFile(empty, "");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `hecate --home HOME --password-stdin ARGS` with stdin lines after the master password. */
async function hecate(
  args: string[],
  lines: string[] = [],
  env: Record<string, string> = {},
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, MAIN, "--home", home, "--password-stdin", ...args],
    env: { NO_COLOR: "1", HECATE_KNOWN_HOSTS: known, ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode([MASTER, ...lines].join("\n") + "\n"));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function pgArgs(): string[] {
  return [
    "--engine",
    "postgres",
    "--host",
    "127.0.0.1",
    "--port",
    String(pg.port),
    "--database",
    pg.database,
    "--user",
    pg.user,
    "--tls",
    "disable",
    "--secret-stdin",
  ];
}

const target = `${sshd.user}@127.0.0.1:${sshd.port}`;

function expect(r: Run, code: number): void {
  nodeAssert.equal(r.code, code, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

Deno.test("server add --ssh with --ssh-secret-stdin, then query through the tunnel", async () => {
  expect(
    await hecate(["server", "add", "tun", ...pgArgs(), "--ssh", target, "--ssh-secret-stdin"], [
      pg.password,
      sshd.password,
    ]),
    0,
  );
  const q = await hecate(["query", "tun", "select 6*7 as answer", "--format", "csv"]);
  expect(q, 0);
  nodeAssert.equal(q.stdout, "answer\n42\n");
  const show = await hecate(["server", "show", "tun", "--json"]);
  const p = JSON.parse(show.stdout);
  nodeAssert.deepEqual(p.ssh, {
    hops: [{ user: sshd.user, host: "127.0.0.1", port: sshd.port, auth: "password" }],
  });
  nodeAssert.equal(p.secrets["ssh.0.password"], "********");
  nodeAssert.ok(!show.stdout.includes(sshd.password));
});

Deno.test("server test reports every hop with its latency", async () => {
  const r = await hecate(["server", "test", "tun"]);
  expect(r, 0);
  const lines = r.stdout.trimEnd().split("\n");
  nodeAssert.match(lines[0]!, new RegExp(`^  ssh hop 1 ${target}: host key ok, ED25519 SHA256:`));
  nodeAssert.ok(lines[0]!.includes(`(known_hosts ${known}:1)`), lines[0]!);
  nodeAssert.match(lines[1]!, /^ {2}ssh hop 1 .*: handshake ok, \d+\.\d ms$/);
  nodeAssert.match(lines[2]!, /^ {2}ssh hop 1 .*: auth ok, \d+\.\d ms$/);
  nodeAssert.match(lines[3]!, /^ {2}ssh hop 1 .*: forward to 127\.0\.0\.1:\d+: ok, \d+\.\d ms$/);
  nodeAssert.match(lines[4]!, /^ {2}database login via 127\.0\.0\.1:\d+: ok, \d+\.\d ms$/);
  nodeAssert.match(lines[5]!, /^ok: tun: connected in \d+\.\d ms, round trip \d+\.\d ms$/);
});

Deno.test("an unknown host: exit 21, the fingerprint, and a pin command that works", async () => {
  const r = await hecate(["query", "tun", "select 1"], [], { HECATE_KNOWN_HOSTS: empty });
  expect(r, 21);
  const [err, hint] = r.stderr.trim().split("\n");
  nodeAssert.equal(
    err,
    `hecate: error: Host key of SSH server 127.0.0.1:${sshd.port} is not known: ` +
      `ED25519 key ${sshd.hostKey.fingerprint}`,
  );
  const pin = `hecate server edit tun --ssh-host-key ${sshd.hostKey.fingerprint}`;
  nodeAssert.ok(hint?.endsWith(pin), String(hint));
  // Run exactly the suggested command, then the same query passes without known_hosts.
  expect(await hecate(pin.split(" ").slice(1)), 0);
  expect(await hecate(["query", "tun", "select 1"], [], { HECATE_KNOWN_HOSTS: empty }), 0);
});

Deno.test("a changed host key: exit 22 and a loud message", async () => {
  const other = await makeKeyPair(`${dir}/other`);
  const [type, key] = other.publicLine.split(" ");
  const changed = `${dir}/known_hosts_changed`;
  await Deno.writeTextFile(changed, `[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
  expect(
    await hecate(["server", "add", "chg", ...pgArgs(), "--ssh", target, "--ssh-secret-stdin"], [
      pg.password,
      sshd.password,
    ]),
    0,
  );
  const r = await hecate(["query", "chg", "select 1"], [], { HECATE_KNOWN_HOSTS: changed });
  expect(r, 22);
  nodeAssert.match(r.stderr, /^hecate: error: HOST KEY CHANGED for SSH server 127\.0\.0\.1:/);
  nodeAssert.ok(r.stderr.includes(other.fingerprint) && r.stderr.includes(`${changed}:1`));
});

Deno.test("a wrong SSH password: exit 3, server test shows the hop that failed", async () => {
  expect(
    await hecate(["server", "add", "badpw", ...pgArgs(), "--ssh", target, "--ssh-secret-stdin"], [
      pg.password,
      "wrong ssh password",
    ]),
    0,
  );
  const r = await hecate(["server", "test", "badpw"]);
  expect(r, 3);
  nodeAssert.match(r.stdout, /ssh hop 1 .*: host key ok/);
  nodeAssert.match(r.stdout, /ssh hop 1 .*: handshake ok/);
  nodeAssert.doesNotMatch(r.stdout, /auth ok/);
  nodeAssert.equal(
    r.stderr,
    `hecate: error: SSH login to SSH server ${target} refused: ` +
      "no configured authentication method was accepted\n",
  );
  nodeAssert.ok(!r.stderr.includes("wrong ssh password"));
});

Deno.test("accept-new from the command line pins on first connect", async () => {
  expect(
    await hecate(
      [
        "server",
        "add",
        "tofu",
        ...pgArgs(),
        "--ssh",
        target,
        "--ssh-accept-new",
        "--ssh-secret-stdin",
      ],
      [pg.password, sshd.password],
    ),
    0,
  );
  expect(await hecate(["query", "tofu", "select 1"], [], { HECATE_KNOWN_HOSTS: empty }), 0);
  const p = JSON.parse((await hecate(["server", "show", "tofu", "--json"])).stdout);
  nodeAssert.equal(p.ssh.hops[0].hostKey, sshd.hostKey.fingerprint);
  nodeAssert.equal(p.ssh.acceptNew, true);
});

Deno.test("jump hosts keep their order; edit --no-ssh removes the tunnel and its secrets", async () => {
  expect(
    await hecate(
      [
        "server",
        "add",
        "jumps",
        ...pgArgs(),
        "--ssh-jump",
        "a@jump1.example:2201",
        "--ssh-jump",
        "b@[::1]:2202",
        "--ssh",
        "c@bastion.example",
        "--ssh-host-key",
        `jump1.example:2201=${sshd.hostKey.fingerprint}`,
        "--ssh-secret-stdin",
      ],
      [pg.password, "p1", "p2", "p3"],
    ),
    0,
  );
  let p = JSON.parse((await hecate(["server", "show", "jumps", "--json"])).stdout);
  nodeAssert.deepEqual(p.ssh.hops, [
    {
      user: "a",
      host: "jump1.example",
      port: 2201,
      auth: "password",
      hostKey: sshd.hostKey.fingerprint,
    },
    { user: "b", host: "::1", port: 2202, auth: "password" },
    { user: "c", host: "bastion.example", auth: "password" },
  ]);
  nodeAssert.deepEqual(Object.keys(p.secrets).sort(), [
    "password",
    "ssh.0.password",
    "ssh.1.password",
    "ssh.2.password",
  ]);
  expect(await hecate(["server", "edit", "jumps", "--no-ssh"]), 0);
  p = JSON.parse((await hecate(["server", "show", "jumps", "--json"])).stdout);
  nodeAssert.equal(p.ssh, undefined);
  nodeAssert.deepEqual(Object.keys(p.secrets), ["password"]);
});

Deno.test("server edit switches the tunnel to an encrypted key, asking its passphrase", async () => {
  const key = await makeKeyPair(`${dir}/id_enc`, { passphrase: "the key phrase" });
  await sshd.authorize(key.publicLine);
  // A wrong passphrase is caught at edit time and changes nothing.
  const bad = await hecate(
    ["server", "edit", "tun", "--ssh-key", key.privateFile, "--ssh-secret-stdin"],
    ["not it"],
  );
  expect(bad, 3);
  nodeAssert.match(bad.stderr, /wrong passphrase/);
  expect(
    await hecate(
      ["server", "edit", "tun", "--ssh-key", key.privateFile, "--ssh-secret-stdin"],
      ["the key phrase"],
    ),
    0,
  );
  const p = JSON.parse((await hecate(["server", "show", "tun", "--json"])).stdout);
  nodeAssert.equal(p.ssh.hops[0].auth, "key");
  nodeAssert.equal(p.ssh.hops[0].keyFile, key.privateFile);
  // The pin set earlier stays, the password secret is gone, the passphrase is stored.
  nodeAssert.equal(p.ssh.hops[0].hostKey, sshd.hostKey.fingerprint);
  nodeAssert.deepEqual(Object.keys(p.secrets).sort(), ["password", "ssh.0.passphrase"]);
  expect(await hecate(["query", "tun", "select 1"]), 0);
});

Deno.test("bad SSH flags: usage errors (2) and invalid profiles (17)", async () => {
  const r1 = await hecate(["server", "add", "x1", ...pgArgs(), "--ssh", "no-user-here"], [
    pg.password,
  ]);
  expect(r1, 2);
  nodeAssert.equal(
    r1.stderr,
    'hecate: error: --ssh takes USER@HOST[:PORT], not "no-user-here"\n',
  );
  const r2 = await hecate(["server", "add", "x2", ...pgArgs(), "--ssh-jump", target], [
    pg.password,
  ]);
  expect(r2, 2);
  const r3 = await hecate(
    ["server", "add", "x3", ...pgArgs(), "--ssh", target, "--ssh-key", `${dir}/missing`],
    [pg.password],
  );
  expect(r3, 17);
  nodeAssert.match(r3.stderr, /^hecate: error: Cannot read the SSH key file ".*missing"\n$/);
  const r4 = await hecate(
    ["server", "add", "x4", ...pgArgs(), "--ssh", target, "--ssh-host-key", "SHA256:short"],
    [pg.password],
  );
  expect(r4, 2);
  const r5 = await hecate(
    [
      "server",
      "add",
      "x5",
      "--engine",
      "sqlite",
      "--database",
      `${dir}/x.db`,
      "--ssh",
      target,
      "--ssh-agent",
    ],
  );
  expect(r5, 17);
  nodeAssert.equal(
    r5.stderr,
    'hecate: error: Profile "x5" is invalid: an SSH tunnel cannot lead to a SQLite file\n',
  );
  const list = await hecate(["server", "list"]);
  for (const n of ["x1", "x2", "x3", "x4", "x5"]) nodeAssert.ok(!list.stdout.includes(n));
});

Deno.test({
  name: "cleanup",
  fn: async () => {
    await sshd.stop();
    await pg.stop();
    await Deno.remove(dir, { recursive: true });
  },
});
