/**
 * A throw-away PostgreSQL server for integration tests: its own temporary directory, its own port
 * on 127.0.0.1, a login role with a SCRAM password and a database. Never touches the system
 * service or port 5432.
 *
 * @example
 * ```ts
 * await using pg = await startPostgres();
 * console.log(await pg.psql("select 1"));
 * ```
 *
 * @module
 */

import { freePort, randomHex, spawnWatchdog } from "./process.ts";
import type { ProfileInput } from "../../src/api/profiles.ts";
import type { ConnectSettings } from "../../src/db/driver.ts";

/** A running test server. */
export interface PgServer {
  /** Always `127.0.0.1`. */
  host: "127.0.0.1";
  /** The TCP port (also the socket's port number). */
  port: number;
  /** The login role (SCRAM password, TCP). */
  user: string;
  /** The login role's password. */
  password: string;
  /** A database owned by {@link PgServer.user}. */
  database: string;
  /**
   * Roles for the other password methods over TCP: `md5` (its password stored as an MD5 hash)
   * and `cleartext` (pg_hba method `password`). Each has its own password.
   */
  logins: {
    md5: { user: string; password: string };
    cleartext: { user: string; password: string };
  };
  /** The superuser, reachable without password through the unix socket only. */
  superuser: string;
  /** The data directory. */
  dataDir: string;
  /** The directory holding the unix socket. */
  socketDir: string;
  /** With `tls: true`: PEM file of the CA that signed the server certificate, else undefined. */
  caFile: string | undefined;
  /**
   * With `tls: true`: a role that logs in with a client certificate only (`hostssl ... cert`),
   * its certificate and key (PEM), signed by the same CA; else undefined.
   */
  clientCert: { user: string; certPem: string; keyPem: string } | undefined;
  /**
   * Runs SQL through `psql` as the superuser over the unix socket, in {@link PgServer.database}.
   *
   * @param sql One or more statements.
   * @returns psql's stdout (unaligned, tuples only).
   * @throws {Error} When psql fails; the message holds its stderr.
   */
  psql(sql: string): Promise<string>;
  /** Shuts the server down (fast mode: sessions are terminated), keeping its data and port. */
  halt(): Promise<void>;
  /** Starts a server stopped by {@link PgServer.halt} again on the same port. */
  resume(): Promise<void>;
  /** Stops the server and removes its directory; safe to call twice. */
  stop(): Promise<void>;
  /** Same as {@link PgServer.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Turn on TLS with a certificate for 127.0.0.1 signed by a fresh CA (see `caFile`). */
  tls?: boolean;
}

const INSTALL_HINT = "run scripts/install_test_deps.sh";
const SUPERUSER = "postgres";
const OS_USER = "postgres";

/** Finds the newest `/usr/lib/postgresql/<version>/bin` with initdb and pg_ctl. */
function findBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions: number[] = [];
  try {
    for (const entry of Deno.readDirSync(root)) {
      const v = Number(entry.name);
      if (Number.isFinite(v)) versions.push(v);
    }
  } catch {
    // handled below
  }
  versions.sort((a, b) => b - a);
  for (const v of versions) {
    const dir = `${root}/${v}/bin`;
    if (isFile(`${dir}/initdb`) && isFile(`${dir}/pg_ctl`)) return dir;
  }
  throw new Error(`PostgreSQL server binaries not found under ${root}/*/bin: ${INSTALL_HINT}`);
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function findOnPath(name: string): string {
  for (const dir of ["/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"]) {
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
  if (!f || f.length < 4) {
    throw new Error(`OS user ${name} does not exist: ${INSTALL_HINT}`);
  }
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a command (as the postgres OS user when we are root), with a clean environment so no PG*
 * variable of the caller leaks in.
 */
async function run(
  argv: string[],
  opts: { asPostgres: boolean; stdin?: string; what: string },
): Promise<RunResult> {
  const isRoot = Deno.uid() === 0;
  const full = opts.asPostgres && isRoot
    ? ["/usr/sbin/runuser", "-u", OS_USER, "--", ...argv]
    : argv;
  const [cmd, ...args] = full;
  const child = new Deno.Command(cmd!, {
    args,
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" },
    cwd: "/",
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
  const res = { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (!out.success) {
    throw new Error(
      `${opts.what} failed (exit ${out.code}): ${res.stderr.trim() || res.stdout.trim()}`,
    );
  }
  return res;
}

/** Makes a fresh CA, a server certificate for 127.0.0.1 / localhost and a client certificate. */
async function makeCerts(
  dir: string,
  clientUser: string,
): Promise<{ ca: string; cert: string; key: string; clientCert: string; clientKey: string }> {
  const openssl = findOnPath("openssl");
  const ca = `${dir}/ca.crt`, caKey = `${dir}/ca.key`;
  const cert = `${dir}/server.crt`, key = `${dir}/server.key`, csr = `${dir}/server.csr`;
  const ext = `${dir}/server.ext`;
  const o = { asPostgres: false, what: "openssl" };
  await run([
    openssl,
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    caKey,
    "-out",
    ca,
    "-days",
    "2",
    "-subj",
    "/CN=Hecate test CA",
  ], o);
  const issue = async (cn: string, keyOut: string, certOut: string, extText: string) => {
    await run([
      openssl,
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyOut,
      "-out",
      csr,
      "-subj",
      `/CN=${cn}`,
    ], o);
    await Deno.writeTextFile(ext, extText);
    await run([
      openssl,
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      ca,
      "-CAkey",
      caKey,
      "-CAcreateserial",
      "-out",
      certOut,
      "-days",
      "2",
      "-extfile",
      ext,
    ], o);
  };
  await issue(
    "127.0.0.1",
    key,
    cert,
    "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n" +
      "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
  );
  const clientCert = `${dir}/client.crt`, clientKey = `${dir}/client.key`;
  await issue(
    clientUser,
    clientKey,
    clientCert,
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
  );
  return { ca, cert, key, clientCert, clientKey };
}

/**
 * Starts a private PostgreSQL server on 127.0.0.1 in a new temporary directory.
 *
 * @param options `tls: true` turns on TLS (server certificate signed by a fresh CA).
 * @returns The running server; call `stop()` (or use `await using`) when done.
 * @throws {Error} When the binaries are missing (run scripts/install_test_deps.sh) or the server
 * does not start.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PgServer> {
  const bin = findBinDir();
  const psqlBin = findOnPath("psql");
  const isRoot = Deno.uid() === 0;
  const account = isRoot ? osAccount(OS_USER) : undefined;

  const root = await Deno.makeTempDir({ prefix: "hecate-pg-" });
  const dataDir = `${root}/data`;
  const socketDir = `${root}/sock`;
  const logFile = `${root}/server.log`;
  let started = false;
  let port = 0;

  const pgCtlStop = async () => {
    await run([`${bin}/pg_ctl`, "-D", dataDir, "-m", "fast", "-w", "-t", "30", "stop"], {
      asPostgres: true,
      what: "pg_ctl stop",
    });
  };
  // If this process dies without calling stop() (crash, unresolved await, Ctrl-C), a detached
  // watchdog stops the server and removes the directory within a second or so.
  const watchdog = spawnWatchdog(
    root,
    [
      'if [ -f "$2/data/postmaster.pid" ]; then',
      '  if [ "$4" = 1 ]; then /usr/sbin/runuser -u postgres -- "$3" -D "$2/data" -m immediate stop',
      '  else "$3" -D "$2/data" -m immediate stop; fi',
      "fi >/dev/null 2>&1",
    ].join("\n"),
    [`${bin}/pg_ctl`, isRoot ? "1" : "0"],
  );
  const cleanup = async () => {
    if (started) {
      started = false;
      try {
        await pgCtlStop();
      } catch {
        // already stopped
      }
    }
    await Deno.remove(root, { recursive: true }).catch(() => {});
    // Only now retire the watchdog (it would leave by itself once the directory is gone).
    try {
      watchdog.kill("SIGTERM");
    } catch {
      // already gone
    }
    watchdog.ref();
    await watchdog.status;
  };

  try {
    await Deno.mkdir(socketDir);
    await Deno.chmod(root, 0o700);
    if (account) {
      await Deno.chown(root, account.uid, account.gid);
      await Deno.chown(socketDir, account.uid, account.gid);
    }

    await run([
      `${bin}/initdb`,
      "-D",
      dataDir,
      "-U",
      SUPERUSER,
      "-E",
      "UTF8",
      "--no-locale",
      "--no-sync",
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
    ], { asPostgres: true, what: "initdb" });

    // Exactly these rules: the superuser only through the socket, the certificate role with its
    // certificate, one role each for MD5 and cleartext passwords, everyone else with SCRAM.
    const certUser = "hecate_cert";
    const logins = {
      md5: { user: "hecate_md5", password: `md5-${randomHex(12)}` },
      cleartext: { user: "hecate_clear", password: `clear-${randomHex(12)}` },
    };
    await Deno.writeTextFile(
      `${dataDir}/pg_hba.conf`,
      "local all all trust\n" +
        (options.tls ? `hostssl all ${certUser} 127.0.0.1/32 cert\n` : "") +
        `host all ${logins.md5.user} 127.0.0.1/32 md5\n` +
        `host all ${logins.cleartext.user} 127.0.0.1/32 password\n` +
        "host all all 127.0.0.1/32 scram-sha-256\n",
    );

    const serverOpts = [
      "-c listen_addresses=127.0.0.1",
      `-k ${socketDir}`,
      "-c fsync=off",
      "-c synchronous_commit=off",
      "-c full_page_writes=off",
      "-c max_connections=50",
      "-c shared_buffers=16MB",
      "-c password_encryption=scram-sha-256",
    ];
    let caFile: string | undefined;
    let clientCert: PgServer["clientCert"];
    if (options.tls) {
      const certDir = `${root}/tls`;
      await Deno.mkdir(certDir);
      const c = await makeCerts(certDir, certUser);
      await Deno.chmod(c.key, 0o600);
      if (account) {
        for (const f of [certDir, c.cert, c.key]) await Deno.chown(f, account.uid, account.gid);
      }
      serverOpts.push(
        "-c ssl=on",
        `-c ssl_cert_file=${c.cert}`,
        `-c ssl_key_file=${c.key}`,
        `-c ssl_ca_file=${c.ca}`,
      );
      caFile = c.ca;
      clientCert = {
        user: certUser,
        certPem: await Deno.readTextFile(c.clientCert),
        keyPem: await Deno.readTextFile(c.clientKey),
      };
    }

    // A port can be taken between probing and binding: retry a few times.
    let lastError: unknown;
    for (let attempt = 0; attempt < 5 && !started; attempt++) {
      port = freePort(5432);
      try {
        await run([
          `${bin}/pg_ctl`,
          "-D",
          dataDir,
          "-l",
          logFile,
          "-w",
          "-t",
          "60",
          "-o",
          [`-p ${port}`, ...serverOpts].join(" "),
          "start",
        ], { asPostgres: true, what: "pg_ctl start" });
        started = true;
      } catch (e) {
        lastError = e;
        let log = "";
        try {
          log = await Deno.readTextFile(logFile);
        } catch {
          // no log
        }
        if (!/could not bind|address already in use/i.test(log)) break;
        await Deno.writeTextFile(logFile, "");
      }
    }
    if (!started) {
      let log = "";
      try {
        log = (await Deno.readTextFile(logFile)).trim().split("\n").slice(-5).join("\n");
      } catch {
        // no log
      }
      throw new Error(
        `PostgreSQL did not start: ${
          lastError instanceof Error ? lastError.message : String(lastError)
        }\n${log}`,
      );
    }

    const psqlAs = async (db: string, sql: string): Promise<string> => {
      const res = await run([
        psqlBin,
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        socketDir,
        "-p",
        String(port),
        "-U",
        SUPERUSER,
        "-d",
        db,
        "-f",
        "-",
      ], { asPostgres: false, stdin: sql, what: "psql" });
      return res.stdout;
    };

    // Wait until it really accepts queries (pg_ctl -w already waits; this double-checks).
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await psqlAs("postgres", "select 1");
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    const user = "hecate_test";
    const password = `pw-${randomHex(12)}`;
    const database = "hecate_test";
    await psqlAs(
      "postgres",
      `CREATE ROLE ${user} LOGIN PASSWORD '${password}';\n` +
        `CREATE DATABASE ${database} OWNER ${user};\n` +
        (clientCert ? `CREATE ROLE ${clientCert.user} LOGIN;\n` : "") +
        // The md5 method needs the password stored as an MD5 hash (a SCRAM verifier would make
        // the server switch to SCRAM).
        "SET password_encryption = 'md5';\n" +
        `CREATE ROLE ${logins.md5.user} LOGIN PASSWORD '${logins.md5.password}';\n` +
        "RESET password_encryption;\n" +
        `CREATE ROLE ${logins.cleartext.user} LOGIN PASSWORD '${logins.cleartext.password}';\n` +
        `GRANT CONNECT ON DATABASE ${database} TO ${logins.md5.user}, ${logins.cleartext.user};\n`,
    );

    const halt = async () => {
      if (!started) return;
      await pgCtlStop();
      started = false;
    };
    const resume = async () => {
      if (started) return;
      await run([
        `${bin}/pg_ctl`,
        "-D",
        dataDir,
        "-l",
        logFile,
        "-w",
        "-t",
        "60",
        "-o",
        [`-p ${port}`, ...serverOpts].join(" "),
        "start",
      ], { asPostgres: true, what: "pg_ctl start" });
      started = true;
    };
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await cleanup();
    };
    return {
      host: "127.0.0.1",
      port,
      user,
      password,
      database,
      logins,
      superuser: SUPERUSER,
      dataDir,
      socketDir,
      caFile,
      clientCert,
      psql: (sql) => psqlAs(database, sql),
      halt,
      resume,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/**
 * A profile for the test role over plain TCP (`tls: disable`), its password as the stored secret.
 *
 * @param pg The server.
 * @param name The profile name.
 * @param extra More profile fields (e.g. `connectTimeoutMs`).
 * @returns The input for `vault.profiles.add`.
 */
export function pgProfile(
  pg: PgServer,
  name: string,
  extra: Partial<ProfileInput> = {},
): ProfileInput {
  return {
    name,
    engine: "postgres",
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user: pg.user,
    tls: { mode: "disable" },
    secrets: { password: { value: pg.password } },
    ...extra,
  };
}

/**
 * Driver connection settings for the test role over plain TCP.
 *
 * @param pg The server.
 * @param over Fields to replace.
 * @returns The settings.
 */
export function pgSettings(pg: PgServer, over: Partial<ConnectSettings> = {}): ConnectSettings {
  return {
    engine: "postgres",
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user: pg.user,
    password: pg.password,
    tls: { mode: "disable" },
    connectTimeoutMs: 5000,
    ...over,
  };
}
