/**
 * Throw-away OpenSSH servers for integration tests: a second `sshd` on 127.0.0.1 with its own
 * config, host key, port, pid file and authorized keys directory, logging in a real (nologin)
 * system account created on first use. Also client keys (`ssh-keygen`) and a real `ssh-agent`.
 * Never touches the system sshd or port 22.
 *
 * @example
 * ```ts
 * await using sshd = await startSshd();
 * console.log(sshd.port, sshd.hostKey.fingerprint);
 * ```
 *
 * @module
 */

import { freePort, randomHex, spawnWatchdog } from "./process.ts";

const INSTALL_HINT = "run scripts/install_test_deps.sh";
const SSHD = "/usr/sbin/sshd";
const SSH_KEYGEN = "/usr/bin/ssh-keygen";
const SSH_AGENT = "/usr/bin/ssh-agent";
const SSH_ADD = "/usr/bin/ssh-add";

/** The login account every test sshd accepts. */
export const SSH_TEST_USER = "hecate_ssh";

/** A host or client key pair on disk. */
export interface KeyPair {
  /** Private key file. */
  privateFile: string;
  /** The `.pub` line: `type base64 comment`. */
  publicLine: string;
  /** `SHA256:...` as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** A running test sshd. */
export interface SshServer {
  host: "127.0.0.1";
  port: number;
  /** The account to log in as. */
  user: string;
  /** Its password (set once per test process). */
  password: string;
  /** The server's ed25519 host key. */
  hostKey: KeyPair;
  /** A known_hosts line for this server (`[127.0.0.1]:port type key`). */
  knownHostsLine: string;
  /** Lets a public key log in (appends to the account's authorized keys file). */
  authorize(publicLine: string): Promise<void>;
  /** How many processes the server runs besides its listener (one or more per session). */
  sessionProcesses(): number;
  /** The pids of those processes. */
  sessionPids(): number[];
  /** SIGKILLs the listener and every session process at once. */
  kill(): void;
  /** Stops the server and removes its directory; safe to call twice. */
  stop(): Promise<void>;
  /** Same as {@link SshServer.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

async function run(argv: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) {
  const [cmd, ...args] = argv;
  const child = new Deno.Command(cmd!, {
    args,
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", LANG: "C.UTF-8", ...opts.env },
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${argv[0]} failed (exit ${out.code}): ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout);
}

let accountPassword: string | undefined;

/** Where the test account's password is kept, root-only, so that test processes agree on it. */
const PASSWORD_FILE = "/run/hecate-test-ssh-password";

/**
 * The test account's password: made once per boot and shared by every test process, so that two
 * processes running tests at once do not change it under each other's sshd logins.
 */
async function sharedPassword(): Promise<string> {
  try {
    return (await Deno.readTextFile(PASSWORD_FILE)).trim();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  // Write it whole under a temporary name, then link: whoever links first wins, and the others
  // read a complete file.
  const temp = `${PASSWORD_FILE}.${Deno.pid}.${randomHex(4)}`;
  await Deno.writeTextFile(temp, `ssh-${randomHex(12)}\n`, { mode: 0o600 });
  try {
    await Deno.link(temp, PASSWORD_FILE);
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  } finally {
    await Deno.remove(temp);
  }
  return (await Deno.readTextFile(PASSWORD_FILE)).trim();
}

/**
 * Creates the test account if missing (no home, nologin shell) and sets its random password
 * (see {@link sharedPassword}), once per process. sshd refuses locked accounts even for key logins
 * without PAM.
 */
async function ensureAccount(): Promise<string> {
  if (accountPassword) return accountPassword;
  if (Deno.uid() !== 0) throw new Error("startSshd needs root (to create the test account)");
  const passwd = await Deno.readTextFile("/etc/passwd");
  if (!passwd.split("\n").some((l) => l.startsWith(`${SSH_TEST_USER}:`))) {
    await run([
      "/usr/sbin/useradd",
      "--system",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      SSH_TEST_USER,
    ]);
  }
  const pw = await sharedPassword();
  await run(["/usr/sbin/chpasswd"], { stdin: `${SSH_TEST_USER}:${pw}\n` });
  accountPassword = pw;
  return pw;
}

/**
 * Makes a key pair with ssh-keygen.
 *
 * @param file Private key path (`.pub` beside it).
 * @param options Key type and passphrase.
 * @returns The pair.
 */
export async function makeKeyPair(
  file: string,
  options: { type?: "ed25519" | "rsa" | "ecdsa"; passphrase?: string } = {},
): Promise<KeyPair> {
  if (!isFile(SSH_KEYGEN)) throw new Error(`ssh-keygen not found: ${INSTALL_HINT}`);
  const type = options.type ?? "ed25519";
  await run([
    SSH_KEYGEN,
    "-q",
    "-t",
    type,
    ...(type === "rsa" ? ["-b", "2048"] : []),
    "-N",
    options.passphrase ?? "",
    "-C",
    "hecate-test",
    "-f",
    file,
  ]);
  const publicLine = (await Deno.readTextFile(`${file}.pub`)).trim();
  const fingerprint = (await run([SSH_KEYGEN, "-l", "-E", "sha256", "-f", `${file}.pub`]))
    .split(" ")[1]!;
  return { privateFile: file, publicLine, fingerprint };
}

/** Parent pid of every process, from /proc. */
function parentMap(): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      // The command name is in parentheses and may contain spaces: split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      out.set(pid, ppid);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * All descendants of a process.
 *
 * @param root The pid.
 * @returns Their pids.
 */
export function descendants(root: number): number[] {
  const parents = parentMap();
  const found: number[] = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift()!;
    for (const [pid, ppid] of parents) {
      if (ppid === p) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}

function killPid(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // gone already
  }
}

async function waitForPort(port: number, child: Deno.ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let exited = false;
  child.status.then(() => exited = true);
  for (;;) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      // sshd sends its banner first: read it so the probe is a real answer, then drop it.
      const buf = new Uint8Array(64);
      await c.read(buf);
      c.close();
      return;
    } catch {
      if (exited || Date.now() > deadline) {
        let text = "";
        try {
          text = (await Deno.readTextFile(log)).trim().split("\n").slice(-5).join("\n");
        } catch {
          // no log
        }
        throw new Error(`sshd did not start on port ${port}: ${text}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Options for {@link startSshd}. */
export interface StartSshdOptions {
  /** Extra sshd_config lines. */
  extraConfig?: string[];
}

/**
 * Starts a private sshd on 127.0.0.1 in a new temporary directory.
 *
 * @param options Extra config lines.
 * @returns The running server; stop it (or `await using`) when done.
 * @throws {Error} When OpenSSH is missing or the server does not start.
 */
export async function startSshd(options: StartSshdOptions = {}): Promise<SshServer> {
  if (!isFile(SSHD)) throw new Error(`sshd not found: ${INSTALL_HINT}`);
  const password = await ensureAccount();
  // sshd's privilege separation needs this directory; the system service would create it.
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const root = await Deno.makeTempDir({ prefix: "hecate-sshd-" });
  const watchdog = spawnWatchdog(
    root,
    'if [ -f "$2/sshd.pid" ]; then kill -9 "$(cat "$2/sshd.pid")"; fi >/dev/null 2>&1',
  );
  let child: Deno.ChildProcess | undefined;
  const cleanup = async () => {
    if (child) {
      for (const pid of descendants(child.pid)) killPid(pid, "SIGKILL");
      killPid(child.pid, "SIGTERM");
      await child.status;
      child = undefined;
    }
    await Deno.remove(root, { recursive: true }).catch(() => {});
    killPid(watchdog.pid, "SIGTERM");
    watchdog.ref();
    await watchdog.status;
  };
  try {
    const hostKey = await makeKeyPair(`${root}/host_ed25519`);
    const authDir = `${root}/authorized`;
    await Deno.mkdir(authDir);
    // sshd reads authorized keys as the logging-in user: let it traverse and read them.
    await Deno.chmod(root, 0o711);
    await Deno.chmod(authDir, 0o755);
    const log = `${root}/sshd.log`;
    let port = 0;
    for (let attempt = 0; attempt < 5; attempt++) {
      port = freePort(22);
      const config = [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey.privateFile}`,
        `PidFile ${root}/sshd.pid`,
        `AuthorizedKeysFile ${authDir}/%u`,
        "StrictModes no",
        "AllowTcpForwarding yes",
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "UsePAM no",
        `AllowUsers ${SSH_TEST_USER}`,
        "PermitRootLogin no",
        "X11Forwarding no",
        "PrintMotd no",
        "MaxStartups 100:30:200",
        "LogLevel ERROR",
        ...(options.extraConfig ?? []),
      ].join("\n") + "\n";
      await Deno.writeTextFile(`${root}/sshd_config`, config);
      child = new Deno.Command(SSHD, {
        args: ["-D", "-f", `${root}/sshd_config`, "-E", log],
        clearEnv: true,
        env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        await waitForPort(port, child, log);
        break;
      } catch (e) {
        killPid(child.pid, "SIGKILL");
        await child.status;
        child = undefined;
        const text = await Deno.readTextFile(log).catch(() => "");
        if (attempt === 4 || !/Address already in use|Bind to port/i.test(text)) throw e;
      }
    }
    const [type, key] = hostKey.publicLine.split(" ");
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await cleanup();
    };
    const listener = child!.pid;
    return {
      host: "127.0.0.1",
      port,
      user: SSH_TEST_USER,
      password,
      hostKey,
      knownHostsLine: `[127.0.0.1]:${port} ${type} ${key}`,
      authorize: async (line) => {
        const file = `${authDir}/${SSH_TEST_USER}`;
        await Deno.writeTextFile(file, line.trim() + "\n", { append: true, mode: 0o644 });
      },
      sessionProcesses: () => descendants(listener).length,
      sessionPids: () => descendants(listener),
      kill: () => {
        for (const pid of descendants(listener)) killPid(pid, "SIGKILL");
        killPid(listener, "SIGKILL");
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** A running ssh-agent. */
export interface SshAgent {
  /** The value for SSH_AUTH_SOCK. */
  socket: string;
  /** Adds an (unencrypted) private key with ssh-add. */
  add(privateFile: string): Promise<void>;
  /** Stops the agent; safe to call twice. */
  stop(): Promise<void>;
  /** Same as {@link SshAgent.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a real ssh-agent in the foreground on a socket in `dir`.
 *
 * @param dir A private directory.
 * @returns The agent.
 */
export async function startAgent(dir: string): Promise<SshAgent> {
  const socket = `${dir}/agent.sock`;
  const child = new Deno.Command(SSH_AGENT, {
    args: ["-D", "-a", socket],
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 5000;
  while (!isSocket(socket)) {
    if (Date.now() > deadline) {
      killPid(child.pid, "SIGKILL");
      await child.status;
      throw new Error("ssh-agent did not create its socket");
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    killPid(child.pid, "SIGTERM");
    await child.status;
  };
  return {
    socket,
    add: async (file) => {
      await run([SSH_ADD, "-q", file], { env: { SSH_AUTH_SOCK: socket } });
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

function isSocket(path: string): boolean {
  try {
    return Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}
