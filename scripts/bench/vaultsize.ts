/**
 * The `vaultsize` section of `deno task bench`: a command's cost against the number of profiles in
 * the vault. Vaults of 10, 1,000 and 10,000 PostgreSQL profiles (one of them a real server, the
 * rest filler, all added through one `profiles.addMany` write), then, interleaved across the sizes
 * (so load on the machine falls on all alike), medians of `hecate query` with an API key and with
 * the master password, `hecate server list` and `hecate server add`; and `hecate import pgpass` of a
 * 10,000-line file into an empty vault. Goal (issue 13): at 10,000 profiles each within 1.3x of its
 * 10-profile time (plus writing the file once), the import under 10 s. That allowance is measured
 * for `server add`: ./write_floor.ts writes a file of each vault's size once, as the store does,
 * in a bare Deno process in the same rounds, and a line after the rows compares `server add` at
 * 10,000 profiles with 1.3x its 10-profile time plus the floor's difference between the two sizes.
 *
 * `HECATE_BENCH_VAULTSIZE` limits the run to some of its measures, comma-separated: `floor` (the
 * in-process floor), `query`, `list`, `add`, `import`; all when unset.
 *
 * @module
 */

import { initVault, openVault, type ProfileInput } from "../../src/hecate.ts";
import { MIN_KDF_ITERATIONS } from "../../src/kdf.ts";
import { startPostgres } from "../../tests/support/postgres.ts";
import { HECATE_PERMISSIONS } from "../permissions.ts";
import { newSigningKeyPair, verifyEd25519 } from "../../src/vault/asymmetric.ts";
import {
  loadTable,
  parseSplit,
  parseVaultFile,
  readSplitHead,
  splitVaultFile,
} from "../../src/vault/format.ts";
import { VaultStore } from "../../src/vault/store.ts";
import { macBody, signedBodyMessage } from "../../src/vault/keyring.ts";
import { randomBytes, sha256 } from "../../src/vault/primitives.ts";
import { measure, medianInterleaved, medianMs, medianOf, type RunResult } from "./measure.ts";
import { serverProfile } from "./setup.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const WRITE_FLOOR = new URL("./write_floor.ts", import.meta.url).pathname;
const SIZES = [10, 1_000, 10_000] as const;
const ROUNDS = 7;
const IMPORT_LINES = 10_000;
const MEASURES = ["floor", "query", "list", "add", "import"] as const;

/** The measures to run: all, or those `HECATE_BENCH_VAULTSIZE` names. */
function measuresToRun(): Set<string> {
  const named = Deno.env.get("HECATE_BENCH_VAULTSIZE");
  if (!named) return new Set(MEASURES);
  const out = new Set(named.split(",").map((m) => m.trim()));
  for (const m of out) {
    if (!(MEASURES as readonly string[]).includes(m)) {
      throw new Error(`HECATE_BENCH_VAULTSIZE: no measure "${m}" (${MEASURES.join(", ")})`);
    }
  }
  return out;
}

function hecateCmd(home: string, ...args: string[]): string[] {
  return [Deno.execPath(), "run", "--quiet", ...HECATE_PERMISSIONS, MAIN, "--home", home, ...args];
}

/** Filler profiles like a fleet's: PostgreSQL, a host, a database, a user, a stored password. */
function filler(n: number): ProfileInput[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `fleet-${String(i).padStart(5, "0")}`,
    engine: "postgres" as const,
    host: `db${i}.fleet.internal`,
    port: 5432,
    database: `app${i % 50}`,
    user: `svc_${i % 200}`,
    tags: ["fleet"],
    secrets: { password: { value: `filler-password-${i}-0123456789abcdef` } },
  }));
}

/**
 * Prints `server add` at 10,000 profiles against issue 13's goal: 1.3x its 10-profile time plus
 * writing the file once (the bare write floor at 10,000 profiles less the floor at 10), in wall
 * and CPU time.
 */
function addGoal(m: Record<string, RunResult>, medianCpu: (name: string) => number): void {
  const big = SIZES.at(-1)!, small = SIZES[0];
  const wall = (k: string) => m[k]!.wallS;
  const line = (what: string, t: (k: string) => number) => {
    const allowance = Math.max(0, t(`write${big}`) - t(`write${small}`));
    const goal = 1.3 * t(`add${small}`) + allowance;
    const got = t(`add${big}`);
    return `${what} ${got.toFixed(3)} s against 1.3 x ${t(`add${small}`).toFixed(3)} s + ${
      allowance.toFixed(3)
    } s = ${goal.toFixed(3)} s (${got <= goal ? "met" : "not met"})`;
  };
  console.log(
    `  server add at ${big.toLocaleString("en")} profiles, goal 1.3x plus writing the file once: ` +
      `${line("wall", wall)}; ${line("CPU", medianCpu)}`,
  );
}

/**
 * Runs the section.
 *
 * @param root A scratch directory.
 * @param password The master password; `${root}/password` holds it.
 */
export async function benchVaultSize(root: string, password: string): Promise<void> {
  const run = measuresToRun();
  await using pg = await startPostgres();
  const pwFile = `${root}/password`;
  const homes = new Map<number, { home: string; apiKey: string; bytes: number }>();
  for (const size of SIZES) {
    const home = `${root}/home-size-${size}`;
    await initVault({ home, password, kdfIterations: MIN_KDF_ITERATIONS });
    const vault = await openVault({ home, password, lockout: "off" });
    const t0 = performance.now();
    const results = await vault.profiles.addMany([
      serverProfile("pg", "postgres", pg),
      ...filler(size - 1),
    ]);
    const failed = results.filter((r) => r.error);
    if (failed.length) throw new Error(`addMany refused ${failed[0]!.name}: ${failed[0]!.error}`);
    const apiKey = await vault.apiKeys.create({ name: "bench", profiles: ["pg"], expires: null });
    const bytes = (await Deno.stat(`${home}/vault.hecate`)).size;
    console.log(
      `vaultsize: ${size.toLocaleString("en")} profiles built in ${
        ((performance.now() - t0) / 1000).toFixed(2)
      } s with one write; vault file ${(bytes / 1048576).toFixed(2)} MiB`,
    );
    homes.set(size, { home, apiKey, bytes });
  }

  // What each command still does with the whole file in format 4 (it reads it, finds the record
  // lines from the table's sizes, checks the table's hash) and with the header (parse, checksum, then the MAC and the
  // signature with the password, the signature with an API key); reading one record (its line's
  // hash and JSON); what a write adds (checking every record line once, writing and syncing all).
  // Timed in-process, per size.
  const signer = await newSigningKeyPair();
  const macKey = randomBytes(32);
  if (run.has("floor")) console.log("vaultsize: in-process floor per command (median of 5):");
  for (const [size, { home }] of run.has("floor") ? homes : []) {
    const path = `${home}/vault.hecate`;
    const file = await Deno.readFile(path);
    const split = splitVaultFile(file);
    const header = split.bodyBytes;
    const read = await medianMs(5, () => Deno.readFile(path));
    // The API-key path: the header and seal lines read by position, the record table parsed
    // against the file's size (no record line read yet).
    const store = new VaultStore(home);
    const headRead = await medianMs(5, async () => {
      const f = await store.openPositioned();
      try {
        const head = await readSplitHead(f);
        await loadTable(head);
        await parseSplit(head).body.region?.checkTable();
      } finally {
        f.close();
      }
    });
    const parse = await medianMs(5, async () => {
      await parseSplit(splitVaultFile(file)).body.region?.checkTable();
    });
    const checksum = await medianMs(5, () => sha256(header));
    const mac = await medianMs(5, () => macBody(macKey, header));
    const sig = await medianMs(
      5,
      () => verifyEd25519(signer.publicKey, new Uint8Array(64), signedBodyMessage(header)),
    );
    // Reading one record of a freshly parsed file: its line's hash, JSON and base64url.
    const parsedFiles = Array.from({ length: 5 }, () => parseVaultFile(file).body);
    let next = 0;
    const oneRecord = await medianMs(5, () => {
      const { records } = parsedFiles[next++]!;
      return Promise.resolve(records[Math.floor(records.length / 2)]!.data);
    });
    const allLines = await medianMs(5, () => sha256(split.recordBytes));
    const write = await medianMs(5, async () => {
      using f = await Deno.open(`${root}/write-test`, {
        write: true,
        create: true,
        truncate: true,
      });
      await f.write(file);
      await f.syncData();
    });
    console.log(
      `  ${size.toLocaleString("en")} profiles: header ${(header.length / 1048576).toFixed(2)} ` +
        `MiB of ${(file.length / 1048576).toFixed(2)}; read ${read.toFixed(1)} ms (API key: ` +
        `header read by position and parsed ${headRead.toFixed(1)} ms), split and ` +
        `parse ${parse.toFixed(1)} ms, header checksum ${checksum.toFixed(1)} ms, MAC ${
          mac.toFixed(1)
        } ms, signature check ${sig.toFixed(1)} ms, one record line ${
          oneRecord.toFixed(2)
        } ms; a write adds: all record lines checked ${allLines.toFixed(1)} ms, the file written ` +
        `once (write + fsync) ${write.toFixed(1)} ms`,
    );
  }

  // CPU time (user + system) beside the wall time: on a shared machine under load the wall time
  // of every run grows with the load, its CPU time much less. An inner bash `time` writes it, in
  // millisecond steps (GNU time's are 10 ms, a twentieth of a 10-profile run).
  const cpuFile = `${root}/cpu-time`;
  const cpu = new Map<string, number[]>();
  const withCpu =
    (name: string, run: (wrap: (cmd: string[]) => string[]) => Promise<RunResult>) => async () => {
      const r = await run((
        cmd,
      ) => [
        "bash",
        "-c",
        `TIMEFORMAT='%3U %3S'; { time "$@" 2>&3; } 3>&2 2>'${cpuFile}'`,
        "bash",
        ...cmd,
      ]);
      const [user, sys] = (await Deno.readTextFile(cpuFile)).trim().split("\n").at(-1)!.split(" ");
      cpu.set(name, [...(cpu.get(name) ?? []), Number(user) + Number(sys)]);
      return r;
    };
  const medianCpu = (name: string) => {
    const xs = [...cpu.get(name)!].sort((a, b) => a - b);
    return xs[Math.floor(xs.length / 2)]!;
  };

  let added = 0;
  const jobs: Record<string, () => Promise<RunResult>> = {};
  for (const [size, { home, apiKey }] of homes) {
    const pwEnv = { HECATE_PASSWORD_FILE: pwFile, HECATE_LOCKOUT: "off" };
    if (run.has("query")) {
      jobs[`queryKey${size}`] = withCpu(
        `queryKey${size}`,
        (wrap) =>
          measure(wrap(hecateCmd(home, "query", "pg", "select 1")), {
            env: { HECATE_API_KEY: apiKey, HECATE_LOCKOUT: "off" },
          }),
      );
      jobs[`queryPw${size}`] = withCpu(
        `queryPw${size}`,
        (wrap) => measure(wrap(hecateCmd(home, "query", "pg", "select 1")), { env: pwEnv }),
      );
    }
    if (run.has("list")) {
      jobs[`list${size}`] = withCpu(
        `list${size}`,
        (wrap) => measure(wrap(hecateCmd(home, "server", "list")), { env: pwEnv }),
      );
    }
    if (run.has("add")) {
      jobs[`add${size}`] = withCpu(`add${size}`, (wrap) =>
        measure(
          wrap(hecateCmd(
            home,
            "server",
            "add",
            `added-${added++}`,
            "--engine",
            "postgres",
            "--host",
            "db.example",
            "--user",
            "app",
            "--secret-stdin",
          )),
          { env: pwEnv, stdin: "added-secret\n" },
        ));
      // Writing a file of this vault's size once, as the store does, in a bare Deno process:
      // the goal's allowance for a write.
      const floorDir = await Deno.makeTempDir({ dir: root, prefix: `write-floor-${size}-` });
      jobs[`write${size}`] = withCpu(
        `write${size}`,
        (wrap) =>
          measure(
            wrap([
              Deno.execPath(),
              "run",
              "--quiet",
              "--allow-env",
              "--allow-read",
              "--allow-write",
              WRITE_FLOOR,
            ]),
            {
              env: {
                WRITE_FLOOR_DIR: floorDir,
                WRITE_FLOOR_BYTES: String(homes.get(size)!.bytes),
              },
            },
          ),
      );
    }
  }
  // Warm Deno's caches so that no measured run compiles.
  for (const job of Object.values(jobs)) await job();
  cpu.clear();
  const m = await medianInterleaved(ROUNDS, jobs);
  console.log(
    `vaultsize (interleaved, median of ${ROUNDS}; vault KDF ${MIN_KDF_ITERATIONS} iterations):`,
  );
  const row = (label: string, key: string) => {
    const base = m[`${key}10`]!;
    const baseCpu = medianCpu(`${key}10`);
    const cells = SIZES.map((s) => {
      const r = m[`${key}${s}`]!;
      const c = medianCpu(`${key}${s}`);
      return `${s.toLocaleString("en")}: ${r.wallS.toFixed(3)} s ${r.peakMiB.toFixed(0)} MiB (${
        (r.wallS / base.wallS).toFixed(2)
      }x), CPU ${c.toFixed(3)} s (${(c / baseCpu).toFixed(2)}x)`;
    });
    console.log(`  ${label.padEnd(28)} ${cells.join("; ")}`);
  };
  if (run.has("query")) {
    row("query, API key", "queryKey");
    row("query, master password", "queryPw");
  }
  if (run.has("list")) row("server list", "list");
  if (run.has("add")) {
    row("server add", "add");
    row("  the file written once", "write");
    addGoal(m, medianCpu);
  }
  if (!run.has("import")) return;

  const lines = Array.from(
    { length: IMPORT_LINES },
    (_, i) => `db${i}.fleet.internal:5432:app${i % 50}:svc_${i}:pgpass-secret-${i}`,
  );
  const pgpass = `${root}/pgpass`;
  await Deno.writeTextFile(pgpass, lines.join("\n") + "\n", { mode: 0o600 });
  let importRun = 0;
  const imported = await medianOf(3, async () => {
    const home = `${root}/home-import-${importRun++}`;
    await initVault({ home, password, kdfIterations: MIN_KDF_ITERATIONS });
    return await measure(hecateCmd(home, "import", "pgpass", pgpass), {
      env: { HECATE_PASSWORD_FILE: pwFile, HECATE_LOCKOUT: "off" },
    });
  });
  console.log(
    `  import of a ${IMPORT_LINES.toLocaleString("en")}-line .pgpass into an empty vault ` +
      `(median of 3): ${imported.wallS.toFixed(2)} s, ${imported.peakMiB.toFixed(0)} MiB peak ` +
      `(goal: under 10 s)`,
  );
}
