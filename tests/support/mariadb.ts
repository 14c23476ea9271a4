/**
 * A throw-away MariaDB server for integration tests: its own temporary data directory, its own
 * port on 127.0.0.1 and unix socket, a login user with a password and a database, and optionally
 * TLS with a client-certificate user (`REQUIRE X509`). Never touches the system service or port
 * 3306.
 *
 * @example
 * ```ts
 * await using db = await startMariadb();
 * console.log(await db.sql("select 1"));
 * ```
 *
 * @module
 */

import { issueCert, makeCa } from "./tls_certs.ts";
import { freePort, randomHex, spawnWatchdog } from "./process.ts";

/** A running test server. */
export interface MariadbServer {
  /** Always `127.0.0.1`. */
  host: "127.0.0.1";
  /** The TCP port. */
  port: number;
  /** The unix socket path (the root user logs in there without a password). */
  socket: string;
  /** The login user (password, TCP from anywhere). */
  user: string;
  /** The login user's password. */
  password: string;
  /** A database on which {@link MariadbServer.user} has every privilege. */
  database: string;
  /** The server's temporary root directory (data, socket, pid file, log, certificates). */
  root: string;
  /** With `tls: true`: PEM file of the CA that signed the server and client certificates. */
  caFile: string | undefined;
  /**
   * With `tls: true`: a user created `REQUIRE X509` without a password, with its certificate and
   * key files (PEM) signed by {@link MariadbServer.caFile}; else undefined.
   */
  clientCert: { user: string; certFile: string; keyFile: string } | undefined;
  /**
   * Runs SQL through the `mariadb` client as root over the unix socket, in the test database.
   *
   * @param sql One or more statements.
   * @returns The client's stdout (`--batch --skip-column-names`).
   * @throws {Error} When the client fails; the message holds its stderr.
   */
  sql(sql: string): Promise<string>;
  /** Stops the server and removes its directory; safe to call twice. */
  stop(): Promise<void>;
  /** Same as {@link MariadbServer.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@link startMariadb}. */
export interface StartMariadbOptions {
  /**
   * Turn on TLS: a server certificate for 127.0.0.1 / localhost and a client-certificate user,
   * both signed by a fresh CA. @default {false}
   */
  tls?: boolean;
}

const INSTALL_HINT = "run scripts/install_test_deps.sh";
const OS_USER = "mysql";
const CLEAN_ENV = { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" };

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function findBin(name: string): string {
  for (
    const dir of ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin", "/bin"]
  ) {
    if (isFile(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  throw new Error(`${name} not found: ${INSTALL_HINT}`);
}

/** uid and gid of an OS account, from /etc/passwd. */
function osAccount(name: string): { uid: number; gid: number } {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n").find((l) =>
    l.startsWith(`${name}:`)
  );
  const f = line?.split(":");
  if (!f || f.length < 4) throw new Error(`OS user ${name} does not exist: ${INSTALL_HINT}`);
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Runs a command with a clean environment (no MYSQL_* variables of the caller leak in). */
async function run(argv: string[], what: string, stdin?: string): Promise<string> {
  const [cmd, ...args] = argv;
  const child = new Deno.Command(cmd!, {
    args,
    clearEnv: true,
    env: CLEAN_ENV,
    cwd: "/",
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) {
    const err = dec.decode(out.stderr).trim() || dec.decode(out.stdout).trim();
    throw new Error(`${what} failed (exit ${out.code}): ${err}`);
  }
  return dec.decode(out.stdout);
}

async function tail(file: string, lines = 8): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Starts a private MariaDB server on 127.0.0.1 in a new temporary directory.
 *
 * @param options `tls: true` turns on TLS with a fresh CA and a client-certificate user.
 * @returns The running server; call `stop()` (or use `await using`) when done.
 * @throws {Error} When the binaries are missing (run scripts/install_test_deps.sh) or the server
 * does not start.
 */
export async function startMariadb(options: StartMariadbOptions = {}): Promise<MariadbServer> {
  const mariadbd = findBin("mariadbd");
  const installDb = findBin("mariadb-install-db");
  const client = findBin("mariadb");
  const account = Deno.uid() === 0 ? osAccount(OS_USER) : undefined;

  const root = await Deno.makeTempDir({ prefix: "hecate-mariadb-" });
  const dataDir = `${root}/data`;
  const socket = `${root}/mariadbd.sock`;
  const pidFile = `${root}/mariadbd.pid`;
  const logFile = `${root}/error.log`;
  let server: Deno.ChildProcess | undefined;
  // If this process dies without calling stop(), a detached watchdog kills the server through its
  // pid file and removes the directory within a second or so.
  const watchdog = spawnWatchdog(
    root,
    [
      'if [ -f "$2/mariadbd.pid" ]; then',
      '  pid=$(cat "$2/mariadbd.pid")',
      '  kill -9 "$pid" 2>/dev/null',
      '  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done',
      "fi",
    ].join("\n"),
  );

  const cleanup = async () => {
    if (server) {
      const s = server;
      server = undefined;
      try {
        s.kill("SIGTERM");
      } catch {
        // already gone
      }
      // A clean shutdown takes well under a second for an idle test server; do not wait forever.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const exited = await Promise.race([
        s.status.then(() => true),
        new Promise<false>((r) => timer = setTimeout(() => r(false), 10_000)),
      ]);
      clearTimeout(timer);
      if (!exited) {
        try {
          s.kill("SIGKILL");
        } catch {
          // gone meanwhile
        }
        await s.status;
      }
    }
    await Deno.remove(root, { recursive: true }).catch(() => {});
    try {
      watchdog.kill("SIGTERM");
    } catch {
      // already gone
    }
    watchdog.ref();
    await watchdog.status;
  };

  const sqlAs = (db: string | undefined, sql: string): Promise<string> =>
    run(
      [
        client,
        "--no-defaults",
        "--protocol=socket",
        `--socket=${socket}`,
        "--user=root",
        "--default-character-set=utf8mb4",
        "--batch",
        "--skip-column-names",
        ...(db ? [`--database=${db}`] : []),
      ],
      "mariadb client",
      sql,
    );

  try {
    await Deno.chmod(root, 0o700);
    if (account) await Deno.chown(root, account.uid, account.gid);

    await run([
      installDb,
      "--no-defaults",
      `--user=${OS_USER}`,
      `--datadir=${dataDir}`,
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
      "--skip-name-resolve",
    ], "mariadb-install-db");

    const serverArgs = [
      "--no-defaults",
      `--user=${OS_USER}`,
      `--datadir=${dataDir}`,
      "--bind-address=127.0.0.1",
      `--socket=${socket}`,
      `--pid-file=${pidFile}`,
      `--log-error=${logFile}`,
      "--skip-name-resolve",
      "--innodb-buffer-pool-size=32M",
      "--innodb-log-file-size=16M",
      "--innodb-flush-log-at-trx-commit=0",
      "--skip-log-bin",
      "--character-set-server=utf8mb4",
      "--collation-server=utf8mb4_unicode_ci",
      "--max-connections=40",
    ];
    let caFile: string | undefined;
    let clientCert: MariadbServer["clientCert"];
    const certUser = "hecate_cert";
    if (options.tls) {
      const dir = `${root}/tls`;
      await Deno.mkdir(dir);
      const ca = await makeCa(dir, "ca");
      const srv = await issueCert(ca, dir, "server", { cn: "127.0.0.1", server: true });
      const cli = await issueCert(ca, dir, "client", { cn: certUser });
      if (account) {
        for (const f of [dir, srv.certFile, srv.keyFile, ca.certFile]) {
          await Deno.chown(f, account.uid, account.gid);
        }
      }
      serverArgs.push(
        `--ssl-ca=${ca.certFile}`,
        `--ssl-cert=${srv.certFile}`,
        `--ssl-key=${srv.keyFile}`,
      );
      caFile = ca.certFile;
      clientCert = { user: certUser, certFile: cli.certFile, keyFile: cli.keyFile };
    }

    // A port can be taken between probing and binding: retry a few times.
    let port = 0;
    for (let attempt = 0; attempt < 5 && !server; attempt++) {
      port = freePort(3306);
      await Deno.writeTextFile(logFile, "");
      if (account) await Deno.chown(logFile, account.uid, account.gid);
      const child = new Deno.Command(mariadbd, {
        args: [...serverArgs, `--port=${port}`],
        clearEnv: true,
        env: CLEAN_ENV,
        cwd: "/",
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      let exited = false;
      child.status.then(() => exited = true);
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (exited) break;
        try {
          await sqlAs(undefined, "select 1");
          server = child;
          break;
        } catch (e) {
          if (Date.now() > deadline) {
            child.kill("SIGKILL");
            await child.status;
            throw new Error(`MariaDB did not become ready: ${e}\n${await tail(logFile)}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (!server) {
        const log = await tail(logFile);
        if (!/address already in use|bind on tcp\/ip port/i.test(log)) {
          throw new Error(`MariaDB did not start:\n${log}`);
        }
      }
    }
    if (!server) throw new Error(`MariaDB did not start:\n${await tail(logFile)}`);

    const user = "hecate_test";
    const password = `pw-${randomHex(12)}`;
    const database = "hecate_test";
    await sqlAs(
      undefined,
      `CREATE DATABASE ${database} CHARACTER SET utf8mb4;\n` +
        `CREATE USER '${user}'@'%' IDENTIFIED BY '${password}';\n` +
        `GRANT ALL ON ${database}.* TO '${user}'@'%';\n` +
        (clientCert
          ? `CREATE USER '${certUser}'@'%' REQUIRE X509;\n` +
            `GRANT ALL ON ${database}.* TO '${certUser}'@'%';\n`
          : ""),
    );

    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await cleanup();
    };
    return {
      host: "127.0.0.1",
      port,
      socket,
      user,
      password,
      database,
      root,
      caFile,
      clientCert,
      sql: (sql) => sqlAs(database, sql),
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
