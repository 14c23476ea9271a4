/**
 * The secret-source framework end to end, through the real command tree in-process (so sources
 * registered here through mod.ts serve it) and the library: references validated at add/edit,
 * a custom source, failover past slow, refusing and garbage sources, whole-connection secrets,
 * dynamic logins and their leases, the audit records, the offline cache (TTL, tampering, API-key
 * scope), `server test` and `hecate sources`, and no canary in any output.
 */

import assert from "node:assert/strict";
import {
  type HeldLease,
  initVault,
  openVault,
  registerSource,
  type SecretSource,
  sourceError,
} from "../mod.ts";
import { runCli } from "../src/cli/cli.ts";
import { CACHE_DIR } from "../src/api/source_cache.ts";
import { runHecate } from "./support/cli.ts";
import { withAuditLock } from "../src/audit/log.ts";
import { startPostgres } from "./support/postgres.ts";

const PASSWORD = "sources-test-master-password";
const CANARY = "CANARY-7f3e9b21-do-not-print";

/** What each `memo:KEY` reference answers (a custom in-test source). */
const memo = new Map<string, Record<string, string>>();
/** Keys of `memo:` that refuse (403-like) instead of answering. */
const refusing = new Set<string>();
/** Leases handed out by `dyn:`; `dyn:expired` hands out one already over. */
let leaseCounter = 0;

const memoSource: SecretSource = {
  schemes: ["memo"],
  title: "memo store",
  parse(scheme, rest) {
    const [key, field] = rest.split("#");
    if (!key || !/^[a-z0-9/-]+$/.test(key) || (field !== undefined && !field)) {
      throw new (class extends Error {})("bad"); // the registry turns it into a usage error
    }
    return { scheme, raw: `${scheme}:${rest}`, parts: { key }, ...(field ? { field } : {}) };
  },
  resolve(ref, ctx) {
    const key = ref.parts.key!;
    if (ctx.credentials.token !== undefined && ctx.credentials.token !== CANARY) {
      return Promise.reject(sourceError("memo store", ref.raw, "forbidden", "fix the token"));
    }
    if (refusing.has(key)) {
      return Promise.reject(sourceError("memo store", ref.raw, "forbidden", "ask for access"));
    }
    const fields = memo.get(key);
    if (!fields) return Promise.reject(sourceError("memo store", ref.raw, "not_found", "check it"));
    return Promise.resolve({ fields, version: "3" });
  },
  health(ref) {
    const ok = memo.has(ref.parts.key!) && !refusing.has(ref.parts.key!);
    return Promise.resolve({ ok, detail: ok ? "present" : "absent", latencyMs: 0 });
  },
};

/** Never answers and ignores its signal: only the framework's timeout ends it. */
const slowSource: SecretSource = {
  schemes: ["slow"],
  title: "slow store",
  parse: (scheme, rest) => ({ scheme, raw: `${scheme}:${rest}`, parts: {} }),
  resolve: () => new Promise(() => {}),
};

/** Answers garbage that carries the canary (and throws it as free text). */
const junkSource: SecretSource = {
  schemes: ["junk"],
  title: "junk store",
  parse: (scheme, rest) => ({ scheme, raw: `${scheme}:${rest}`, parts: { kind: rest } }),
  resolve(ref) {
    if (ref.parts.kind === "throw") return Promise.reject(new Error(`boom ${CANARY}`));
    if (ref.parts.kind === "number") {
      return Promise.resolve({ fields: { password: 42 as unknown as string, x: CANARY } });
    }
    // Two fields, neither the one asked for: field missing.
    return Promise.resolve({ fields: { a: CANARY, b: CANARY } });
  },
};

/** Lease ids `dyn:` was asked to revoke. */
const revoked: string[] = [];

const dynSource: SecretSource = {
  schemes: ["dyn"],
  title: "dynamic store",
  dynamic: true,
  revoke(lease) {
    revoked.push(lease.id);
    return Promise.resolve();
  },
  parse: (scheme, rest) => ({ scheme, raw: `${scheme}:${rest}`, parts: { role: rest } }),
  resolve(ref) {
    leaseCounter++;
    const expired = ref.parts.role === "expired";
    return Promise.resolve({
      fields: { username: `v-${ref.parts.role}-${leaseCounter}`, password: `pw-${leaseCounter}` },
      lease: {
        id: `lease/${CANARY}/${leaseCounter}`,
        durationSeconds: expired ? 1 : 3600,
        renewable: true,
        obtainedAt: expired ? Date.now() - 10_000 : Date.now(),
      },
    });
  },
};

for (const s of [memoSource, slowSource, junkSource, dynSource]) registerSource(s);

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs `hecate ARGS` in-process with the master password on stdin. */
async function cli(home: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  let out = "", err = "";
  const useKey = env.HECATE_API_KEY !== undefined;
  const code = await runCli(["--home", home, ...(useKey ? [] : ["--password-stdin"]), ...args], {
    out: (t) => Promise.resolve(void (out += t)),
    outBytes: (b) => Promise.resolve(void (out += new TextDecoder().decode(b))),
    err: (t) => Promise.resolve(void (err += t)),
    env: (n) => env[n],
    stdinIsTerminal: false,
    stdoutIsTerminal: false,
    readStdin: () => Promise.resolve(new TextEncoder().encode(useKey ? "" : `${PASSWORD}\n`)),
    promptSecret: () => Promise.reject(new Error("no prompt expected")),
    color: false,
  });
  return { code, out, err };
}

async function audit(home: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(`${home}/audit.jsonl`);
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "hecate-sources-" });
  try {
    await initVault({ home, password: PASSWORD, kdfIterations: 600_000 });
    await fn(home);
  } finally {
    // An in-process command may still hold the audit lock to bring the state file up to date
    // after its last group write (src/audit/log.ts): let it finish before the home goes.
    await withAuditLock(home, () => Promise.resolve());
    await Deno.remove(home, { recursive: true });
  }
}

const PG = ["--engine", "postgres", "--host", "db.internal", "--user", "app"];

function envVar(out: string, name: string): string | undefined {
  const m = new RegExp(`^(?:export )?${name}=(.*)$`, "m").exec(out);
  return m?.[1]?.replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
}

Deno.test("a bad reference is a usage error at add and edit time, and the vault is left as it was", async () => {
  await withHome(async (home) => {
    const before = await Deno.readFile(`${home}/vault.hecate`).catch(() => undefined);
    for (
      const [ref, why] of [
        ["nosuch:x", /Unknown secret reference scheme "nosuch"/],
        ["no-colon-at-all", /must look like SCHEME:LOCATION/],
        ["env:", /must look like|Malformed environment reference/],
        ["env:A=B", /Malformed environment reference/],
        ["memo:BAD KEY", /Malformed memo store reference/],
        ["file:", /Malformed file reference/],
        ["memo:ok#", /Malformed memo store reference/],
      ] as const
    ) {
      const r = await cli(home, ["server", "add", "p", ...PG, "--secret-ref", ref]);
      assert.equal(r.code, 2, `${ref}: ${r.err}`);
      assert.match(r.err, why);
      // The second reference is checked too.
      const r2 = await cli(home, [
        "server",
        "add",
        "p",
        ...PG,
        "--secret-ref",
        "env:OK",
        "--secret-ref",
        ref,
      ]);
      assert.equal(r2.code, 2, `${ref} second: ${r2.err}`);
      const r3 = await cli(home, ["server", "add", "p", "--engine", "postgres", "--from", ref]);
      assert.equal(r3.code, 2, `${ref} from: ${r3.err}`);
    }
    const after = await Deno.readFile(`${home}/vault.hecate`).catch(() => undefined);
    assert.deepEqual(after, before);
    assert.equal(
      (await cli(home, ["server", "add", "p", ...PG, "--secret-ref", "env:P_PW"])).code,
      0,
    );
    const stored = await Deno.readFile(`${home}/vault.hecate`);
    const e = await cli(home, ["server", "edit", "p", "--secret-ref", "nosuch:y"]);
    assert.equal(e.code, 2);
    const e2 = await cli(home, ["server", "edit", "p", "--source-timeout", "soon"]);
    assert.equal(e2.code, 2);
    assert.deepEqual(await Deno.readFile(`${home}/vault.hecate`), stored);
  });
});

Deno.test("a custom source registered through mod.ts serves server add and hecate env end to end", async () => {
  await withHome(async (home) => {
    memo.set("billing", { password: "memo-pw-1", other: "x" });
    assert.equal(
      (await cli(home, ["server", "add", "b", ...PG, "--secret-ref", "memo:billing"])).code,
      0,
    );
    const shown = await cli(home, ["server", "show", "b", "--json"]);
    assert.equal(JSON.parse(shown.out).secrets.password, "memo:billing");
    const r = await cli(home, ["env", "b"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(envVar(r.out, "PGPASSWORD"), "memo-pw-1");
    // #FIELD picks another field of the same secret.
    memo.set("multi", { password: "no", alt: "memo-alt" });
    assert.equal(
      (await cli(home, ["server", "add", "m", ...PG, "--secret-ref", "memo:multi#alt"])).code,
      0,
    );
    assert.equal(envVar((await cli(home, ["env", "m"])).out, "PGPASSWORD"), "memo-alt");
    const records = (await audit(home)).filter((e) => e.event === "secret.resolve");
    assert.ok(records.length >= 2);
    const last = records.at(-1)!;
    assert.equal(last.outcome, "ok");
    assert.deepEqual(
      { ...(last.detail as object), latency_ms: 0 },
      { field: "password", scheme: "memo", ref: "memo:multi#alt", version: "3", latency_ms: 0 },
    );
  });
});

Deno.test("failover: slow, refusing and garbage sources are skipped in order, each audited with its reason", async () => {
  await withHome(async (home) => {
    memo.set("denied", { password: "never" });
    refusing.add("denied");
    memo.set("good", { password: "the-good-one" });
    const add = await cli(home, [
      "server",
      "add",
      "f",
      ...PG,
      "--source-timeout",
      "1s",
      ...["slow:x", "memo:denied", "junk:number", "junk:fields", "junk:throw", "memo:good"]
        .flatMap((r) => ["--secret-ref", r]),
    ]);
    assert.equal(add.code, 0, add.err);
    const r = await cli(home, ["env", "f"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(envVar(r.out, "PGPASSWORD"), "the-good-one");
    const tries = (await audit(home)).filter((e) => e.event === "secret.resolve");
    assert.deepEqual(
      tries.map((e) => [(e.detail as { ref: string }).ref, e.outcome, e.reason ?? ""]),
      [
        ["slow:x", "fail", "timed_out"],
        ["memo:denied", "fail", "forbidden"],
        ["junk:number", "fail", "malformed"],
        ["junk:fields", "fail", "field_missing"],
        ["junk:throw", "fail", "failed"],
        ["memo:good", "ok", ""],
      ],
    );
  });
});

Deno.test("every source failing: exit 18 naming each source and status, a hint, and no canary anywhere", async () => {
  await withHome(async (home) => {
    refusing.add("locked");
    memo.set("locked", { password: CANARY });
    // The source's own credential (sealed in the profile) is a canary too.
    const vault = await openVault({ home, password: PASSWORD });
    await vault.profiles.add({
      name: "c",
      engine: "postgres",
      host: "db",
      user: "app",
      sources: { timeoutMs: 500 },
      secrets: {
        password: { refs: ["junk:number", "junk:fields", "junk:throw", "memo:locked", "slow:z"] },
        "source.memo.token": { value: CANARY },
      },
    });
    await vault.close();
    for (const args of [["env", "c"], ["run", "c", "--", "true"], ["server", "test", "c"]]) {
      const r = await cli(home, args);
      assert.equal(r.code, 18, `${args}: ${r.err}`);
      assert.match(r.err, /junk store: "junk:number": malformed/);
      assert.match(r.err, /memo store: "memo:locked": forbidden/);
      assert.match(r.err, /slow store: "slow:z": timed out/);
      assert.match(r.err, /hint/i);
      for (const text of [r.out, r.err]) assert.ok(!text.includes(CANARY), `${args}: canary shown`);
    }
    const trail = await Deno.readTextFile(`${home}/audit.jsonl`);
    assert.ok(!trail.includes(CANARY), "canary in the audit trail");
    assert.match(trail, /"secret.resolve"/);
    const one = await cli(home, [
      "server",
      "add",
      "one",
      ...PG,
      "--secret-ref",
      "env:HECATE_T_UNSET",
    ]);
    assert.equal(one.code, 0);
    const r = await cli(home, ["env", "one"]);
    assert.equal(r.code, 18);
    assert.match(r.err, /environment: "env:HECATE_T_UNSET": not found \(variable is not set\)/);
  });
});

Deno.test("--from: the whole connection from one secret, command-line fields override, JSON values too", async () => {
  await withHome(async (home) => {
    memo.set("rds", {
      engine: "postgres",
      host: "rds.example",
      port: "6543",
      dbname: "billing",
      username: "rds_user",
      password: "rds-pw",
    });
    const add = await cli(home, [
      "server",
      "add",
      "w",
      "--engine",
      "postgres",
      "--from",
      "memo:rds",
    ]);
    assert.equal(add.code, 0, add.err);
    let r = await cli(home, ["env", "w"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(
      ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD"].map((n) => envVar(r.out, n)),
      ["rds.example", "6543", "billing", "rds_user", "rds-pw"],
    );
    assert.equal(
      (await cli(home, ["server", "edit", "w", "--port", "7000", "--user", "me"])).code,
      0,
    );
    r = await cli(home, ["env", "w"]);
    assert.deepEqual([envVar(r.out, "PGPORT"), envVar(r.out, "PGUSER")], ["7000", "me"]);
    // A failing first --from falls over to a JSON value in a file.
    const file = `${home}/conn.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({ host: "h2", port: 5555, user: "u2", password: "p2" }),
    );
    refusing.add("rds");
    assert.equal(
      (await cli(home, [
        "server",
        "edit",
        "w",
        "--from",
        "memo:rds",
        "--from",
        `file:${file}`,
        "--no-port",
        "--user",
        "u2",
      ])).code,
      0,
    );
    r = await cli(home, ["env", "w"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(["PGHOST", "PGPORT", "PGPASSWORD"].map((n) => envVar(r.out, n)), [
      "h2",
      "5555",
      "p2",
    ]);
    refusing.delete("rds");
    // Garbage in the JSON: malformed, exit 18.
    await Deno.writeTextFile(file, "[1,2]");
    refusing.add("rds");
    r = await cli(home, ["env", "w"]);
    assert.equal(r.code, 18);
    assert.match(r.err, /file: "file:.*conn.json": malformed/);
    refusing.delete("rds");
  });
});

Deno.test("a dynamic source supplies the user with the password; its lease goes to the caller, audited as a hash", async () => {
  await withHome(async (home) => {
    // No --user: the dynamic source makes the login.
    const add = await cli(home, [
      "server",
      "add",
      "d",
      "--engine",
      "postgres",
      "--host",
      "db",
      "--secret-ref",
      "dyn:readonly",
    ]);
    assert.equal(add.code, 0, add.err);
    const vault = await openVault({ home, password: PASSWORD });
    const held: HeldLease[] = [];
    const endpoint = await vault.endpoint("d");
    held.push(...endpoint.leases);
    await endpoint.close();
    assert.equal(held.length, 1);
    assert.match(endpoint.settings.user ?? "", /^v-readonly-\d+$/);
    assert.match(endpoint.settings.password ?? "", /^pw-\d+$/);
    assert.equal(held[0]!.source.title, "dynamic store");
    assert.equal(held[0]!.ref.raw, "dyn:readonly");
    assert.equal(held[0]!.context(new AbortController().signal).signal.aborted, false);
    await vault.close();
    const rec = (await audit(home)).filter((e) => e.event === "secret.resolve").at(-1)!;
    const detail = rec.detail as Record<string, string>;
    assert.match(detail.lease_sha256!, /^[0-9a-f]{64}$/);
    const trail = await Deno.readTextFile(`${home}/audit.jsonl`);
    assert.ok(!trail.includes(CANARY), "the lease id is never audited");
    // A lease already over is refused: lease expired, exit 18.
    assert.equal((await cli(home, ["server", "edit", "d", "--secret-ref", "dyn:expired"])).code, 0);
    const r = await cli(home, ["env", "d"]);
    assert.equal(r.code, 18);
    assert.match(r.err, /dynamic store: "dyn:expired": lease expired/);
  });
});

/** The record id of a profile (its cache file's name). */
async function cacheFile(home: string): Promise<string> {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${home}/${CACHE_DIR}`)) names.push(e.name);
  assert.equal(names.length, 1);
  return `${home}/${CACHE_DIR}/${names[0]}`;
}

Deno.test("offline cache: used within its TTL when every source fails (warned on stderr, audited), never past it", async () => {
  // A real hecate process with a file: source, as a cron job would run it.
  await withHome(async (home) => {
    const pwFile = `${home}/pw`;
    await Deno.writeTextFile(pwFile, "cached-pw\n");
    const vault = await openVault({ home, password: PASSWORD });
    await vault.profiles.add({
      name: "k",
      engine: "postgres",
      host: "db",
      user: "app",
      secrets: { password: { ref: `file:${pwFile}` } },
      // Two CLI runs must fit in the TTL, also when the first one compiles cold under CI load.
      sources: { cacheTtlMs: 15_000 },
    });
    await vault.close();
    const env = () => runHecate(["--password-stdin", "env", "k"], { home, stdin: `${PASSWORD}\n` });
    const resolvedAt = Date.now();
    assert.equal((await env()).code, 0);
    const file = await cacheFile(home);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    assert.ok(
      !(await Deno.readFile(file)).some((_, i, b) =>
        new TextDecoder().decode(b.subarray(i, i + 9)) === "cached-pw"
      ),
    );
    await Deno.remove(pwFile);
    let r = await env();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(envVar(r.stdout, "PGPASSWORD"), "cached-pw");
    assert.match(
      r.stderr,
      /^hecate: warning: .*every source of 'password' failed; using the value cached \d+s ago$/m,
    );
    let rec = (await audit(home)).filter((e) => e.event === "secret.cache").at(-1)!;
    assert.equal(rec.outcome, "ok");
    // Past the TTL: refused.
    await new Promise((res) => setTimeout(res, Math.max(0, resolvedAt + 15_500 - Date.now())));
    r = await env();
    assert.equal(r.code, 18, r.stderr);
    assert.match(r.stderr, /file: "file:.*\/pw": not found/);
    rec = (await audit(home)).filter((e) => e.event === "secret.cache").at(-1)!;
    assert.deepEqual([rec.outcome, rec.reason], ["fail", "cache_expired"]);
  });
});

Deno.test("offline cache: a tampered entry is refused", async () => {
  await withHome(async (home) => {
    memo.set("tamper", { password: "tamper-pw" });
    const add = await cli(home, [
      "server",
      "add",
      "t",
      ...PG,
      "--secret-ref",
      "memo:tamper",
      "--cache-ttl",
      "1h",
    ]);
    assert.equal(add.code, 0, add.err);
    assert.equal((await cli(home, ["env", "t"])).code, 0);
    const file = await cacheFile(home);
    const bytes = await Deno.readFile(file);
    bytes[bytes.length - 20]! ^= 1;
    await Deno.writeFile(file, bytes);
    refusing.add("tamper");
    const r = await cli(home, ["env", "t"]);
    assert.equal(r.code, 18);
    const rec = (await audit(home)).filter((e) => e.event === "secret.cache").at(-1)!;
    assert.deepEqual([rec.outcome, rec.reason], ["fail", "cache_unreadable"]);
    refusing.delete("tamper");
  });
});

Deno.test("offline cache: an API key opens its own profiles' entries, never another profile's (even moved over its own)", async () => {
  await withHome(async (home) => {
    memo.set("mine", { password: "mine-pw" });
    memo.set("theirs", { password: "theirs-pw" });
    for (const [n, key] of [["mine", "memo:mine"], ["theirs", "memo:theirs"]]) {
      const add = await cli(home, [
        "server",
        "add",
        n!,
        ...PG,
        "--secret-ref",
        key!,
        "--cache-ttl",
        "1h",
      ]);
      assert.equal(add.code, 0, add.err);
      assert.equal((await cli(home, ["env", n!])).code, 0);
    }
    const vault = await openVault({ home, password: PASSWORD });
    const apiKey = await vault.apiKeys.create({ name: "ci", profiles: ["mine"], expires: null });
    await vault.close();
    refusing.add("mine");
    refusing.add("theirs");
    const env = { HECATE_API_KEY: apiKey };
    // Its own entry: usable within the TTL.
    let r = await cli(home, ["env", "mine"], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(envVar(r.out, "PGPASSWORD"), "mine-pw");
    // The other profile is out of scope altogether.
    r = await cli(home, ["env", "theirs"], env);
    assert.equal(r.code, 5);
    // The attacker (file access and the key) puts the other entry under its own profile's name.
    const names: string[] = [];
    for await (const e of Deno.readDir(`${home}/${CACHE_DIR}`)) names.push(e.name);
    const entries = await Promise.all(names.map((n) => Deno.readFile(`${home}/${CACHE_DIR}/${n}`)));
    for (const [i, n] of names.entries()) {
      await Deno.writeFile(`${home}/${CACHE_DIR}/${n}`, entries[(i + 1) % names.length]!);
    }
    r = await cli(home, ["env", "mine"], env);
    assert.equal(r.code, 18, r.err);
    assert.ok(!r.out.includes("theirs-pw"));
    const rec = (await audit(home)).filter((e) => e.event === "secret.cache").at(-1)!;
    assert.deepEqual([rec.outcome, rec.reason], ["fail", "cache_unreadable"]);
    refusing.delete("mine");
    refusing.delete("theirs");
  });
});

Deno.test("server test lists each source with health and latency; hecate sources counts them", async () => {
  await withHome(async (home) => {
    memo.set("h", { password: "h-pw" });
    refusing.delete("h");
    const add = await cli(home, [
      "server",
      "add",
      "s",
      "--engine",
      "postgres",
      "--host",
      "127.0.0.1",
      "--port",
      "1",
      "--user",
      "u",
      "--connect-timeout",
      "500",
      "--secret-ref",
      "memo:nothere",
      "--secret-ref",
      "memo:h",
    ]);
    assert.equal(add.code, 0, add.err);
    assert.equal(
      (await cli(home, ["server", "add", "s2", ...PG, "--secret-ref", "env:HOME"])).code,
      0,
    );
    const t = await cli(home, ["server", "test", "s"]);
    assert.match(t.out, /source password memo:nothere \(memo store\): FAIL, [\d.]+ ms, absent/);
    assert.match(t.out, /source password memo:h \(memo store\): ok, [\d.]+ ms, present/);
    const list = await cli(home, ["sources", "--json"]);
    assert.equal(list.code, 0, list.err);
    assert.deepEqual(
      JSON.parse(list.out).map((
        s: { scheme: string; profiles: number; refs: number },
      ) => [s.scheme, s.profiles, s.refs]),
      [["env", 1, 1], ["memo", 1, 2]],
    );
    const checked = await cli(home, ["sources", "--check"]);
    assert.match(checked.out, /^memo\s+1 profile\s+memo store\s+FAIL \(1\/2 answered\)$/m);
    assert.equal(checked.code, 18, "a failing source makes --check exit 18");
    assert.equal((await cli(home, ["server", "remove", "s"])).code, 0);
    const healthy = await cli(home, ["sources", "--check"]);
    assert.equal(healthy.code, 0, healthy.out + healthy.err);
  });
});

Deno.test("a resolution that fails after a dynamic login was made revokes that login", async () => {
  await withHome(async (home) => {
    const vault = await openVault({ home, password: PASSWORD });
    await vault.profiles.add({
      name: "half",
      engine: "postgres",
      host: "db",
      secrets: {
        password: { ref: "dyn:half" },
        // A second secret whose only source fails: the whole use fails.
        extra: { ref: "env:HECATE_T_NEVER_SET" },
      },
    });
    const before = revoked.length;
    await assert.rejects(vault.endpoint("half"), (e: Error & { code?: string }) => {
      assert.equal(e.code, "secret_unresolved");
      return true;
    });
    await vault.close();
    assert.equal(revoked.length, before + 1);
    assert.match(revoked.at(-1)!, /^lease\//);
  });
});

Deno.test("a custom source's password logs in to a real PostgreSQL: query, and a whole --from connection", async () => {
  await using pg = await startPostgres();
  await withHome(async (home) => {
    memo.set("pg-login", { password: pg.password });
    memo.set("pg-whole", {
      host: pg.host,
      port: String(pg.port),
      dbname: pg.database,
      username: pg.user,
      password: pg.password,
    });
    const base = ["--engine", "postgres", "--tls", "disable"];
    const add = await cli(home, [
      "server",
      "add",
      "real",
      ...base,
      "--host",
      pg.host,
      "--port",
      String(pg.port),
      "--database",
      pg.database,
      "--user",
      pg.user,
      "--secret-ref",
      "memo:pg-login",
    ]);
    assert.equal(add.code, 0, add.err);
    let r = await cli(home, ["query", "real", "select current_user as u", "--format", "csv"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^${pg.user}$`, "m"));
    assert.equal(
      (await cli(home, ["server", "add", "whole", ...base, "--from", "memo:pg-whole"])).code,
      0,
    );
    r = await cli(home, ["query", "whole", "select 40 + 2 as n", "--format", "csv"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^42$/m);
    for (const out of [r.out, r.err]) assert.ok(!out.includes(pg.password));
  });
});

Deno.test("the per-source timeout: a source past it loses with timed_out; a timeout beyond a timer's range does not fire at once", async () => {
  const { withTimeout, TimedOut } = await import("../providers/sources/resolve.ts");
  // A source that never answers and ignores its signal still loses, and its signal is aborted.
  let seen: AbortSignal | undefined;
  await assert.rejects(
    withTimeout((signal) => {
      seen = signal;
      return new Promise<never>(() => {});
    }, 30),
    (e: unknown) => e instanceof TimedOut,
  );
  assert.equal(seen?.aborted, true);
  // 30 days (more than a timer's 2^31-1 ms): the answer wins, the timer does not fire at once.
  const month = 30 * 24 * 3600 * 1000;
  const got = await withTimeout(
    (signal) =>
      new Promise<string>((r) => setTimeout(() => r(signal.aborted ? "aborted" : "ok"), 20)),
    month,
  );
  assert.equal(got, "ok");
});
