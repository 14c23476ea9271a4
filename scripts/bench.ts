/**
 * `deno task bench`: measures Hecate against the reference clients on the same server in one
 * run, and prints ratios. Sections: `unlock`, `pg` (select 1 and a 1,000,000-row CSV export
 * against psql), `ssh` (the same through an SSH tunnel, against `ssh -L` plus psql on the same
 * sshd), `mssql` (the SQL Server path through the TDS test double, bundled: spawn to first byte
 * against the PostgreSQL path, where a bare tedious script spends its time, the cron path, a
 * 1,000,000-row export against the bare script; scripts/bench/mssql.ts), `apikey` (the cron path:
 * `HECATE_API_KEY=... hecate query pg "select 1"` against `psql -c "select 1"`, from source and
 * from the bundle of `deno task bundle`; goal at most 2x), `agent` (the same query served by the
 * unlock agent against the API-key path; goal at most 1.1x; scripts/bench/agent.ts),
 * `mysql` (1,000,000- and 10,000,000-row TSV and CSV exports from MariaDB against
 * `mariadb --batch --quick`, with peak RSS; scripts/bench/mysql.ts), `mysqlcron` (the cron path
 * against MariaDB next to the same against PostgreSQL, from the bundle), `startup`
 * (`hecate query ... "select 1"` per engine, against `hecate server list`, which loads no
 * driver), `audit` (append latency and throughput, the audit share of an in-process query, and
 * `audit verify` on a 1,000,000-entry trail), `audithold` (the CPU and wall time of a hold of the
 * audit lock: a lone durable append, and durable records arriving spread out as the gateway's do;
 * scripts/bench/audit_hold.ts), `pool` (queries per second through the library pool
 * against a raw `pg` Pool), `vaultsize` (query, server list and server add at 10, 1,000 and 10,000
 * profiles, and importing a 10,000-line .pgpass; scripts/bench/vaultsize.ts), `sources` (the cron
 * path with a `file:` reference and with an `env:` reference failing over to it, against a stored
 * secret; scripts/bench/sources.ts), `vault` (the cron path with a `vault:` password over HTTPS,
 * with a pinned CA and through a loopback agent, and a `vault-db:` login, against a stored one,
 * through the Vault double, from source and bundled, next to a bare `fetch` in a fresh process;
 * scripts/bench/vault.ts), `aws` (the cron path with an `aws-sm:`
 * password through the AWS double against a stored one, from source and bundled, goal at most
 * 1.3x, and the AWS credential chain's own cost; scripts/bench/aws.ts), `cloud` (the cron path with `azure-kv:` and `gcp-sm:`
 * through the doubles, against a stored secret, from source and bundled; scripts/bench/cloud.ts), `console` (the web
 * console's first page size and load time, and 100,000 rows streamed in Chromium;
 * scripts/bench/console.ts), `pkcs11` (unlocking with a SoftHSM2 token against the master
 * password, in-process and as `hecate server list`; scripts/bench/pkcs11.ts), `age` (unlocking with
 * a teammate's age identity against the master password, in process and as a whole command;
 * scripts/bench/age.ts), `tlsstart` (where the first HTTPS request of a fresh Deno process spends
 * its time; scripts/bench/first_request.ts). Pass section names to run only those.
 *
 * Needs PostgreSQL's, MariaDB's and OpenSSH's binaries (scripts/install_test_deps.sh), GNU time
 * (/usr/bin/time), and root for the `ssh` section (its sshd logs in a test account).
 *
 * @module
 */

import { startPostgres } from "../tests/support/postgres.ts";
import { makeKeyPair, startSshd } from "../tests/support/sshd.ts";
import type { SshProfile } from "../src/profile.ts";
import { startMariadb } from "../tests/support/mariadb.ts";
import { calibrateIterations, MIN_KDF_ITERATIONS } from "../src/kdf.ts";
import { UnlockedVault } from "../src/vault/vault.ts";
import {
  measure,
  medianInterleaved,
  medianMs,
  medianOf,
  report,
  type RunResult,
} from "./bench/measure.ts";
import { psqlCommand, serverProfile, vaultWith } from "./bench/setup.ts";
import { benchAgent } from "./bench/agent.ts";
import { benchAge } from "./bench/age.ts";
import { benchAudit } from "./bench/audit.ts";
import { benchAuditHold } from "./bench/audit_hold.ts";
import { benchPool } from "./bench/pool.ts";
import { benchVaultSize } from "./bench/vaultsize.ts";
import { benchSources } from "./bench/sources.ts";
import { benchCloud } from "./bench/cloud.ts";
import { benchMssql } from "./bench/mssql.ts";
import { benchMysqlCron, benchMysqlExport } from "./bench/mysql.ts";
import { benchAws } from "./bench/aws.ts";
import { benchConsole } from "./bench/console.ts";
import { benchGateway } from "./bench/gateway.ts";
import { benchVault } from "./bench/vault.ts";
import { benchFirstRequest } from "./bench/first_request.ts";
import { benchPkcs11 } from "./bench/pkcs11.ts";
import { HECATE_PERMISSIONS } from "./permissions.ts";
import { buildBundle } from "./bundle.ts";

const PERMISSIONS = HECATE_PERMISSIONS;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PG_FLOOR = new URL("./bench/pg_floor.ts", import.meta.url).pathname;
const PASSWORD = "bench-password correct horse";
const sections = Deno.args.length ? Deno.args : [
  "unlock",
  "pg",
  "ssh",
  "mssql",
  "apikey",
  "agent",
  "mysql",
  "mysqlcron",
  "startup",
  "audit",
  "audithold",
  "pool",
  "vaultsize",
  "sources",
  "aws",
  "console",
  "gateway",
  "cloud",
  "vault",
  "pkcs11",
  "age",
  "tlsstart",
];

console.log(`# Hecate benchmark, ${new Date().toISOString()}`);
console.log(
  `# Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, ${Deno.build.target}`,
);

const root = await Deno.makeTempDir({ prefix: "hecate-bench-" });
const pwFile = `${root}/password`;
await Deno.writeTextFile(pwFile, PASSWORD, { mode: 0o600 });

function hecateCmd(home: string, ...args: string[]): string[] {
  return [Deno.execPath(), "run", "--quiet", ...PERMISSIONS, MAIN, "--home", home, ...args];
}

try {
  if (sections.includes("unlock")) {
    const calibrated = await calibrateIterations();
    for (const iterations of [MIN_KDF_ITERATIONS, calibrated]) {
      const v = await UnlockedVault.create(PASSWORD, { iterations });
      const { bytes } = await v.serialize();
      const ms = await medianMs(5, () => UnlockedVault.unlock(bytes, PASSWORD));
      console.log(`unlock at ${iterations} PBKDF2 iterations: ${ms.toFixed(1)} ms (median of 5)`);
    }
  }

  if (sections.includes("age")) await benchAge(root, PASSWORD, hecateCmd);

  if (sections.includes("pg")) {
    await using pg = await startPostgres();
    const home = `${root}/home`;
    const vault = await vaultWith(home, PASSWORD, [serverProfile("pg", "postgres", pg)]);
    console.log(`vault KDF: ${vault.keys.kdfIterations} iterations (calibrated default)`);
    const env = { HECATE_PASSWORD_FILE: pwFile, PGPASSWORD: pg.password };
    const psql = (...a: string[]) => psqlCommand(pg, ...a);

    const q1 = await medianOf(
      9,
      () => measure(hecateCmd(home, "query", "pg", "select 1"), { env }),
    );
    const p1 = await medianOf(9, () => measure(psql("-c", "select 1"), { env }));
    report("select 1 (median of 9)", q1, p1, "psql -c");

    const big = "select g, md5(g::text) from generate_series(1,1000000) g";
    const outA = `${root}/a.csv`, outB = `${root}/b.csv`;
    // The unattended path (an API key: HKDF, no PBKDF2) next to the master password, whose
    // calibrated PBKDF2 unlock (~250 ms) is a deliberate fixed cost.
    const apiKey = await vault.apiKeys.create({ name: "export", profiles: ["pg"], expires: null });
    const exportArgs = ["query", "pg", big, "--format", "csv", "--output", outA];
    const e = await medianInterleaved(5, {
      password: () => measure(hecateCmd(home, ...exportArgs), { env }),
      apiKey: () =>
        measure(hecateCmd(home, ...exportArgs), {
          env: { HECATE_API_KEY: apiKey, PGPASSWORD: pg.password },
        }),
      psqlCsv: () => measure(psql("--csv", "-c", big), { env, stdoutFile: outB }),
      psqlCopy: () =>
        measure(psql("-c", `\\copy (${big}) to stdout with (format csv, header)`), { env }),
    });
    const label = "1,000,000-row CSV export (interleaved, median of 5)";
    report(`${label}, master password`, e.password, e.psqlCsv, "psql --csv");
    report(`${label}, API key`, e.apiKey, e.psqlCsv, "psql --csv");
    report(`${label}, master password`, e.password, e.psqlCopy, "psql \\copy");
    report(`${label}, API key`, e.apiKey, e.psqlCopy, "psql \\copy");
    console.log("export goal: at most 1.00x psql --csv, with flat memory");
  }

  if (sections.includes("ssh")) {
    await using pg = await startPostgres();
    await using sshd = await startSshd();
    const key = await makeKeyPair(`${root}/id_bench`);
    await sshd.authorize(key.publicLine);
    const knownHosts = `${root}/known_hosts`;
    await Deno.writeTextFile(knownHosts, sshd.knownHostsLine + "\n");
    const home = `${root}/home-ssh`;
    const hop = {
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      auth: "key" as const,
      keyFile: key.privateFile,
    };
    const tunnels: [string, SshProfile | undefined][] = [["pgssh", {
      hops: [hop],
      knownHostsFile: knownHosts,
    }], [
      "pgdirect",
      undefined,
    ]];
    const vault = await vaultWith(
      home,
      PASSWORD,
      tunnels.map(([name, ssh]) => ({ ...serverProfile(name, "postgres", pg), ssh })),
    );
    const env = { HECATE_PASSWORD_FILE: pwFile, HECATE_KNOWN_HOSTS: knownHosts };
    const ctl = `${root}/ssh-ctl`;
    const localPort = 20000 + Math.floor(Math.random() * 20000);
    // The reference: OpenSSH forwards a local port (returning once the forward is up), psql
    // connects to it, then the master connection is told to exit.
    const sshL = (psqlArgs: string) => [
      "bash",
      "-c",
      `ssh -f -N -M -S ${ctl} -o ExitOnForwardFailure=yes -o BatchMode=yes ` +
      `-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -i ${key.privateFile} ` +
      `-p ${sshd.port} -L ${localPort}:127.0.0.1:${pg.port} ${sshd.user}@127.0.0.1 && ` +
      `PGPASSWORD='${pg.password}' psql -X -h 127.0.0.1 -p ${localPort} -U ${pg.user} ` +
      `-d ${pg.database} ${psqlArgs}; s=$?; ssh -S ${ctl} -O exit ${sshd.user}@127.0.0.1 ` +
      "2>/dev/null; exit $s",
    ];
    const first = await medianOf(
      7,
      () => measure(hecateCmd(home, "query", "pgssh", "select 1"), { env }),
    );
    const firstRef = await medianOf(7, () => measure(sshL("-c 'select 1'")));
    report("ssh: time to first row, select 1 (median of 7)", first, firstRef, "ssh -L + psql");
    const firstDirect = await medianOf(
      7,
      () => measure(hecateCmd(home, "query", "pgdirect", "select 1"), { env }),
    );
    report(
      "ssh: select 1, tunnel against direct (median of 7)",
      first,
      firstDirect,
      "hecate direct",
    );
    const inProcess = await medianMs(7, () => vault.query("pgssh", "select 1"));
    const inProcessDirect = await medianMs(7, () => vault.query("pgdirect", "select 1"));
    console.log(
      `ssh: library connect + first row: ${inProcess.toFixed(1)} ms through the tunnel, ` +
        `${inProcessDirect.toFixed(1)} ms direct (median of 7)`,
    );

    const big = "select g, md5(g::text) from generate_series(1,1000000) g";
    const out = `${root}/ssh.csv`;
    const exportVia = (name: string) =>
      medianOf(
        3,
        () =>
          measure(hecateCmd(home, "query", name, big, "--format", "csv", "--output", out), {
            env,
          }),
      );
    const viaTunnel = await exportVia("pgssh");
    const bytes = (await Deno.stat(out)).size;
    const direct = await exportVia("pgdirect");
    const ref = await medianOf(
      3,
      () => measure(sshL(`--csv -c "${big}"`), { stdoutFile: `${root}/ref.csv` }),
    );
    report(
      "ssh: 1,000,000-row CSV export through the tunnel (median of 3)",
      viaTunnel,
      ref,
      "ssh -L + psql --csv",
    );
    report(
      "ssh: 1,000,000-row CSV export, tunnel against direct (median of 3)",
      viaTunnel,
      direct,
      "hecate direct",
    );
    console.log(
      `ssh: export throughput through the tunnel: ${
        (bytes / 1048576 / viaTunnel.wallS).toFixed(1)
      } MiB/s, ` +
        `${Math.round(1_000_000 / viaTunnel.wallS).toLocaleString("en")} rows/s`,
    );
  }

  if (sections.includes("mssql")) await benchMssql(root, PASSWORD);

  if (sections.includes("apikey")) {
    await using pg = await startPostgres();
    const home = `${root}/home-apikey`;
    const vault = await vaultWith(home, PASSWORD, [serverProfile("pg", "postgres", pg)]);
    const apiKey = await vault.apiKeys.create({ name: "bench", profiles: ["pg"], expires: null });
    const psql = psqlCommand(pg, "-c", "select 1");
    // The bundled distribution (deno task bundle), run through its launcher.
    const launcher = await buildBundle(`${root}/bundle`);
    const bundled = (...a: string[]) => [launcher, "--home", home, ...a];
    const env = { HECATE_API_KEY: apiKey, DENO: Deno.execPath() };
    // The floor: a bare pg client (scripts/bench/pg_floor.ts), bundled the same way.
    const floorJs = `${root}/pg_floor.js`;
    const built = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform=deno", "--output", floorJs, PG_FLOOR],
      env: { NO_COLOR: "1" },
    }).output();
    if (!built.success) throw new Error(new TextDecoder().decode(built.stderr));
    const floorCmd = [Deno.execPath(), "run", "--quiet", "--no-config", "-A", floorJs];
    const floorEnv = {
      PGHOST: pg.host,
      PGPORT: String(pg.port),
      PGUSER: pg.user,
      PGDATABASE: pg.database,
      PGPASSWORD: pg.password,
    };
    // The floor of any Deno program: start the runtime, run an empty script, exit.
    const emptyJs = `${root}/empty.js`;
    await Deno.writeTextFile(emptyJs, "");
    const denoStart = [Deno.execPath(), "run", "--quiet", "--no-config", emptyJs];
    // Warm Deno's module and code caches once so that no measured run compiles.
    await measure(hecateCmd(home, "query", "pg", "select 1"), { env });
    await measure(bundled("query", "pg", "select 1"), { env });
    await measure(floorCmd, { env: floorEnv });
    await measure(denoStart);
    const m = await medianInterleaved(11, {
      source: () => measure(hecateCmd(home, "query", "pg", "select 1"), { env }),
      bundle: () => measure(bundled("query", "pg", "select 1"), { env }),
      psql: () => measure(psql, { env: { PGPASSWORD: pg.password } }),
      pgFloor: () => measure(floorCmd, { env: floorEnv }),
      denoStart: () => measure(denoStart),
    });
    report(
      "cron path, API key, select 1, from source (deno run main.ts; median of 11)",
      m.source,
      m.psql,
      "psql -c",
    );
    report(
      "cron path, API key, select 1, bundle (dist/bundle/hecate; median of 11)",
      m.bundle,
      m.psql,
      "psql -c",
    );
    report(
      "reference: bare npm pg client, connect + select 1, bundled (median of 11)",
      m.pgFloor,
      m.psql,
      "psql -c",
      "pg",
    );
    const ratio = (r: RunResult) => (r.wallS / m.psql.wallS).toFixed(2);
    console.log(
      `cron path goal: at most 2.00x psql; measured ${ratio(m.bundle)}x bundled, ` +
        `${ratio(m.source)}x from source`,
    );
    console.log(
      `floor: Deno starting an empty script ${m.denoStart.wallS.toFixed(3)} s ` +
        `(${ratio(m.denoStart)}x psql); runs interleaved, other load on the machine skews all`,
    );
  }

  if (sections.includes("agent")) await benchAgent(root, PASSWORD, pwFile, hecateCmd);

  if (sections.includes("mysql")) {
    await benchMysqlExport({ root, password: PASSWORD, pwFile, hecateCmd });
  }

  if (sections.includes("mysqlcron")) {
    await benchMysqlCron({ root, password: PASSWORD, pwFile, hecateCmd });
  }

  if (sections.includes("startup")) {
    await using pg = await startPostgres();
    await using db = await startMariadb();
    const home = `${root}/home-startup`;
    const sqliteFile = `${root}/startup.db`;
    await Deno.writeFile(sqliteFile, new Uint8Array()); // an empty file is an empty database
    await vaultWith(home, PASSWORD, [
      { name: "lite", engine: "sqlite", database: sqliteFile, auth: "none" },
      serverProfile("pg", "postgres", pg),
      serverProfile("maria", "mysql", db),
    ], MIN_KDF_ITERATIONS);
    const env = { HECATE_PASSWORD_FILE: pwFile };
    console.log(`startup (median of 9, vault KDF ${MIN_KDF_ITERATIONS} iterations):`);
    const base = await medianOf(9, () => measure(hecateCmd(home, "server", "list"), { env }));
    console.log(
      `  hecate server list (no driver): ${(base.wallS * 1000).toFixed(0)} ms, ` +
        `${base.peakMiB.toFixed(0)} MiB peak`,
    );
    // The driver's own load time in a fresh process, free of the KDF and process noise above.
    const loader = new URL("./bench/load_driver.ts", import.meta.url).pathname;
    for (const engine of ["sqlite", "postgres", "mysql"]) {
      const ms: number[] = [];
      for (let i = 0; i < 9; i++) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--quiet", ...PERMISSIONS, loader, engine],
          env: { NO_COLOR: "1" },
        }).output();
        ms.push(Number(new TextDecoder().decode(out.stdout).trim()));
      }
      ms.sort((a, b) => a - b);
      console.log(`  loading the ${engine} driver: ${ms[4]!.toFixed(0)} ms (median of 9)`);
    }
    for (const name of ["lite", "pg", "maria"]) {
      const r = await medianOf(
        9,
        () => measure(hecateCmd(home, "query", name, "select 1", "--format", "csv"), { env }),
      );
      console.log(
        `  hecate query ${name} "select 1": ${(r.wallS * 1000).toFixed(0)} ms ` +
          `(+${((r.wallS - base.wallS) * 1000).toFixed(0)} ms over server list), ` +
          `${r.peakMiB.toFixed(0)} MiB peak`,
      );
    }
  }

  if (sections.includes("audit")) await benchAudit(root, PASSWORD);
  if (sections.includes("audithold")) await benchAuditHold(root);
  if (sections.includes("pool")) await benchPool(root, PASSWORD);
  if (sections.includes("vaultsize")) await benchVaultSize(root, PASSWORD);
  if (sections.includes("sources")) await benchSources(root, PASSWORD, hecateCmd);

  if (sections.includes("pkcs11")) await benchPkcs11(root, PASSWORD, hecateCmd);

  if (sections.includes("aws")) {
    const ratio = await benchAws(root, PASSWORD, hecateCmd);
    console.log(
      `aws-sm: bundled cron path ratio against a stored secret: ${
        ratio.toFixed(2)
      }x (goal <= 1.3x)`,
    );
  }
  if (sections.includes("console")) await benchConsole(root, PASSWORD);
  if (sections.includes("gateway")) await benchGateway(root, PASSWORD);
  if (sections.includes("cloud")) await benchCloud(root, PASSWORD, hecateCmd);
  if (sections.includes("vault")) await benchVault(root, PASSWORD, hecateCmd);
  if (sections.includes("tlsstart")) await benchFirstRequest();
} finally {
  await Deno.remove(root, { recursive: true });
}
