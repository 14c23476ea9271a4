/**
 * Attacks on the audit trail from issue 11, performed as the attacker would, through the files
 * and the `hecate` command:
 *
 * - with write access to the home and no password, forge a retention record from the current
 *   chain key, delete every segment and rewrite the state: `audit verify` must exit 20;
 *   a retention made by a password unlock still verifies intact;
 * - a temp state file left by a killed writer (it holds a chain key) is gone after the next
 *   append (planted as such a writer leaves it: the window is too short to hit with a kill);
 * - an older slot of `audit.state` left by a writer killed between writing the new slot and
 *   zeroing the old (it holds an older chain key, which could rewrite the entries after it) is
 *   gone after the next append (planted: the window is one flush);
 * - after `init` the state file never holds the first chain key A0;
 * - a forged line with terminal escape sequences is printed escaped by `audit show`.
 */

import assert from "node:assert/strict";
import { entryMac, nextKey, stepKey, ZERO_MAC } from "../src/audit/chain.ts";
import { canonicalEntry, sealedLine } from "../src/audit/entry.ts";
import { FileAuditLog, startChain } from "../src/audit/log.ts";
import { closedSegments } from "../src/audit/segments.ts";
import {
  readState,
  readStateFile,
  SLOT_BYTES,
  STATE_FILE,
  STATE_TEMP,
} from "../src/audit/state.ts";
import { verifyTrail } from "../src/audit/verify.ts";
import { initVault, openVault } from "../src/hecate.ts";
import { toBase64Url } from "../src/vault/encoding.ts";
import { MASTER_PASSWORD as PW, runHecate, type RunHecateResult } from "./support/cli.ts";

const KDF = ["--kdf-iterations", "600000"];

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "hecate-audit-attack-" });
  await Deno.chmod(root, 0o700);
  try {
    await fn(`${root}/h`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function hecate(home: string, args: string[], env: Record<string, string> = {}) {
  return runHecate(["--password-stdin", ...args], { home, stdin: `${PW}\n`, env });
}

function ok(r: RunHecateResult, what: string): RunHecateResult {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

/** A0, read as the owner would: unlocking the vault through the library (no record written). */
async function chainKeyOf(home: string): Promise<Uint8Array> {
  const vault = await openVault({
    home,
    password: PW,
    audit: { append: () => Promise.resolve() },
  });
  return vault.auditChainKey()!;
}

/** Every file of the trail, as text. */
async function trailText(home: string): Promise<string> {
  let text = await Deno.readTextFile(`${home}/audit.jsonl`).catch(() => "");
  for (const s of await closedSegments(home)) text += await Deno.readTextFile(s.path);
  return text;
}

/**
 * The attack of finding 1, with only the files: read the state (the current key A(n), as the
 * design allows), write one retention line claiming entries 1..n were removed, sealed with A(n),
 * delete every segment, and rewrite the state to match. `auth` is what the line claims as its
 * proof (absent, as an old writer wrote it, or made up).
 */
async function forgeRetention(home: string, auth?: string): Promise<void> {
  const s = (await readState(home))!;
  const removed = [{
    segment: "audit.segments/audit-000000000001.jsonl",
    first_seq: 1,
    last_seq: s.seq,
    last_mac: toBase64Url(s.mac),
  }];
  const canonical = canonicalEntry(
    s.seq + 1,
    new Date().toISOString(),
    {
      event: "audit.retention",
      actor: { kind: "none" },
      outcome: "ok",
      detail: auth === undefined ? { removed } : { removed, auth },
    },
    4242,
    "h",
  );
  const mac = entryMac(s.key, s.mac, new TextEncoder().encode(canonical));
  const line = sealedLine(canonical, mac);
  await Deno.remove(`${home}/audit.segments`, { recursive: true }).catch(() => {});
  await Deno.writeTextFile(`${home}/audit.jsonl`, line);
  await Deno.writeTextFile(
    `${home}/${STATE_FILE}`,
    JSON.stringify({
      v: 1,
      seq: s.seq + 1,
      mac: toBase64Url(mac),
      key: toBase64Url(nextKey(s.key)),
      size: new TextEncoder().encode(line).length,
      segment_first: s.seq + 1,
      segment_started: Date.now(),
    }) + "\n",
  );
}

Deno.test("a retention record forged with the current chain key does not make a wiped trail intact", async (t) => {
  for (
    const [name, auth] of [
      ["no proof, as an old writer wrote it", undefined],
      ["a made-up proof", toBase64Url(crypto.getRandomValues(new Uint8Array(32)))],
      ["a malformed proof", "not base64!"],
    ] as const
  ) {
    await t.step(name, async () => {
      await withHome(async (home) => {
        ok(await hecate(home, ["init", ...KDF]), "init");
        const env = { HECATE_AUDIT_SEGMENT_BYTES: "400" }; // a segment per entry or two
        for (let i = 0; i < 3; i++) ok(await hecate(home, ["audit", "verify"], env), "verify");
        assert.ok((await closedSegments(home)).length >= 2, "the trail should span segments");

        await forgeRetention(home, auth);

        const r = await hecate(home, ["audit", "verify"]);
        assert.equal(r.code, 20, `verify must fail: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /\(segment_missing\)/);
        assert.match(r.stderr, /entries 1\.\.\d+ are gone/);
        assert.match(r.stderr, /forged/);
        assert.doesNotMatch(r.stdout, /intact/);
      });
    });
  }
});

Deno.test("a retention made by a password unlock removes old segments and still verifies intact", async () => {
  await withHome(async (home) => {
    ok(await hecate(home, ["init", ...KDF]), "init");
    const env = { HECATE_AUDIT_SEGMENT_BYTES: "400", HECATE_AUDIT_KEEP_SEGMENTS: "1" };
    // Password unlocks (each writes its record, closing a segment now and then).
    for (let i = 0; i < 6; i++) ok(await hecate(home, ["server", "list"], env), "server list");
    assert.ok((await closedSegments(home)).length <= 1, "retention removed nothing");
    assert.ok(!(await trailText(home)).includes('"seq":1,'), "entry 1 is still on disk");
    const r = ok(await hecate(home, ["audit", "verify"]), "final verify");
    assert.match(r.stdout, /^Audit trail intact: \d+ entries \(seq (\d+)\.\./);
    assert.match(r.stdout, /Entries 1\.\.\d+ removed by retention \(proof checked under A0\)/);
    // The record's proof is bound to the chain position: moving the start on breaks it.
    const a0 = await chainKeyOf(home);
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    const first = (await closedSegments(home))[0];
    if (first) {
      await Deno.remove(first.path);
      const after = await hecate(home, ["audit", "verify"]);
      assert.equal(after.code, 20, after.stdout);
      assert.match(after.stderr, /\((segment_missing|file_missing)\)/);
    }
  });
});

Deno.test("an API-key or library process without A0 closes segments but never removes one", async () => {
  await withHome(async (home) => {
    await Deno.mkdir(home, { mode: 0o700 });
    const a0 = await startChain(home);
    const log = new FileAuditLog(home, { segmentBytes: 1, keepSegments: 0 });
    for (let i = 0; i < 5; i++) {
      await log.append({ event: "query", actor: { kind: "apikey", id: "k" }, outcome: "ok" });
    }
    assert.equal((await closedSegments(home)).length, 5);
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, true, report.problem?.message ?? "");
    assert.equal(report.firstSeq, 1);
  });
});

Deno.test("a trail whose segments an older version removed (no proof) is reported, not intact", async () => {
  await withHome(async (home) => {
    await Deno.mkdir(home, { mode: 0o700 });
    const a0 = await startChain(home);
    // Every append closes the segment before it (segmentBytes 1), as the old writer's retention
    // record opened a new segment; that record is genuine and in the chain, only unproven.
    const log = new FileAuditLog(home, { segmentBytes: 1 });
    for (let i = 0; i < 3; i++) {
      await log.append({ event: "query", actor: { kind: "password" }, outcome: "ok" });
    }
    const segs = await closedSegments(home);
    const state = (await readState(home))!;
    await log.append({
      event: "audit.retention",
      actor: { kind: "none" },
      outcome: "ok",
      detail: {
        removed: [{
          segment: segs[0]!.name,
          first_seq: 1,
          last_seq: state.seq,
          last_mac: toBase64Url(state.mac),
        }],
      },
    });
    for (const s of await closedSegments(home)) await Deno.remove(s.path);
    const report = await verifyTrail(home, a0);
    assert.equal(report.ok, false);
    assert.equal(report.problem?.kind, "segment_missing", report.problem?.message ?? "");
    assert.match(report.problem!.message, /carries no proof/);
  });
});

Deno.test("a temp state file left by a killed writer is removed by the next append", async () => {
  await withHome(async (home) => {
    ok(await hecate(home, ["init", ...KDF]), "init");
    // What a writer killed between writing its temp file and renaming it leaves: a state with a
    // chain key, under the old random name and under the fixed one.
    const state = await Deno.readTextFile(`${home}/${STATE_FILE}`);
    const planted = [`${home}/.audit.state.tmp-0a1b2c3d4e5f`, `${home}/${STATE_TEMP}`];
    for (const p of planted) await Deno.writeTextFile(p, state, { mode: 0o600 });
    ok(await hecate(home, ["server", "list"]), "a command that appends (its unlock)");
    for (const p of planted) {
      await assert.rejects(() => Deno.stat(p), Deno.errors.NotFound, `${p} survived`);
    }
    const names = [...Deno.readDirSync(home)].map((e) => e.name);
    assert.deepEqual(names.filter((n) => n.includes("tmp")), []);
  });
});

Deno.test("an older state slot left by a killed writer is gone after the next append", async () => {
  await withHome(async (home) => {
    ok(await hecate(home, ["init", ...KDF]), "init");
    ok(await hecate(home, ["server", "list"]), "an append");
    const older = await Deno.readFile(`${home}/${STATE_FILE}`);
    const s1 = (await readStateFile(home))!;
    ok(await hecate(home, ["server", "list"]), "another append");
    const s2 = (await readStateFile(home))!;
    assert.notEqual(s1.slot, s2.slot, "the update did not go to the other slot");
    // What a writer killed between its two slot writes leaves: the new slot written and flushed,
    // the previous one (with its older key) not yet zeroed.
    const at = s2.slot! * SLOT_BYTES;
    const planted = new Uint8Array(older);
    planted.set((await Deno.readFile(`${home}/${STATE_FILE}`)).subarray(at, at + SLOT_BYTES), at);
    await Deno.writeFile(`${home}/${STATE_FILE}`, planted);
    const text = (b: Uint8Array) => Array.from(b, (c) => String.fromCharCode(c)).join("");
    assert.ok(text(planted).includes(toBase64Url(s1.state.key)), "the plant holds no older key");
    assert.equal((await readStateFile(home))!.stale, true);

    ok(await hecate(home, ["server", "list"]), "a command that appends (its unlock)");
    const after = await Deno.readFile(`${home}/${STATE_FILE}`);
    assert.ok(!text(after).includes(toBase64Url(s1.state.key)), "the older chain key survived");
    assert.ok(!text(after).includes(toBase64Url(s2.state.key)), "the replaced chain key survived");
    const f = (await readStateFile(home))!;
    assert.equal(f.stale, false);
    const other = after.subarray((1 - f.slot!) * SLOT_BYTES, (2 - f.slot!) * SLOT_BYTES);
    assert.ok(other.every((x) => x === 0), "the other slot is not zeroed");
    ok(await hecate(home, ["audit", "verify"]), "verify");
  });
});

Deno.test("after init the state file never holds the first chain key", async () => {
  await withHome(async (home) => {
    ok(await hecate(home, ["init", ...KDF]), "init");
    const text = await Deno.readTextFile(`${home}/${STATE_FILE}`);
    const state = (await readState(home))!;
    const a0 = await chainKeyOf(home);
    assert.notDeepEqual(state.key, a0);
    assert.ok(!text.includes(toBase64Url(a0)), "A0 is in the state file");
    // The init entry was written (with A0) before the state file existed; the state has moved
    // on from there (init, then the record of the vault write), never back to A0.
    const written = (await Deno.readTextFile(`${home}/audit.jsonl`)).trimEnd().split("\n");
    assert.equal(state.seq, written.length);
    assert.deepEqual(state.key, stepKey(a0, written.length));
    const first = JSON.parse((await Deno.readTextFile(`${home}/audit.jsonl`)).split("\n")[0]!);
    assert.equal(first.event, "init");
    assert.equal(first.mac, toBase64Url(entryMac(a0, ZERO_MAC, canonicalOf(first))));
    // Nothing else in the home holds A0 in the clear either.
    for (const e of Deno.readDirSync(home)) {
      if (!e.isFile) continue;
      const bytes = await Deno.readFile(`${home}/${e.name}`);
      assert.ok(!new TextDecoder().decode(bytes).includes(toBase64Url(a0)), e.name);
    }
  });
});

Deno.test("a chain started by the library, or for a vault with its own sink, never puts A0 in the state", async () => {
  await withHome(async (home) => {
    await Deno.mkdir(home, { mode: 0o700 });
    const a0 = await startChain(home);
    const state = (await readState(home))!;
    assert.notDeepEqual(state.key, a0);
    assert.deepEqual(state.key, stepKey(a0, 1));
  });
  await withHome(async (home) => {
    // A custom sink used to leave the file trail without any entry: A0 stayed in the state.
    const seen: string[] = [];
    await initVault({
      home,
      password: PW,
      kdfIterations: 600_000,
      audit: { append: (e) => Promise.resolve(void seen.push(e.event)) },
    });
    assert.deepEqual(seen, ["init", "vault.write"]);
    const a0 = await chainKeyOf(home);
    assert.notDeepEqual((await readState(home))!.key, a0);
    assert.ok(!(await Deno.readTextFile(`${home}/${STATE_FILE}`)).includes(toBase64Url(a0)));
  });
});

/** The canonical bytes of a parsed line (members in stored order, without mac). */
function canonicalOf(o: Record<string, unknown>): Uint8Array {
  const { mac: _, ...rest } = o;
  return new TextEncoder().encode(JSON.stringify(rest));
}

Deno.test("audit show prints a forged line's terminal escapes escaped, in text and JSON", async () => {
  await withHome(async (home) => {
    ok(await hecate(home, ["init", ...KDF]), "init");
    const esc = "\x1b]0;owned\x07\x1b[2J\x1b[1A\x9b31m\x7f\u202e";
    const forged = [
      // Valid JSON: the controls as JSON escapes, C1/DEL/bidi raw (JSON allows them raw).
      JSON.stringify({
        seq: 2,
        time: "2026-01-01T00:00:00.000Z",
        event: `unlock${esc}`,
        actor: { kind: "password", name: esc },
        profile: esc,
        outcome: "ok",
        reason: esc,
        pid: 1,
        host: esc,
        mac: "x",
      }),
      // Not JSON at all: raw ESC bytes straight in the line.
      `{"seq":3,"event":"${esc}"`,
      // JSON whose members have the wrong types.
      JSON.stringify({ seq: 4, time: { toString: 1 }, event: esc, outcome: "ok" }),
    ];
    // The genuine lines init wrote (init, the vault write) come first.
    const genuine = (await Deno.readTextFile(`${home}/audit.jsonl`)).trimEnd().split("\n").length;
    await Deno.writeTextFile(`${home}/audit.jsonl`, forged.join("\n") + "\n", { append: true });
    for (
      const args of [["audit", "show"], ["audit", "show", "--json"], [
        "audit",
        "show",
        "--last",
        "2",
      ]]
    ) {
      const r = await runHecate(args, { home });
      assert.equal(r.code, 0, r.stderr);
      const text = r.stdout.replaceAll("\n", "");
      assert.doesNotMatch(text, /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u, `${args.join(" ")}`);
      const shown = r.stdout.trimEnd().split("\n").length;
      assert.equal(shown, args.includes("--last") ? 2 : genuine + 3, "every line is shown");
      if (args.includes("--json")) {
        const lines = r.stdout.trimEnd().split("\n");
        // The well-formed lines keep their value: the escapes are JSON's.
        assert.equal(JSON.parse(lines[genuine]!).event, `unlock${esc}`);
      } else {
        assert.match(r.stdout, /\\x1b/);
      }
    }
  });
});
