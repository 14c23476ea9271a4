/**
 * The audit trail through the `hecate` command (main.ts spawned with the permissions of the
 * deno.json `hecate` task): `audit verify` detects and names each kind of tampering with exit
 * code 20; a query is refused (exit 12) when its records cannot be written; and no secret,
 * key, SQL text or parameter value ever reaches the trail.
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { FileAuditLog } from "../src/audit/log.ts";
import { readState } from "../src/audit/state.ts";
import { toBase64Url } from "../src/vault/encoding.ts";
import { HECATE_PERMISSIONS } from "../scripts/permissions.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PERMISSIONS = HECATE_PERMISSIONS;
const PW = `master-CANARY-${crypto.randomUUID()}`;
const DB_SECRET = `dbsecret-CANARY-${crypto.randomUUID()}`;
const PARAM = `param-CANARY-${crypto.randomUUID()}`;
const SQL_LITERAL = `sql-CANARY-${crypto.randomUUID()}`;
// Small segments so that the base trail spans several files.
const ENV = { NO_COLOR: "1", HECATE_AUDIT_SEGMENT_BYTES: "1200" };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function hecate(
  home: string,
  args: string[],
  stdin = "",
  env: Record<string, string> = {},
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, MAIN, "--home", home, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { ...ENV, ...env },
    clearEnv: false,
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function ok(home: string, args: string[], stdin = ""): Promise<Run> {
  const r = await hecate(home, args, stdin);
  assert.equal(r.code, 0, `hecate ${args.join(" ")}: ${r.stderr}`);
  return r;
}

async function copyHome(from: string): Promise<string> {
  const to = await Deno.makeTempDir({ prefix: "hecate-audit-cli-case-" });
  const r = await new Deno.Command("cp", { args: ["-a", `${from}/.`, to] }).output();
  assert.equal(r.code, 0);
  return to;
}

async function linesOf(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
}

async function writeLines(path: string, lines: string[]): Promise<void> {
  await Deno.writeTextFile(path, lines.map((l) => l + "\n").join(""));
}

const SEG1 = "audit.segments/audit-000000000001.jsonl";

/** Builds a vault with a few profiles and queries; returns the home and an early state copy. */
async function buildBase(root: string): Promise<{ home: string; oldState: string }> {
  const home = `${root}/base`;
  await Deno.writeFile(`${root}/lite.db`, new Uint8Array()); // an empty file is an empty database
  await ok(home, ["init", "--kdf-iterations", "600000", "--password-stdin"], `${PW}\n`);
  await ok(
    home,
    [
      "server",
      "add",
      "lite",
      "--engine",
      "sqlite",
      "--database",
      `${root}/lite.db`,
      "--password-stdin",
    ],
    `${PW}\n`,
  );
  const oldState = await Deno.readTextFile(`${home}/audit.state`);
  await ok(
    home,
    [
      "server",
      "add",
      "pg",
      "--engine",
      "postgres",
      "--host",
      "127.0.0.1",
      "--port",
      "1",
      "--database",
      "d",
      "--user",
      "u",
      "--tls",
      "disable",
      "--password-stdin",
      "--secret-stdin",
    ],
    `${PW}\n${DB_SECRET}\n`,
  );
  await ok(home, ["query", "lite", "create table t (x text)", "--password-stdin"], `${PW}\n`);
  await ok(
    home,
    ["query", "lite", `select '${SQL_LITERAL}' as a, ? as b`, "--param", PARAM, "--password-stdin"],
    `${PW}\n`,
  );
  // Reads the secret and fails to connect (nothing listens on port 1).
  const failed = await hecate(home, ["query", "pg", "select 1", "--password-stdin"], `${PW}\n`);
  assert.equal(failed.code, 6, failed.stderr);
  await hecate(home, ["server", "list", "--password-stdin"], "wrong password\n");
  return { home, oldState };
}

async function verifyFails(home: string, kind: string, where: RegExp): Promise<void> {
  const r = await hecate(home, ["audit", "verify", "--password-stdin"], `${PW}\n`);
  assert.equal(r.code, 20, `expected exit 20 for ${kind}: ${r.stdout}${r.stderr}`);
  const first = r.stderr.split("\n").find((l) => l.startsWith("hecate: error:")) ?? "";
  assert.match(first, new RegExp(`^hecate: error: Audit trail failed verification \\(${kind}\\)`));
  assert.match(r.stderr, where);
}

Deno.test("audit verify through the CLI", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "hecate-audit-cli-" });
  const cases: string[] = [];
  try {
    const { home, oldState } = await buildBase(root);

    await t.step("an intact trail across segments verifies with exit 0", async () => {
      const segs = [...Deno.readDirSync(`${home}/audit.segments`)];
      assert.ok(segs.length >= 2, `only ${segs.length} closed segments`);
      const r = await ok(home, ["audit", "verify", "--password-stdin"], `${PW}\n`);
      assert.match(r.stdout, /^Audit trail intact: \d+ entries \(seq 1\.\.\d+\)/);
      const show = await ok(home, ["audit", "show", "--json"]);
      const events = show.stdout.trim().split("\n").map((l) => JSON.parse(l).event);
      for (const e of ["init", "unlock", "profile.add", "profile.read", "query", "connect"]) {
        assert.ok(events.includes(e), `no ${e} event`);
      }
    });

    await t.step(
      "no secret, key, SQL text or parameter value appears in any trail file",
      async () => {
        const vault = await openVault({
          home,
          password: PW,
          audit: { append: () => Promise.resolve() }, // read-only look: no record of this test's unlock
        });
        const a0 = toBase64Url(vault.auditChainKey()!);
        const state = { key: toBase64Url((await readState(home))!.key) };
        const files = [`${home}/audit.jsonl`, `${home}/audit.state`];
        for (const e of Deno.readDirSync(`${home}/audit.segments`)) {
          files.push(`${home}/audit.segments/${e.name}`);
        }
        const logText = (await Promise.all(
          files.slice(0, 1).concat(files.slice(2)).map((f) => Deno.readTextFile(f)),
        )).join("");
        const all = logText + await Deno.readTextFile(`${home}/audit.state`);
        for (const canary of [PW, DB_SECRET, PARAM, SQL_LITERAL, "wrong password", a0]) {
          assert.ok(!all.includes(canary), `canary found in the trail: ${canary.slice(0, 12)}...`);
        }
        assert.ok(all.includes("CANARY") === false);
        assert.ok(!logText.includes(state.key), "the current chain key is in the log");
        const failedUnlock = logText.split("\n").find((l) => l.includes('"reason":"auth_failed"'));
        assert.ok(failedUnlock, "the failed unlock was not recorded");
      },
    );

    const scenarios: [string, string, (h: string) => Promise<void>, RegExp][] = [
      ["edit one field", "edited", async (h) => {
        const ls = await linesOf(`${h}/${SEG1}`);
        ls[1] = ls[1]!.replace('"outcome":"ok"', '"outcome":"fail"');
        await writeLines(`${h}/${SEG1}`, ls);
      }, /Line 2 of "audit\.segments\/audit-000000000001\.jsonl" \(seq 2\) was altered/],
      [
        "delete a line",
        "missing",
        async (h) => {
          const ls = await linesOf(`${h}/${SEG1}`);
          ls.splice(2, 1);
          await writeLines(`${h}/${SEG1}`, ls);
        },
        /Entries 3\.\.3 are missing before line 3 of "audit\.segments\/audit-000000000001\.jsonl"/,
      ],
      ["swap two lines", "reordered", async (h) => {
        const ls = await linesOf(`${h}/${SEG1}`);
        [ls[1], ls[2]] = [ls[2]!, ls[1]!];
        await writeLines(`${h}/${SEG1}`, ls);
      }, /Line 2 of "audit\.segments\/audit-000000000001\.jsonl" is out of order/],
      ["truncate the tail", "truncated", async (h) => {
        const ls = await linesOf(`${h}/audit.jsonl`);
        await writeLines(`${h}/audit.jsonl`, ls.slice(0, -2));
      }, /were cut off/],
      ["cut the last line in half", "truncated", async (h) => {
        const text = await Deno.readTextFile(`${h}/audit.jsonl`);
        await Deno.writeTextFile(`${h}/audit.jsonl`, text.slice(0, -40));
      }, /is incomplete: the file was cut mid-line/],
      ["delete a whole segment", "segment_missing", async (h) => {
        const segs = [...Deno.readDirSync(`${h}/audit.segments`)].map((e) => e.name).sort();
        await Deno.remove(`${h}/audit.segments/${segs[1]}`);
      }, /Segment "audit\.segments\/audit-\d{12}\.jsonl" is missing: entries \d+\.\.\d+ are gone/],
      ["replace the state file with an older copy", "state_rolled_back", async (h) => {
        await Deno.writeTextFile(`${h}/audit.state`, oldState);
      }, /it was replaced by an older copy/],
      ["delete the log", "file_missing", async (h) => {
        await Deno.remove(`${h}/audit.jsonl`);
      }, /The audit log "audit\.jsonl" is missing/],
      ["delete the state file", "state_missing", async (h) => {
        await Deno.remove(`${h}/audit.state`);
      }, /state file "audit\.state" is missing/],
    ];
    for (const [name, kind, tamper, where] of scenarios) {
      await t.step(`${name}: exit 20, named as ${kind}`, async () => {
        const h = await copyHome(home);
        cases.push(h);
        await tamper(h);
        await verifyFails(h, kind, where);
      });
    }

    await t.step(
      "a query whose record cannot be written does not run (exit 12); warn mode runs it",
      async () => {
        const h = await copyHome(home);
        cases.push(h);
        const db = `${h}/fc.db`;
        await Deno.writeFile(db, new Uint8Array());
        await ok(
          h,
          ["server", "add", "fc", "--engine", "sqlite", "--database", db, "--password-stdin"],
          `${PW}\n`,
        );
        await ok(h, ["query", "fc", "create table t (x text)", "--password-stdin"], `${PW}\n`);
        const log = `${h}/audit.jsonl`;
        const saved = `${h}/audit.jsonl.saved`;
        await Deno.rename(log, saved);
        await Deno.symlink("/dev/full", log); // every write fails with ENOSPC
        const full = await hecate(h, [
          "query",
          "fc",
          "insert into t values ('x')",
          "--password-stdin",
        ], `${PW}\n`);
        assert.equal(full.code, 12, full.stderr);
        assert.match(full.stderr, /^hecate: error: Cannot write the audit record/);
        const warned = await hecate(
          h,
          ["query", "fc", "insert into t values ('w')", "--password-stdin"],
          `${PW}\n`,
          { HECATE_AUDIT_FAILURE: "warn" },
        );
        assert.equal(warned.code, 0, warned.stderr);
        assert.match(
          warned.stderr,
          /hecate: warning: Cannot write the audit record.*audit failure mode "warn": continuing/,
        );
        await Deno.remove(log);
        await Deno.rename(saved, log);

        // Permission denied: an immutable file (root) or a read-only one (other users).
        const root = Deno.uid() === 0;
        const lock = root
          ? await new Deno.Command("chattr", { args: ["+i", log], stderr: "null" }).output()
            .then((o) => o.success).catch(() => false)
          : (await Deno.chmod(log, 0o400), true);
        if (lock) {
          try {
            const denied = await hecate(h, [
              "query",
              "fc",
              "insert into t values ('y')",
              "--password-stdin",
            ], `${PW}\n`);
            assert.equal(denied.code, 12, denied.stderr);
          } finally {
            if (root) await new Deno.Command("chattr", { args: ["-i", log] }).output();
            else await Deno.chmod(log, 0o600);
          }
        }
        const count = await ok(h, [
          "query",
          "fc",
          "select x from t order by x",
          "--format",
          "csv",
          "--password-stdin",
        ], `${PW}\n`);
        assert.equal(count.stdout.trim(), "x\nw", "a refused insert ran");
        // Refused and warn-mode runs wrote no records at all, so the chain is still whole.
        await ok(h, ["audit", "verify", "--password-stdin"], `${PW}\n`);
      },
    );

    await t.step("show filters by server, actor, outcome, since and last", async () => {
      const all = (await ok(home, ["audit", "show", "--json"])).stdout.trim().split("\n");
      const only = async (...args: string[]) =>
        (await ok(home, ["audit", "show", "--json", ...args])).stdout.trim().split("\n").filter(
          Boolean,
        ).map((l) => JSON.parse(l));
      assert.ok((await only("--server", "pg")).every((e) => e.profile === "pg"));
      assert.ok((await only("--server", "pg")).length >= 2);
      const fails = await only("--outcome", "fail");
      assert.ok(fails.length >= 2 && fails.every((e) => e.outcome === "fail"));
      assert.equal((await only("--last", "3")).length, 3);
      assert.deepEqual((await only("--last", "1"))[0], JSON.parse(all.at(-1)!));
      assert.equal((await only("--actor", "apikey")).length, 0);
      const byPassword = await only("--actor", "password");
      assert.ok(byPassword.length > 0 && byPassword.every((e) => e.actor.kind === "password"));
      assert.equal((await only("--since", "2999-01-01")).length, 0);
      assert.equal((await only("--since", "1h")).length, all.length);
      const human = await ok(home, ["audit", "show", "--last", "2"]);
      assert.equal(human.stdout.trim().split("\n").length, 2);
      const bad = await hecate(home, ["audit", "show", "--outcome", "maybe"]);
      assert.equal(bad.code, 2);
      const badSince = await hecate(home, ["audit", "show", "--since", "yesterday-ish"]);
      assert.equal(badSince.code, 2, badSince.stderr);
    });

    await t.step(
      "export writes a verifiable file that holds no key; a changed export fails",
      async () => {
        const out = `${root}/export.jsonl`;
        await ok(home, ["audit", "export", "--output", out, "--password-stdin"], `${PW}\n`);
        const text = await Deno.readTextFile(out);
        assert.equal((await Deno.stat(out)).mode! & 0o777, 0o600);
        assert.match(text.split("\n")[0]!, /^\{"format":"hecate-audit-export\/1"/);
        const r = await ok(
          home,
          ["audit", "verify", "--export", out, "--password-stdin"],
          `${PW}\n`,
        );
        assert.match(r.stdout, /^Export intact: \d+ entries \(seq 1\.\./);
        await Deno.writeTextFile(out, text.replace('"event":"unlock"', '"event":"unlocK"'));
        const bad = await hecate(
          home,
          ["audit", "verify", "--export", out, "--password-stdin"],
          `${PW}\n`,
        );
        assert.equal(bad.code, 20);
        assert.match(bad.stderr, /Line \d+ of the export \(seq \d+\) was altered/);
      },
    );
  } finally {
    for (const c of cases) await Deno.remove(c, { recursive: true }).catch(() => {});
    await Deno.remove(root, { recursive: true });
  }
});

// Keeps the FileAuditLog import honest: the CLI and the library write the same trail.
Deno.test("a library append between CLI runs keeps the trail verifiable", async () => {
  const root = await Deno.makeTempDir({ prefix: "hecate-audit-cli-mix-" });
  try {
    const home = `${root}/h`;
    await ok(home, ["init", "--kdf-iterations", "600000", "--password-stdin"], `${PW}\n`);
    await new FileAuditLog(home).append({
      event: "unlock",
      actor: { kind: "apikey", id: "k9", name: "cron" },
      profile: "billing",
      outcome: "ok",
    });
    const r = await ok(home, ["audit", "verify", "--password-stdin"], `${PW}\n`);
    assert.match(r.stdout, /^Audit trail intact: 3 entries/); // init, vault.write, the library's unlock
    const shown = await ok(home, ["audit", "show", "--actor", "cron"]);
    assert.match(shown.stdout, /unlock\s+ok\s+apikey:cron\(k9\)\s+billing/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
