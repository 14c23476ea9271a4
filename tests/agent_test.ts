/**
 * The unlock agent (`hecate unlock` / `hecate lock`, src/agent/), through the real CLI: commands
 * run without a password while it lives and ask again after `lock`, the time limit, the idle
 * limit, a change of the vault file, `passwd` and `rotate`; another user cannot use its socket
 * (the attack is performed as a second uid with socat); its files are private; no secret is in
 * its argv or environment; every step is in the audit trail. A second `unlock` with a wrong
 * credential leaves the running agent as it was; a right one replaces it; racing unlocks leave one
 * agent; a hung agent is replaced and, woken, removes none of the new agent's files.
 */

import assert from "node:assert/strict";
import { totpCode } from "../src/access/totp.ts";
import { openVault } from "../src/hecate.ts";
import { agentPaths, type AgentSession } from "../src/agent/paths.ts";
import { VAULT_FILE } from "../src/vault/store.ts";
import {
  auditLines,
  type CliRun,
  passwordFile,
  PW,
  runHecate,
  vaultWith,
} from "./support/access.ts";
import { hasSoftHsm, SOFTHSM_MODULE, softhsmToken } from "./support/softhsm.ts";

const QUERY = ["query", "a", "select 1 as x"];

/** A home with one SQLite profile `a`, and a password file beside it (not inside). */
async function withVault(fn: (home: string, pwFile: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hecate-agent-test-" });
  await Deno.chmod(dir, 0o700);
  const home = `${dir}/home`;
  await Deno.mkdir(home, { mode: 0o700 });
  try {
    await (await vaultWith(home, ["a"])).close();
    await fn(home, await passwordFile(dir));
  } finally {
    const pid = session(home)?.pid;
    if (pid !== undefined && alive(pid)) {
      Deno.kill(pid, "SIGKILL");
      await waitGone(pid, 5000);
    }
    await removeWithRetry(dir);
  }
}

/** Removes a test directory; an agent ending on its own (after `lock` answered) may still be closing files. */
async function removeWithRetry(dir: string): Promise<void> {
  for (let i = 0;; i++) {
    try {
      return await Deno.remove(dir, { recursive: true });
    } catch (e) {
      if (i >= 20) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function session(home: string): AgentSession | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(agentPaths(home).session));
  } catch {
    return undefined;
  }
}

/** Whether a process runs (a zombie left for an init that does not reap counts as ended). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > until) throw new Error(`agent ${pid} still alive after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function unlock(home: string, pwFile: string, ...limits: string[]): Promise<number> {
  const r = await runHecate(["--home", home, "unlock", ...limits], {
    env: { HECATE_PASSWORD_FILE: pwFile },
  });
  assert.equal(r.code, 0, r.stderr);
  const s = session(home);
  assert.ok(s && alive(s.pid), "an agent runs after unlock");
  return s.pid;
}

/** `hecate query` with no password source and no terminal: only the agent can serve it. */
function query(home: string) {
  return runHecate(["--home", home, ...QUERY]);
}

async function assertAsks(home: string, why: string): Promise<void> {
  const r = await query(home);
  assert.equal(r.code, 19, `${why}: falls back to asking (no_credential): ${r.stderr}`);
  assert.match(r.stderr, /No master password given/);
}

/**
 * The result of a command run while agent `stopped` is stopped (SIGSTOP); fails, after waking the
 * agent so the command can end, when it waited 30 s for it.
 */
async function withoutWaitingFor(
  stopped: number,
  what: string,
  run: Promise<CliRun>,
): Promise<CliRun> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((res) => timer = setTimeout(() => res(undefined), 30_000));
  const got = await Promise.race([run, late]);
  clearTimeout(timer);
  if (got !== undefined) return got;
  Deno.kill(stopped, "SIGCONT");
  await run;
  assert.fail(`${what} waited for the hung agent`);
}

async function endReasons(home: string): Promise<string[]> {
  return (await auditLines(home)).filter((e) => e.event === "agent.end").map((e) => `${e.reason}`);
}

Deno.test("agent: commands run without a password while it lives; lock ends it at once; lock again is a note", async () => {
  await withVault(async (home, pwFile) => {
    await assertAsks(home, "before unlock");
    // A wrong password: the unlock's own code, and no agent left behind.
    const wrong = `${pwFile}.wrong`;
    await Deno.writeTextFile(wrong, "not the password at all, no\n", { mode: 0o600 });
    const bad = await runHecate(["--home", home, "unlock"], {
      env: { HECATE_PASSWORD_FILE: wrong },
    });
    assert.equal(bad.code, 3, bad.stderr);
    assert.equal(session(home), undefined);
    await assertAsks(home, "after a failed unlock");
    const pid = await unlock(home, pwFile, "--for", "10m", "--idle", "5m");
    for (let i = 0; i < 2; i++) {
      const r = await query(home);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "x\n1\n");
    }
    // Listing and showing profiles (no secret crosses: summaries, a masked profile).
    const list = await runHecate(["--home", home, "server", "list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^a\s+sqlite\s+\//);
    const show = await runHecate(["--home", home, "server", "show", "a", "--json"]);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).name, "a");
    assert.ok(!show.stdout.includes("secret-of-a"), "the secret stays masked");
    const noShow = await runHecate(["--home", home, "server", "show", "nope"]);
    assert.equal(noShow.code, 5, noShow.stderr);
    // An error of the operation comes back under its own code, not as "no agent".
    const missing = await runHecate(["--home", home, "query", "nope", "select 1"]);
    assert.equal(missing.code, 5, missing.stderr);
    const lock = await runHecate(["--home", home, "lock"]);
    assert.equal(lock.code, 0);
    assert.match(lock.stderr, /locked/);
    await waitGone(pid, 5000);
    await assertAsks(home, "after lock");
    assert.equal(session(home), undefined, "the session file is removed");
    const again = await runHecate(["--home", home, "lock"]);
    assert.equal(again.code, 0);
    assert.match(again.stderr, /note: no unlock agent was running/);

    const events = (await auditLines(home)).map((e) => `${e.event}:${e.outcome}`);
    const start = events.indexOf("agent.start:ok");
    assert.ok(start > 0 && events[start - 1] === "unlock:ok", events.join(" "));
    assert.equal(events.filter((e) => e === "agent.use:ok").length, 6);
    assert.deepEqual(await endReasons(home), ["lock"]);
    // Each served query: agent.use, then profile.read, before the query ran.
    const i = events.indexOf("agent.use:ok");
    assert.deepEqual(events.slice(i, i + 3), ["agent.use:ok", "profile.read:ok", "query:ok"]);
    assert.ok(!(await Deno.readTextFile(`${home}/audit.jsonl`)).includes(PW));
  });
});

Deno.test("agent: its directory is 0700, socket and session file 0600; no secret in its argv or environment", async () => {
  await withVault(async (home, pwFile) => {
    const pid = await unlock(home, pwFile);
    const p = agentPaths(home);
    assert.equal((await Deno.stat(p.dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.lstat(p.socket)).mode! & 0o777, 0o600);
    assert.ok((await Deno.lstat(p.socket)).isSocket);
    assert.equal((await Deno.stat(p.session)).mode! & 0o777, 0o600);
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
    assert.match(cmdline, /__agent/);
    for (const text of [cmdline, environ]) {
      assert.ok(!text.includes(PW), "no master password");
      assert.ok(!text.includes("HECATE_PASSWORD_FILE"), "no password file's name");
      assert.ok(!text.includes(session(home)!.token), "no session token");
    }
  });
});

Deno.test("agent: ends at its time limit and when idle; commands then ask again", async () => {
  await withVault(async (home, pwFile) => {
    let pid = await unlock(home, pwFile, "--for", "3s", "--idle", "1m");
    assert.equal((await query(home)).code, 0);
    await waitGone(pid, 10_000);
    await assertAsks(home, "after the time limit");

    pid = await unlock(home, pwFile, "--for", "1m", "--idle", "2s");
    assert.equal((await query(home)).code, 0);
    await waitGone(pid, 10_000);
    await assertAsks(home, "after the idle limit");
    assert.deepEqual(await endReasons(home), ["limit", "idle"]);
  });
});

Deno.test("agent: ends when the vault file is replaced under it, on a restore, on passwd and on rotate", async () => {
  await withVault(async (home, pwFile) => {
    // Another process replaces the file (same bytes, new inode): a restore or a copy from elsewhere.
    let pid = await unlock(home, pwFile);
    const file = `${home}/${VAULT_FILE}`;
    await Deno.copyFile(file, `${file}.copy`);
    await Deno.rename(`${file}.copy`, file);
    await assertAsks(home, "after the vault file changed"); // at once, not at the next watch tick
    await waitGone(pid, 5000);

    // A restore from a backup bundle.
    const bundle = `${home}/../bundle.hcb`;
    const made = await runHecate(["--home", home, "backup", "create", "--output", bundle], {
      env: { HECATE_PASSWORD_FILE: pwFile },
    });
    assert.equal(made.code, 0, made.stderr);
    pid = await unlock(home, pwFile);
    assert.equal((await query(home)).code, 0);
    const restored = await runHecate(["--home", home, "backup", "restore", bundle], {
      env: { HECATE_PASSWORD_FILE: pwFile },
    });
    assert.equal(restored.code, 0, restored.stderr);
    await waitGone(pid, 5000);
    await assertAsks(home, "after a restore");

    pid = await unlock(home, pwFile);
    const newPw = `${pwFile}.new`;
    await Deno.writeTextFile(newPw, "a brand new passphrase: cobalt lantern orbit\n", {
      mode: 0o600,
    });
    const passwd = await runHecate(["--home", home, "passwd"], {
      env: { HECATE_PASSWORD_FILE: pwFile, HECATE_NEW_PASSWORD_FILE: newPw },
    });
    assert.equal(passwd.code, 0, passwd.stderr);
    await waitGone(pid, 5000);
    await assertAsks(home, "after passwd");

    pid = await unlock(home, newPw);
    const rotate = await runHecate(["--home", home, "rotate"], {
      env: { HECATE_PASSWORD_FILE: newPw },
    });
    assert.equal(rotate.code, 0, rotate.stderr);
    await waitGone(pid, 5000);
    await assertAsks(home, "after rotate");
    assert.deepEqual(await endReasons(home), ["vault_changed", "vault_changed", "lock", "lock"]);
  });
});

Deno.test("agent: a dead socket, a foreign session file and a wrong token are no agent: commands fall back", async () => {
  await withVault(async (home, pwFile) => {
    const pid = await unlock(home, pwFile);
    const p = agentPaths(home);
    const real = await Deno.readTextFile(p.session);
    // A session file others can read is not trusted (not even this agent's own).
    await Deno.chmod(p.session, 0o644);
    await assertAsks(home, "session file 0644");
    await Deno.chmod(p.session, 0o600);
    // A wrong token: the agent closes the connection; the command asks.
    await Deno.writeTextFile(p.session, real.replace(/"token":"[^"]+"/, '"token":"guessed"'));
    await assertAsks(home, "wrong token");
    await Deno.writeTextFile(p.session, real);
    assert.equal((await query(home)).code, 0);
    // A dead agent (killed, its files left behind): the password is asked for, or used.
    Deno.kill(pid, "SIGKILL");
    await waitGone(pid, 5000);
    await assertAsks(home, "dead socket");
    const withPw = await runHecate(["--home", home, ...QUERY], {
      env: { HECATE_PASSWORD_FILE: pwFile },
    });
    assert.equal(withPw.code, 0, withPw.stderr);
    const lock = await runHecate(["--home", home, "lock"]);
    assert.equal(lock.code, 0);
    assert.match(lock.stderr, /no unlock agent/);
    const fails = (await auditLines(home)).filter((e) =>
      e.event === "agent.use" && e.outcome === "fail"
    );
    assert.deepEqual(fails.map((e) => e.reason), ["bad_token"]);
  });
});

Deno.test("agent: the vault's one-time code is asked once, at unlock, not by each command", async () => {
  await withVault(async (home, pwFile) => {
    const vault = await openVault({ home, password: PW, lockout: "off" });
    const setup = await vault.totp.beginSetup();
    const recovery = await vault.totp.enable(setup, await totpCode(setup.secret, new Date()));
    await vault.close();
    const noCode = await runHecate(["--home", home, "unlock"], {
      env: { HECATE_PASSWORD_FILE: pwFile },
    });
    assert.equal(noCode.code, 16, noCode.stderr);
    assert.equal(session(home), undefined, "no agent without the code");
    const r = await runHecate(["--home", home, "unlock"], {
      env: { HECATE_PASSWORD_FILE: pwFile, HECATE_TOTP: recovery[0]! },
    });
    assert.equal(r.code, 0, r.stderr);
    for (let i = 0; i < 2; i++) assert.equal((await query(home)).code, 0, "no code asked");
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
  });
});

const OTHER_USER = "hecate-agent-other";

async function ensureOtherUser(): Promise<void> {
  const passwd = await Deno.readTextFile("/etc/passwd");
  if (passwd.split("\n").some((l) => l.startsWith(`${OTHER_USER}:`))) return;
  const out = await new Deno.Command("/usr/sbin/useradd", {
    args: [
      "--system",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      OTHER_USER,
    ],
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

/** Runs `argv` as the other user, with `stdin`. */
async function asOther(
  argv: string[],
  stdin = "",
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command("/usr/sbin/runuser", {
    args: ["-u", OTHER_USER, "--", ...argv],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

Deno.test({
  name: "agent: another user cannot use the socket (dir 0700, socket 0600, then the session token)",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    await ensureOtherUser();
    await withVault(async (home, pwFile) => {
      await unlock(home, pwFile);
      const p = agentPaths(home);
      const dir = home.slice(0, home.lastIndexOf("/"));
      const request = JSON.stringify({
        v: 1,
        token: "guessed",
        op: "query",
        profile: "a",
        sql: "select 1",
        params: [],
        format: "csv",
        color: false,
      }) + "\n";
      const connect = () =>
        asOther(["/usr/bin/socat", "-t", "2", "-", `UNIX-CONNECT:${p.socket}`], request);

      // As set up: the 0700 directories stop the other user before the socket.
      let r = await connect();
      assert.notEqual(r.code, 0);
      assert.match(r.err, /Permission denied/);
      // Directories opened for traversal: the socket's own 0600 mode refuses the connect.
      for (const d of [dir, home, p.dir]) await Deno.chmod(d, 0o711);
      r = await connect();
      assert.notEqual(r.code, 0);
      assert.match(r.err, /Permission denied/);
      // Nor can the other user read the session token.
      const cat = await asOther(["/bin/cat", p.session]);
      assert.notEqual(cat.code, 0);
      // Even with the socket opened to everyone, a request without the session's token gets
      // nothing, and the attempt is in the trail.
      await Deno.chmod(p.socket, 0o666);
      r = await connect();
      assert.equal(r.out, "", "no answer without the token");
      const fails = (await auditLines(home)).filter((e) =>
        e.event === "agent.use" && e.outcome === "fail"
      );
      assert.deepEqual(fails.map((e) => e.reason), ["bad_token"]);
      for (const d of [dir, home, p.dir]) await Deno.chmod(d, 0o700);
      await Deno.chmod(p.socket, 0o600);
      assert.equal((await query(home)).code, 0, "the owner is still served");
      assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
    });
  },
});

Deno.test("agent: a credential on the command line wins over the agent; SIGINT is ignored, SIGTERM ends it", async () => {
  await withVault(async (home, pwFile) => {
    const vault = await openVault({ home, password: PW, lockout: "off" });
    await Deno.writeFile(`${home}/b.db`, new Uint8Array(), { mode: 0o600 });
    await vault.profiles.add({ name: "b", engine: "sqlite", database: `${home}/b.db` });
    const key = await vault.apiKeys.create({ name: "only-b", profiles: ["b"], expires: null });
    await vault.close();
    const pid = await unlock(home, pwFile);
    // The key's scope holds, although the agent could serve profile a.
    const scoped = await runHecate(["--home", home, ...QUERY], { env: { HECATE_API_KEY: key } });
    assert.equal(scoped.code, 5, `the API key's scope, not the agent, decides: ${scoped.stderr}`);
    assert.equal((await query(home)).code, 0);
    // Ctrl-C in the shell that started it does not end it.
    Deno.kill(pid, "SIGINT");
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(alive(pid));
    assert.equal((await query(home)).code, 0);
    Deno.kill(pid, "SIGTERM");
    await waitGone(pid, 5000);
    await assertAsks(home, "after SIGTERM");
    assert.deepEqual(await endReasons(home), ["signal"]);
  });
});

Deno.test("agent: a profile's own one-time code comes from the command (the agent cannot ask)", async () => {
  await withVault(async (home, pwFile) => {
    const vault = await openVault({ home, password: PW, lockout: "off" });
    const setup = await vault.totp.beginSetup("a");
    const recovery = await vault.totp.enable(setup, await totpCode(setup.secret, new Date()));
    await vault.close();
    await unlock(home, pwFile);
    const none = await query(home);
    assert.equal(none.code, 16, `no code: totp_failed from the agent: ${none.stderr}`);
    const withCode = await runHecate(["--home", home, ...QUERY], {
      env: { HECATE_TOTP: recovery[0]! },
    });
    assert.equal(withCode.code, 0, withCode.stderr);
    assert.equal(withCode.stdout, "x\n1\n");
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
  });
});

// ---- Unlocking the agent with an age identity or a token (not the master password) ----

/** An age key pair made by `age-keygen` (file mode 0600), its secret line and its recipient. */
async function ageKey(dir: string, name: string) {
  const file = `${dir}/${name}.key`;
  const made = await new Deno.Command("age-keygen", { args: ["-o", file], stderr: "piped" })
    .output();
  assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
  const text = await Deno.readTextFile(file);
  const secret = text.split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-1"))!;
  const recipient = text.match(/public key: (age1\S+)/)![1]!;
  return { file, secret, recipient };
}

/** What a live agent process shows the rest of the system: argv and environment. */
async function procOf(pid: number): Promise<string> {
  const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
  assert.match(cmdline, /__agent/, "the process read is the agent");
  return cmdline + "\n" + await Deno.readTextFile(`/proc/${pid}/environ`);
}

function actorsOf(lines: Record<string, unknown>[], event: string): string[] {
  return lines.filter((e) => e.event === event && e.outcome === "ok").map((e) =>
    (e.actor as { kind: string }).kind
  );
}

Deno.test("agent: --identity / HECATE_IDENTITY unlock serves commands as the teammate; a wrong identity fails as one-shot does and leaves no agent", async () => {
  await withVault(async (home, pwFile) => {
    const dir = home.slice(0, home.lastIndexOf("/"));
    const alice = await ageKey(dir, "alice");
    const mallory = await ageKey(dir, "mallory");
    const added = await runHecate(
      ["--home", home, "slot", "add", "age", alice.recipient, "--label", "alice"],
      { env: { HECATE_PASSWORD_FILE: pwFile } },
    );
    assert.equal(added.code, 0, added.stderr);

    // A key with no slot: the one-shot open's code, then the same from unlock, and no agent.
    const oneShot = await runHecate(["--home", home, "--identity", mallory.file, ...QUERY]);
    assert.equal(oneShot.code, 3, oneShot.stderr);
    const wrong = await runHecate(["--home", home, "--identity", mallory.file, "unlock"]);
    assert.equal(wrong.code, oneShot.code, wrong.stderr);
    assert.equal(session(home), undefined, "no agent after a refused identity");
    // A file that holds no identity: usage, as one-shot.
    const junk = `${dir}/junk.key`;
    await Deno.writeTextFile(junk, "not an age key\n", { mode: 0o600 });
    const junkOne = await runHecate(["--home", home, "--identity", junk, ...QUERY]);
    const junkUnlock = await runHecate(["--home", home, "--identity", junk, "unlock"]);
    assert.equal(junkOne.code, 2, junkOne.stderr);
    assert.equal(junkUnlock.code, junkOne.code, junkUnlock.stderr);
    assert.equal(session(home), undefined);
    // The right key in a file others can read: refused before it is read (insecure_home).
    await Deno.chmod(alice.file, 0o644);
    const looseOne = await runHecate(["--home", home, "--identity", alice.file, ...QUERY]);
    const looseUnlock = await runHecate(["--home", home, "--identity", alice.file, "unlock"]);
    assert.equal(looseOne.code, 11, looseOne.stderr);
    assert.equal(looseUnlock.code, looseOne.code, looseUnlock.stderr);
    assert.equal(session(home), undefined);
    await Deno.chmod(alice.file, 0o600);
    await assertAsks(home, "after refused identities");

    // The teammate's key by flag: commands with no credential at all go through the agent.
    const up = await runHecate(["--home", home, "--identity", alice.file, "unlock"]);
    assert.equal(up.code, 0, up.stderr);
    let pid = session(home)!.pid;
    assert.ok(alive(pid));
    const q = await query(home);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout, "x\n1\n");
    const list = await runHecate(["--home", home, "server", "list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^a\s+sqlite/);
    // An explicit credential still wins: the wrong key is refused, not served by the agent.
    const explicit = await runHecate(["--home", home, "--identity", mallory.file, ...QUERY]);
    assert.equal(explicit.code, 3, explicit.stderr);
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
    await waitGone(pid, 5000);
    await assertAsks(home, "after lock");

    // By HECATE_IDENTITY: neither the key nor the variable reaches the live agent's argv or
    // environment; the key is in no output and not in the trail.
    const byEnv = await runHecate(["--home", home, "unlock"], {
      env: { HECATE_IDENTITY: alice.file },
    });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    pid = session(home)!.pid;
    const proc = await procOf(pid);
    const keyBody = alice.secret.slice("AGE-SECRET-KEY-1".length);
    for (const text of [proc, up.stdout, up.stderr, byEnv.stdout, byEnv.stderr, wrong.stderr]) {
      assert.ok(!text.includes(keyBody), "the identity's key leaked");
    }
    assert.ok(!proc.includes("HECATE_IDENTITY") && !proc.includes(alice.file), "no key path");
    assert.equal((await query(home)).code, 0);
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
    await waitGone(pid, 5000);

    const lines = await auditLines(home);
    assert.ok(!(await Deno.readTextFile(`${home}/audit.jsonl`)).includes(keyBody));
    // The records name the teammate's slot, as a one-shot identity open does.
    assert.deepEqual(actorsOf(lines, "agent.start"), ["age", "age"]);
    assert.deepEqual(actorsOf(lines, "agent.end"), ["age", "age"]);
    assert.ok(actorsOf(lines, "agent.use").length >= 3);
    assert.ok(actorsOf(lines, "agent.use").every((k) => k === "age"));
    const start = lines.find((e) => e.event === "agent.start")!;
    assert.equal((start.actor as { name?: string }).name, "alice");
    const i = lines.indexOf(start);
    assert.equal(lines[i - 1]!.event, "unlock");
    assert.equal((lines[i - 1]!.actor as { kind: string }).kind, "age");
  });
});

Deno.test("agent: with vault TOTP, an identity unlock asks the code once (a recovery code stays the owner's)", async () => {
  await withVault(async (home) => {
    const dir = home.slice(0, home.lastIndexOf("/"));
    const alice = await ageKey(dir, "alice");
    const vault = await openVault({ home, password: PW, lockout: "off" });
    await vault.slots.addAge(alice.recipient, { label: "alice" });
    const setup = await vault.totp.beginSetup();
    // Enabled with the previous step's code, so the current one is still unused.
    const before = new Date(Date.now() - 30_000);
    const recovery = await vault.totp.enable(setup, await totpCode(setup.secret, before));
    await vault.close();
    const id = ["--home", home, "--identity", alice.file];
    const none = await runHecate([...id, "unlock"]);
    assert.equal(none.code, 16, none.stderr);
    const byRecovery = await runHecate([...id, "unlock"], { env: { HECATE_TOTP: recovery[0]! } });
    assert.equal(byRecovery.code, 16, byRecovery.stderr);
    assert.equal(session(home), undefined, "no agent without a code");
    const code = await totpCode(setup.secret, new Date());
    const r = await runHecate([...id, "unlock"], { env: { HECATE_TOTP: code } });
    assert.equal(r.code, 0, r.stderr);
    for (let i = 0; i < 2; i++) assert.equal((await query(home)).code, 0, "no code asked again");
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
  });
});

Deno.test("agent: an API key is still refused for unlock (it needs no agent), as is an identity with a token", async () => {
  await withVault(async (home, pwFile) => {
    const vault = await openVault({ home, password: PW, lockout: "off" });
    const key = await vault.apiKeys.create({ name: "k", profiles: ["a"], expires: null });
    await vault.close();
    const dir = home.slice(0, home.lastIndexOf("/"));
    const keyFile = `${dir}/api.key`;
    await Deno.writeTextFile(keyFile, key + "\n", { mode: 0o600 });
    const byEnv = await runHecate(["--home", home, "unlock"], {
      env: { HECATE_API_KEY: key, HECATE_PASSWORD_FILE: pwFile },
    });
    const byFile = await runHecate(["--home", home, "--api-key-file", keyFile, "unlock"], {
      env: { HECATE_PASSWORD_FILE: pwFile },
    });
    for (const r of [byEnv, byFile]) {
      assert.equal(r.code, 19, r.stderr);
      assert.match(r.stderr, /unlock agent needs the master password, an age identity or a token/);
      assert.ok(!r.stderr.includes(key));
    }
    const alice = await ageKey(dir, "alice");
    const both = await runHecate(
      ["--home", home, "--identity", alice.file, "--pkcs11", "/nonexistent.so", "unlock"],
    );
    assert.equal(both.code, 2, both.stderr);
    assert.equal(session(home), undefined, "no agent");
  });
});

/** A PIN no output, argv, environment or trail may contain. */
const PIN = "agent-pin-canary-3f9e1c";
const WRONG_PIN = "agent-wrong-pin-canary-a07d";

Deno.test({
  name:
    "agent: --pkcs11 unlock (SoftHSM2) serves commands; a wrong PIN fails as one-shot does and leaves no agent; the PIN is nowhere",
  ignore: !hasSoftHsm,
  fn: async () => {
    await withVault(async (home, pwFile) => {
      const dir = home.slice(0, home.lastIndexOf("/"));
      const env = await softhsmToken(`${dir}/hsm`, "agent-t1", PIN);
      const added = await runHecate(
        [
          "--home",
          home,
          "slot",
          "add",
          "pkcs11",
          "--module",
          SOFTHSM_MODULE,
          "--token",
          "agent-t1",
          "--pin-stdin",
        ],
        { env: { ...env, HECATE_PASSWORD_FILE: pwFile }, stdin: `${PIN}\n` },
      );
      assert.equal(added.code, 0, added.stderr);
      const token = ["--home", home, "--pkcs11", SOFTHSM_MODULE, "--pin-stdin"];

      // A wrong PIN: the one-shot open's code, then the same from unlock, and no agent.
      const oneShot = await runHecate([...token, ...QUERY], { env, stdin: `${WRONG_PIN}\n` });
      assert.equal(oneShot.code, 3, oneShot.stderr);
      const wrong = await runHecate([...token, "unlock"], { env, stdin: `${WRONG_PIN}\n` });
      assert.equal(wrong.code, oneShot.code, wrong.stderr);
      assert.equal(session(home), undefined, "no agent after a wrong PIN");
      await assertAsks(home, "after a wrong PIN");

      // The right PIN: later commands need neither the token's module nor the PIN.
      const up = await runHecate([...token, "unlock"], { env, stdin: `${PIN}\n` });
      assert.equal(up.code, 0, up.stderr);
      const pid = session(home)!.pid;
      assert.ok(alive(pid));
      const proc = await procOf(pid);
      for (const text of [proc, up.stdout, up.stderr, wrong.stdout, wrong.stderr]) {
        assert.ok(!text.includes(PIN) && !text.includes(WRONG_PIN), "a PIN leaked");
      }
      const q = await query(home);
      assert.equal(q.code, 0, q.stderr);
      assert.equal(q.stdout, "x\n1\n");
      const list = await runHecate(["--home", home, "server", "list"]);
      assert.equal(list.code, 0, list.stderr);
      assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
      await waitGone(pid, 5000);
      await assertAsks(home, "after lock");

      const trail = await Deno.readTextFile(`${home}/audit.jsonl`);
      assert.ok(!trail.includes(PIN) && !trail.includes(WRONG_PIN), "a PIN is in the trail");
      const lines = await auditLines(home);
      assert.deepEqual(actorsOf(lines, "agent.start"), ["pkcs11"]);
      assert.deepEqual(actorsOf(lines, "agent.end"), ["pkcs11"]);
      const start = lines.find((e) => e.event === "agent.start")!;
      assert.equal((start.actor as { name?: string }).name, "agent-t1");
      const before = lines[lines.indexOf(start) - 1]!;
      assert.equal(before.event, "unlock");
      assert.equal((before.actor as { kind: string }).kind, "pkcs11");
    });
  },
});

// ---- A second `hecate unlock` while an agent runs (issue 18) ----

/** What identifies the running agent from outside: its pid, session file and socket inode. */
async function agentState(home: string) {
  const p = agentPaths(home);
  return {
    pid: session(home)?.pid,
    session: await Deno.readTextFile(p.session).catch(() => ""),
    socketIno: (await Deno.lstat(p.socket).catch(() => undefined))?.ino,
  };
}

/** The names in `HOME/agent/` (no temporary socket or session file left behind). */
async function agentDirNames(home: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(agentPaths(home).dir)) names.push(e.name);
  return names.sort();
}

/** The agent pid `hecate unlock` reported on stderr. */
function reportedPid(stderr: string): number {
  const m = stderr.match(/agent pid (\d+)/);
  assert.ok(m, stderr);
  return Number(m[1]);
}

/** Query and list, with no credential: only a live agent can serve them. */
async function assertServed(home: string, why: string): Promise<void> {
  const q = await query(home);
  assert.equal(q.code, 0, `${why}: query served: ${q.stderr}`);
  assert.equal(q.stdout, "x\n1\n");
  const list = await runHecate(["--home", home, "server", "list"]);
  assert.equal(list.code, 0, `${why}: server list served: ${list.stderr}`);
  assert.match(list.stdout, /^a\s+sqlite/);
}

Deno.test("agent: a failed re-unlock (wrong password, wrong identity) leaves the running agent serving, untouched", async () => {
  await withVault(async (home, pwFile) => {
    const dir = home.slice(0, home.lastIndexOf("/"));
    const pid = await unlock(home, pwFile, "--for", "10m", "--idle", "5m");
    const before = await agentState(home);
    assert.equal(before.pid, pid);
    const names = await agentDirNames(home);

    // The user mistypes the password when extending the session.
    const wrong = `${pwFile}.wrong`;
    await Deno.writeTextFile(wrong, "not the password at all, no\n", { mode: 0o600 });
    const bad = await runHecate(["--home", home, "unlock", "--for", "1h"], {
      env: { HECATE_PASSWORD_FILE: wrong },
    });
    assert.equal(bad.code, 3, bad.stderr);
    // An age identity that has no slot in this vault.
    const mallory = await ageKey(dir, "mallory");
    const badId = await runHecate(["--home", home, "--identity", mallory.file, "unlock"]);
    assert.equal(badId.code, 3, badId.stderr);

    // Same process, same session file (pid, token, expiry), same socket, nothing left over.
    assert.ok(alive(pid), "the running agent was ended by a failed unlock");
    assert.deepEqual(await agentState(home), before);
    assert.deepEqual(await agentDirNames(home), names);
    await assertServed(home, "after failed re-unlocks");
    const lines = await auditLines(home);
    assert.deepEqual(await endReasons(home), [], "no agent.end recorded");
    assert.equal(lines.filter((e) => e.event === "agent.start").length, 1);
    assert.equal(lines.filter((e) => e.event === "unlock" && e.outcome === "fail").length, 2);
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
    await waitGone(pid, 5000);
  });
});

Deno.test("agent: a successful re-unlock replaces the running agent: old pid ends (reason replaced), new one serves", async () => {
  await withVault(async (home, pwFile) => {
    const old = await unlock(home, pwFile, "--for", "2m");
    const before = await agentState(home);
    const r = await runHecate(["--home", home, "unlock", "--for", "1h"], {
      env: { HECATE_PASSWORD_FILE: pwFile },
    });
    assert.equal(r.code, 0, r.stderr);
    const pid = reportedPid(r.stderr);
    assert.notEqual(pid, old);
    await waitGone(old, 5000);
    assert.ok(alive(pid));
    const after = await agentState(home);
    assert.equal(after.pid, pid, "the session file names the new agent");
    assert.notEqual(after.session, before.session);
    assert.notEqual(after.socketIno, before.socketIno);
    assert.deepEqual(await agentDirNames(home), ["agent.sock", "handover.lock", "session.json"]);
    await assertServed(home, "after the re-unlock");

    const lines = await auditLines(home);
    const ends = lines.filter((e) => e.event === "agent.end");
    assert.deepEqual(ends.map((e) => [e.reason, (e.detail as { pid: number }).pid]), [
      ["replaced", old],
    ]);
    const starts = lines.filter((e) => e.event === "agent.start");
    assert.deepEqual(starts.map((e) => (e.detail as { pid: number }).pid), [old, pid]);
    // Order: the new unlock, the old agent's end, the new agent's start; then its uses.
    const i = lines.indexOf(ends[0]!);
    assert.deepEqual(
      lines.slice(i - 1, i + 2).map((e) => `${e.event}:${e.outcome}`),
      ["unlock:ok", "agent.end:ok", "agent.start:ok"],
    );
    const uses = lines.slice(i).filter((e) => e.event === "agent.use");
    assert.ok(uses.length >= 2);
    assert.ok(uses.every((e) => (e.detail as { pid: number }).pid === pid), "served by the new");
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
    await waitGone(pid, 5000);
    assert.deepEqual(await endReasons(home), ["replaced", "lock"]);
  });
});

Deno.test("agent: two re-unlocks racing leave exactly one agent serving; the others end as replaced", async () => {
  await withVault(async (home, pwFile) => {
    const old = await unlock(home, pwFile);
    const env = { HECATE_PASSWORD_FILE: pwFile };
    const [a, b] = await Promise.all([
      runHecate(["--home", home, "unlock"], { env }),
      runHecate(["--home", home, "unlock"], { env }),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const pids = [reportedPid(a.stderr), reportedPid(b.stderr)];
    const winner = session(home)!.pid;
    assert.ok(pids.includes(winner), `the session names one of them: ${winner} ${pids}`);
    const loser = pids.find((p) => p !== winner)!;
    await waitGone(old, 5000);
    await waitGone(loser, 5000);
    assert.ok(alive(winner));
    await assertServed(home, "after racing unlocks");
    const ends = (await auditLines(home)).filter((e) => e.event === "agent.end");
    assert.deepEqual(
      ends.map((e) => [(e.detail as { pid: number }).pid, e.reason]).sort(),
      [[old, "replaced"], [loser, "replaced"]].sort(),
    );
    assert.deepEqual(await agentDirNames(home), ["agent.sock", "handover.lock", "session.json"]);
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
    await waitGone(winner, 5000);
  });
});

Deno.test("agent: a hung agent is replaced; without ps it is not killed, and when it wakes it ends without removing the new agent's socket or session", async () => {
  await withVault(async (home, pwFile) => {
    const old = await unlock(home, pwFile);
    Deno.kill(old, "SIGSTOP");
    let r: CliRun;
    try {
      // The new agent's ping times out (the old one cannot answer): it takes the place. With no
      // `ps` on the PATH nothing tells the old agent from another process: it is not signalled.
      r = await withoutWaitingFor(
        old,
        "unlock",
        runHecate(["--home", home, "unlock"], {
          env: { HECATE_PASSWORD_FILE: pwFile, PATH: "/nonexistent" },
        }),
      );
    } finally {
      Deno.kill(old, "SIGCONT");
    }
    assert.equal(r.code, 0, r.stderr);
    const pid = reportedPid(r.stderr);
    const placed = await agentState(home);
    assert.equal(placed.pid, pid);
    // Woken, the old agent sees its socket is not its own any more and ends.
    await waitGone(old, 5000);
    assert.deepEqual(await agentState(home), placed, "the new agent's files are untouched");
    await assertServed(home, "after the hung agent ended");
    const ends = (await auditLines(home)).filter((e) => e.event === "agent.end");
    assert.deepEqual(ends.map((e) => [(e.detail as { pid: number }).pid, e.reason]), [
      [old, "socket_gone"],
    ]);
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
    await waitGone(pid, 5000);
  });
});

Deno.test("agent: a hung agent replaced by a new unlock is killed (checked by pid and start time) and its end recorded", async () => {
  await withVault(async (home, pwFile) => {
    const old = await unlock(home, pwFile);
    Deno.kill(old, "SIGSTOP");
    try {
      const r = await runHecate(["--home", home, "unlock"], {
        env: { HECATE_PASSWORD_FILE: pwFile },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`replaced \\(pid ${old}\\) did not answer; it was killed`));
      assert.equal(alive(old), false, "the hung agent is gone without being woken");
      const pid = reportedPid(r.stderr);
      assert.equal(session(home)!.pid, pid);
      await assertServed(home, "after the hung agent was killed");
      const ends = (await auditLines(home)).filter((e) => e.event === "agent.end");
      assert.deepEqual(ends.map((e) => [e.reason, e.detail, e.actor]), [
        ["killed", { pid: old, by: "unlock" }, { kind: "password" }],
      ]);
      assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
      await waitGone(pid, 5000);
    } finally {
      if (alive(old)) Deno.kill(old, "SIGCONT");
    }
  });
});

Deno.test("agent: unlock over a killed agent's leftover socket and session file takes their place", async () => {
  await withVault(async (home, pwFile) => {
    const dead = await unlock(home, pwFile);
    Deno.kill(dead, "SIGKILL");
    await waitGone(dead, 5000);
    const left = await agentState(home);
    assert.equal(left.pid, dead, "its files stay behind");
    const pid = await unlock(home, pwFile);
    assert.notEqual(pid, dead);
    const now = await agentState(home);
    assert.notEqual(now.socketIno, left.socketIno);
    assert.deepEqual(await agentDirNames(home), ["agent.sock", "handover.lock", "session.json"]);
    await assertServed(home, "after unlock over leftovers");
    assert.deepEqual(await endReasons(home), [], "a killed agent records no end");
    assert.equal((await runHecate(["--home", home, "lock"])).code, 0);
    await waitGone(pid, 5000);
  });
});

Deno.test("agent: lock of a hung agent does not wait forever: it kills it (checked by pid and start time), removes its files and records its end", async () => {
  await withVault(async (home, pwFile) => {
    const old = await unlock(home, pwFile);
    const started = session(home)!.started;
    assert.match(
      started ?? "",
      /^\w{3} \w{3} \d+ \d\d:\d\d:\d\d \d{4}$/,
      "the session file records the agent's start time",
    );
    Deno.kill(old, "SIGSTOP");
    try {
      const got = await withoutWaitingFor(old, "lock", runHecate(["--home", home, "lock"]));
      assert.equal(got.code, 0, got.stderr);
      assert.match(got.stderr, /did not answer .* it was killed/);
      // Gone while still stopped: the vault is no longer in any process's memory.
      assert.equal(alive(old), false, "the hung agent is gone without being woken");
      assert.equal(session(home), undefined, "the session file is removed");
      assert.deepEqual(await agentDirNames(home), ["handover.lock"], "the socket is removed");
      await assertAsks(home, "after locking a hung agent");
    } finally {
      if (alive(old)) Deno.kill(old, "SIGCONT");
    }
    const ends = (await auditLines(home)).filter((e) => e.event === "agent.end");
    assert.deepEqual(ends.map((e) => [e.reason, e.detail, e.actor]), [
      ["killed", { pid: old, by: "lock" }, { kind: "password" }],
    ]);
    const verify = await runHecate(["--home", home, "audit", "verify"], {
      env: { HECATE_PASSWORD_FILE: pwFile },
    });
    assert.equal(verify.code, 0, `the trail verifies after the kill: ${verify.stderr}`);
  });
});

Deno.test("agent: lock never signals a process that only has a dead agent's pid (another agent, started at another time)", async () => {
  await withVault(async (other, otherPw) => {
    // The process now holding the pid is this user's agent for another home: same uid, same
    // command line; only its start time tells it from the dead agent the stale file names.
    const pid = await unlock(other, otherPw);
    const real = session(other)!;
    await withVault(async (home) => {
      const p = agentPaths(home);
      await Deno.mkdir(p.dir, { mode: 0o700 });
      const stale: AgentSession = {
        pid,
        token: "x".repeat(43),
        expires: new Date(Date.now() + 60_000).toISOString(),
        started: "Thu Jan 1 00:00:00 2026",
        actor: { kind: "password" },
      };
      assert.notEqual(stale.started, real.started);
      await Deno.writeTextFile(p.session, JSON.stringify(stale), { mode: 0o600 });
      const r = await runHecate(["--home", home, "lock"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /no unlock agent was running/);
      assert.ok(alive(pid), "the process holding the pid was not signalled");
      assert.equal(session(home), undefined, "the dead agent's session file is removed");
      assert.deepEqual(await endReasons(home), [], "no end is recorded for an agent not killed");
    });
    await assertServed(other, "the other home's agent still serves");
    assert.equal((await runHecate(["--home", other, "lock"])).code, 0);
    await waitGone(pid, 5000);
  });
});
