/**
 * The vault on disk (store.ts, home.ts, hecate.ts): permissions, generations, atomic replacement
 * under SIGKILL at random moments, and many writer processes at once.
 *
 * Uses the real KDF floor (600,000 PBKDF2 iterations, ~100 ms per unlock). Child processes run
 * tests/support/vault_writer.ts and get the password through an environment variable.
 */

import assert from "node:assert/strict";
import { HecateError } from "../src/errors.ts";
import { initVault, openVault, type Vault } from "../src/hecate.ts";
import { parseVaultFile } from "../src/vault/format.ts";
import { VAULT_FILE, VaultStore } from "../src/vault/store.ts";
import { checkChecksum, type JsonObject, UnlockedVault } from "../src/vault/vault.ts";

const PW = "store-test password ✓";
const ITER = 600_000;
const ROOT = new URL("..", import.meta.url).pathname;
const WRITER = new URL("./support/vault_writer.ts", import.meta.url).pathname;
const TEMP_PREFIX = ".vault.hecate.tmp-";

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "hecate-store-test-" });
  await Deno.chmod(home, 0o700);
  try {
    await fn(home);
  } finally {
    await Deno.chmod(home, 0o700).catch(() => {});
    await Deno.remove(home, { recursive: true });
  }
}

async function assertCode(
  run: () => Promise<unknown>,
  code: HecateError["code"],
  what: string = code,
) {
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof HecateError, `${what}: not a HecateError: ${e}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    return true;
  });
}

function mode(info: Deno.FileInfo): number {
  return (info.mode ?? 0) & 0o777;
}

function names(vault: Vault): string[] {
  return vault.profiles.list().map((p) => p.name);
}

async function tempFiles(home: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(home)) if (e.name.startsWith(TEMP_PREFIX)) out.push(e.name);
  return out;
}

function pgProfile(name: string, secret = `secret-of-${name}`) {
  return {
    name,
    engine: "postgres" as const,
    host: `${name}.db.example`,
    port: 5433,
    database: "app",
    user: "app_user",
    secrets: { password: { value: secret } },
  };
}

function secretOf(value: JsonObject): string | undefined {
  return (value as { secrets?: { password?: { value?: string } } }).secrets?.password?.value;
}

// ---------------------------------------------------------------------------------------------

Deno.test("initVault then openVault round trip keeps profiles, secrets and safe file modes", async () => {
  await withHome(async (home) => {
    const made = await initVault({ home, password: PW, kdfIterations: ITER });
    assert.deepEqual(made, { home, kdfIterations: ITER });
    assert.equal(mode(await Deno.stat(`${home}/${VAULT_FILE}`)), 0o600);

    const v1 = await openVault({ home, password: PW });
    assert.equal(v1.generation, 1);
    assert.equal(v1.keys.kdfIterations, ITER);
    assert.deepEqual(v1.profiles.list(), []);
    const canary = `CANARY-${crypto.randomUUID()}`;
    await v1.profiles.add(pgProfile("pg1", canary));
    await v1.profiles.add({ name: "lite", engine: "sqlite", database: "/tmp/x.db" });
    assert.equal(v1.generation, 3);

    const v2 = await openVault({ home, password: PW });
    assert.equal(v2.id, v1.id);
    assert.equal(v2.generation, 3);
    assert.deepEqual(v2.profiles.list(), [
      { name: "lite", engine: "sqlite", database: "/tmp/x.db", auth: "none" },
      {
        name: "pg1",
        engine: "postgres",
        host: "pg1.db.example",
        port: 5433,
        database: "app",
        user: "app_user",
        auth: "sql",
      },
    ]);
    assert.deepEqual((await v2.profiles.show("pg1")).secrets as Record<string, string>, {
      password: "********",
    });
    const state = await UnlockedVault.unlock(await Deno.readFile(`${home}/${VAULT_FILE}`), PW);
    assert.deepEqual((await state.records()).map((r) => secretOf(r.value)), [canary, undefined]);

    const file = await Deno.readFile(`${home}/${VAULT_FILE}`);
    assert.ok(
      !new TextDecoder().decode(file).includes(canary),
      "secret in clear in the vault file",
    );
    assert.equal(mode(await Deno.stat(`${home}/${VAULT_FILE}`)), 0o600);
    await assertCode(() => openVault({ home, password: PW + "x" }), "auth_failed");
  });
});

Deno.test("the store reads the vault file whole, byte for byte, at sizes around its read sizes", async () => {
  await withHome(async (home) => {
    const store = new VaultStore(home);
    for (const size of [0, 1, 65_535, 65_536, 65_537, 3 * 1024 * 1024 + 7]) {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff;
      await Deno.writeFile(store.path, bytes, { mode: 0o600 });
      const read = await store.read();
      assert.equal(read.byteLength, size, `size ${size}`);
      assert.equal(read.buffer.byteLength, size, `size ${size}: a buffer of exactly the file`);
      assert.deepEqual(read, bytes, `size ${size}`);
    }
  });
});

Deno.test("initVault refuses fewer than 600,000 KDF iterations and writes nothing", async () => {
  await withHome(async (home) => {
    await assertCode(() => initVault({ home, password: PW, kdfIterations: 599_999 }), "usage");
    await assert.rejects(Deno.stat(`${home}/${VAULT_FILE}`), Deno.errors.NotFound);
  });
});

Deno.test("a home writable by group or others is refused with insecure_home", async () => {
  await withHome(async (home) => {
    await initVault({ home, password: PW, kdfIterations: ITER });
    for (const m of [0o777, 0o770, 0o702]) {
      await Deno.chmod(home, m);
      await assertCode(
        () => openVault({ home, password: PW }),
        "insecure_home",
        `mode ${m.toString(8)}`,
      );
    }
    await Deno.chmod(home, 0o700);
    await openVault({ home, password: PW });
  });
  await withHome(async (home) => {
    await Deno.chmod(home, 0o777);
    await assertCode(() => initVault({ home, password: PW, kdfIterations: ITER }), "insecure_home");
    await assert.rejects(Deno.stat(`${home}/${VAULT_FILE}`), Deno.errors.NotFound);
  });
});

Deno.test("a vault file readable by others or not a regular file is refused with insecure_home", async () => {
  await withHome(async (home) => {
    await initVault({ home, password: PW, kdfIterations: ITER });
    const path = `${home}/${VAULT_FILE}`;
    for (const m of [0o644, 0o640, 0o604, 0o660]) {
      await Deno.chmod(path, m);
      await assertCode(
        () => openVault({ home, password: PW }),
        "insecure_home",
        `mode ${m.toString(8)}`,
      );
    }
    await Deno.chmod(path, 0o600);
    await openVault({ home, password: PW });

    // A symbolic link in place of the vault (even to a good vault) is refused.
    await Deno.rename(path, `${home}/real.hecate`);
    await Deno.symlink(`${home}/real.hecate`, path);
    await assertCode(() => openVault({ home, password: PW }), "insecure_home", "symlink");
  });
});

Deno.test("a home without a vault, or no home at all, fails with vault_not_found", async () => {
  await withHome(async (home) => {
    await assertCode(() => openVault({ home, password: PW }), "vault_not_found", "empty home");
    await assertCode(
      () => openVault({ home: `${home}/does-not-exist`, password: PW }),
      "vault_not_found",
      "missing home",
    );
  });
});

Deno.test("initVault over an existing vault fails with already_exists and leaves it intact", async () => {
  await withHome(async (home) => {
    await initVault({ home, password: PW, kdfIterations: ITER });
    const v = await openVault({ home, password: PW });
    await v.profiles.add(pgProfile("keep-me"));
    const before = await Deno.readFile(`${home}/${VAULT_FILE}`);

    await assertCode(
      () => initVault({ home, password: "another password", kdfIterations: ITER }),
      "already_exists",
    );
    assert.deepEqual(await Deno.readFile(`${home}/${VAULT_FILE}`), before);
    assert.deepEqual(names(await openVault({ home, password: PW })), ["keep-me"]);
    await assertCode(() => openVault({ home, password: "another password" }), "auth_failed");
    assert.deepEqual(await tempFiles(home), []);
  });
});

Deno.test("two open handles in one process both write without losing each other's update", async () => {
  await withHome(async (home) => {
    await initVault({ home, password: PW, kdfIterations: ITER });
    const a = await openVault({ home, password: PW });
    const b = await openVault({ home, password: PW });
    await a.profiles.add(pgProfile("from-a"));
    await b.profiles.add(pgProfile("from-b")); // b read the vault before a wrote
    await a.profiles.edit("from-b", { host: "edited-by-a" });
    const v = await openVault({ home, password: PW });
    assert.deepEqual(names(v), ["from-a", "from-b"]);
    assert.equal(v.profiles.list()[1]!.host, "edited-by-a");
    await assertCode(() => b.profiles.add(pgProfile("from-a")), "already_exists");
  });
});

Deno.test("at most 5 previous generations are kept and each opens with the password and its contents", async () => {
  await withHome(async (home) => {
    await initVault({ home, password: PW, kdfIterations: ITER }); // generation 1
    const v = await openVault({ home, password: PW });
    for (let i = 1; i <= 8; i++) await v.profiles.add(pgProfile(`p${i}`)); // generations 2..9
    assert.equal(v.generation, 9);

    const dir = `${home}/generations`;
    assert.equal(mode(await Deno.stat(dir)), 0o700);
    const files: string[] = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    files.sort();
    assert.deepEqual(files, [4, 5, 6, 7, 8].map((g) => `vault.${g}.hecate`));

    for (let g = 4; g <= 8; g++) {
      const path = `${dir}/vault.${g}.hecate`;
      assert.equal(mode(await Deno.stat(path)), 0o600, path);
      const old = await UnlockedVault.unlock(await Deno.readFile(path), PW);
      assert.equal(old.generation, g);
      assert.equal(old.id, v.id);
      // Generation g was written after init and g-1 additions.
      assert.deepEqual(
        (await old.records()).map((r) => r.value.name),
        Array.from({ length: g - 1 }, (_, i) => `p${i + 1}`),
      );
      assert.deepEqual(
        (await old.records()).map((r) => secretOf(r.value)),
        Array.from({ length: g - 1 }, (_, i) => `secret-of-p${i + 1}`),
      );
    }
    // The current file is generation 9 with all 8 profiles.
    const cur = await UnlockedVault.unlock(await Deno.readFile(`${home}/${VAULT_FILE}`), PW);
    assert.equal(cur.generation, 9);
    assert.equal((await cur.records()).length, 8);
  });
});

// ---------------------------------------------------------------------------------------------
// Child processes.

interface Writer {
  child: Deno.ChildProcess;
  ready: Promise<boolean>;
  output: Promise<{ stdout: string; stderr: string }>;
}

async function drain(stream: ReadableStream<Uint8Array>, onText?: (all: string) => void) {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    onText?.(text);
  }
  return text;
}

function spawnWriter(home: string, ...args: string[]): Writer {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      WRITER,
      home,
      ...args,
    ],
    cwd: ROOT,
    env: { HECATE_TEST_PASSWORD: PW, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let markReady: (v: boolean) => void = () => {};
  const ready = new Promise<boolean>((r) => (markReady = r));
  const stdout = drain(child.stdout, (t) => t.includes("ready\n") && markReady(true))
    .finally(() => markReady(false));
  const stderr = drain(child.stderr);
  return {
    child,
    ready,
    output: Promise.all([stdout, stderr]).then(([stdout, stderr]) => ({ stdout, stderr })),
  };
}

/** Sends SIGKILL unless the child has already exited (the caller checks how it ended). */
function killIfRunning(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits for `p`, or at most `ms` milliseconds; leaves no timer behind. */
async function atMost<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads the vault file over and over, without the lock, until `deadline` (performance.now()),
 * asserting each read is a whole file: it parses and its checksum matches. Returns the count.
 */
async function readWholeUntil(home: string, deadline: number): Promise<number> {
  let n = 0;
  do {
    const bytes = await Deno.readFile(`${home}/${VAULT_FILE}`);
    try {
      await checkChecksum(parseVaultFile(bytes));
    } catch (e) {
      throw new Error(`a reader saw a partial vault file (${bytes.length} bytes)`, { cause: e });
    }
    n++;
  } while (performance.now() < deadline);
  return n;
}

/**
 * Checks that the vault is one of the states the sequence writer can leave: profiles p1..pK
 * with no gap, all edited except perhaps pK, and secrets matching hosts. Returns K.
 */
async function checkSequenceState(home: string, root: UnlockedVault): Promise<number> {
  const vault = await openVault({ home, password: PW }); // the full path, with the password
  const list = vault.profiles.list();
  const k = list.length;
  const sorted = list.map((p) => p.name).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  assert.deepEqual(sorted, Array.from({ length: k }, (_, i) => `p${i + 1}`), "profiles p1..pK");
  // Secrets: re-read the same file under the known root key (checks checksum, MAC, every AEAD).
  const state = await root.reload(await Deno.readFile(`${home}/${VAULT_FILE}`));
  assert.equal(state.generation, vault.generation);
  for (const { value } of (await state.records())) {
    const n = Number(String(value.name).slice(1));
    const host = value.host, secret = secretOf(value);
    const edited = host === `e-${n}` && secret === `t-${n}`;
    const fresh = host === `h-${n}` && secret === `s-${n}`;
    assert.ok(edited || (n === k && fresh), `p${n} of ${k}: host ${host}, secret ${secret}`);
  }
  return k;
}

Deno.test({
  name:
    "a writer killed with SIGKILL at random moments leaves the old or the new vault, never a mix",
  fn: async () => {
    await withHome(async (home) => {
      await initVault({ home, password: PW, kdfIterations: ITER });
      const root = await UnlockedVault.unlock(await Deno.readFile(`${home}/${VAULT_FILE}`), PW);
      const RUNS = 50;
      let k = 0, killedBeforeReady = 0, killedWhileWriting = 0, staleTemps = 0, progressed = 0;
      let reads = 0;
      for (let run = 0; run < RUNS; run++) {
        const w = spawnWriter(home, "sequence");
        // Even runs: 0-300 ms after spawn (often during start-up or unlock). Odd runs: 0-300 ms
        // after the child reported the vault open, i.e. somewhere in its stream of writes.
        const delay = Math.floor(Math.random() * 301);
        let wasReady = false;
        try {
          if (run % 2 === 1) {
            await atMost(w.ready, 10_000, false);
            // Meanwhile read the file as an unlocked reader would: always a whole vault.
            reads += await readWholeUntil(home, performance.now() + delay);
          } else {
            await sleep(delay);
          }
          wasReady = await Promise.race([w.ready, Promise.resolve(false)]);
        } finally {
          killIfRunning(w.child);
        }
        const status = await w.child.status;
        const { stderr } = await w.output;
        assert.equal(status.signal, "SIGKILL", `run ${run}: child ended on its own: ${stderr}`);
        if (wasReady) killedWhileWriting++;
        else killedBeforeReady++;
        staleTemps += (await tempFiles(home)).length;

        const next = await checkSequenceState(home, root);
        assert.ok(next >= k, `run ${run}: profiles went back from ${k} to ${next}`);
        if (next > k) progressed++;
        k = next;
      }
      console.log(
        `  ${RUNS} kills: ${killedBeforeReady} before unlock, ${killedWhileWriting} while writing; ` +
          `${k} profiles written; ${progressed} runs made progress; ${staleTemps} stale temp files seen; ` +
          `${reads} concurrent reads, all whole`,
      );
      assert.ok(
        killedWhileWriting >= RUNS / 2 - 1 && progressed >= RUNS / 5,
        "kills hit the writes",
      );

      // A temp file left by a dead writer (plant one for sure) does not break later writes.
      const planted = `${home}/${TEMP_PREFIX}00112233deadbeef`;
      await Deno.writeFile(planted, new TextEncoder().encode("half a vault"), { mode: 0o600 });
      const w = spawnWriter(home, "sequence", String(k + 3));
      const status = await w.child.status;
      const { stdout, stderr } = await w.output;
      assert.equal(status.code, 0, stderr);
      assert.ok(stdout.includes("done"));
      assert.equal(await checkSequenceState(home, root), k + 3);
      assert.deepEqual(
        await tempFiles(home),
        [],
        "stale temp files are cleaned up by the next write",
      );

      // Every kept generation is a consistent earlier state with the number it is named after.
      const dir = `${home}/generations`;
      let kept = 0;
      for await (const e of Deno.readDir(dir)) {
        const g = Number(/^vault\.(\d+)\.hecate$/.exec(e.name)?.[1]);
        const old = await root.reload(await Deno.readFile(`${dir}/${e.name}`));
        assert.equal(old.generation, g, e.name);
        const recs = (await old.records()).map((r) => String(r.value.name));
        assert.deepEqual(recs, Array.from({ length: recs.length }, (_, i) => `p${i + 1}`));
        kept++;
      }
      assert.ok(kept >= 1 && kept <= 5, `${kept} generations kept`);
    });
  },
});

Deno.test("ten processes adding three profiles each at the same time lose no update", async () => {
  await withHome(async (home) => {
    await initVault({ home, password: PW, kdfIterations: ITER });
    const writers = Array.from({ length: 10 }, (_, i) => spawnWriter(home, "add", `c${i}`, "3"));
    const results = await Promise.all(writers.map(async (w) => ({
      status: await w.child.status,
      ...(await w.output),
    })));
    for (const [i, r] of results.entries()) {
      assert.equal(r.status.code, 0, `writer ${i}: ${r.stderr}`);
      assert.ok(r.stdout.includes("done"), `writer ${i}`);
    }
    const v = await openVault({ home, password: PW });
    const want = Array.from({ length: 10 }, (_, i) => [1, 2, 3].map((j) => `c${i}-${j}`)).flat();
    assert.deepEqual((names(v)).sort(), want.sort());
    assert.equal(v.generation, 31, "one generation per write, none overwritten");
    const state = await UnlockedVault.unlock(await Deno.readFile(`${home}/${VAULT_FILE}`), PW);
    for (const { value } of (await state.records())) {
      assert.equal(secretOf(value), `secret-${value.name}`);
    }
    assert.deepEqual(await tempFiles(home), []);
  });
});
