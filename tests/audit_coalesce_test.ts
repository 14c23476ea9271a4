/**
 * The unlock record of an API-key `hecate query` is written in one flush with the profile.read
 * record that follows it (src/audit/coalesce.ts), and nothing is lost or released early: a held
 * record goes out with the next one or on flush, failures are never held, the chain verifies,
 * and when the pair cannot be written the query does not run.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { CoalescingAuditSink } from "../src/audit/coalesce.ts";
import { FileAuditLog, startChain } from "../src/audit/log.ts";
import type { AuditEvent } from "../src/audit/entry.ts";
import { auditLines, PW, runHecate, vaultWith, withHome } from "./support/access.ts";

const actor = { kind: "apikey", id: "k1", name: "cron" } as const;
const unlockOk: AuditEvent = { event: "unlock", actor, outcome: "ok" };
const read: AuditEvent = { event: "profile.read", actor, profile: "p", outcome: "ok" };

/** The trail's entries after the chain's own first entry (`audit.start` from startChain). */
async function lines(home: string): Promise<Record<string, unknown>[]> {
  try {
    return (await auditLines(home)).filter((l) => l.event !== "audit.start");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

Deno.test("a held unlock goes out with the next record, in one write, in order", async () => {
  await withHome(async (home) => {
    await startChain(home);
    const sink = new CoalescingAuditSink(new FileAuditLog(home));
    await sink.append(unlockOk);
    assert.deepEqual(await lines(home), [], "held, not yet written");
    await sink.append(read);
    const got = await lines(home);
    assert.deepEqual(got.map((l) => [l.seq, l.event]), [[2, "unlock"], [3, "profile.read"]]);
    assert.equal(got[0]!.time, got[1]!.time, "one batch: one write time");
    await sink.flush();
    assert.equal((await lines(home)).length, 2, "nothing left to flush");
  });
});

Deno.test("flush writes a held unlock alone; failures and later unlocks are never held", async () => {
  await withHome(async (home) => {
    await startChain(home);
    const sink = new CoalescingAuditSink(new FileAuditLog(home));
    await sink.append({ event: "unlock", actor, outcome: "fail", reason: "auth_failed" });
    assert.equal((await lines(home)).length, 1, "a failure is written at once");
    await sink.append(unlockOk);
    await sink.flush();
    assert.deepEqual((await lines(home)).map((l) => [l.event, l.outcome]), [
      ["unlock", "fail"],
      ["unlock", "ok"],
    ]);
  });
});

Deno.test("API-key query: unlock and profile.read share a write, the trail verifies", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["shop", "hr"]);
    const db = new DatabaseSync(`${home}/shop.db`);
    db.exec("create table t (x integer); insert into t values (7)");
    db.close();
    const key = await vault.apiKeys.create({ name: "cron", profiles: ["shop"], expires: null });
    const before = (await lines(home)).length;

    const q = await runHecate(["--home", home, "query", "shop", "select x from t"], {
      env: { HECATE_API_KEY: key },
    });
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout, "x\n7\n");
    const mine = (await lines(home)).slice(before);
    assert.deepEqual(mine.map((l) => l.event), ["unlock", "profile.read", "query"]);
    assert.equal(mine[0]!.time, mine[1]!.time, "unlock and profile.read: one write");

    // A profile outside the key's scope: refused (exit 5); the held unlock is still recorded.
    const out = await runHecate(["--home", home, "query", "hr", "select 1"], {
      env: { HECATE_API_KEY: key },
    });
    assert.equal(out.code, 5, out.stderr);
    const after = (await lines(home)).slice(before + 3);
    assert.deepEqual(after.map((l) => [l.event, l.outcome]), [["unlock", "ok"]]);

    const verify = await runHecate(["--home", home, "--password-stdin", "audit", "verify"], {
      stdin: PW + "\n",
    });
    assert.equal(verify.code, 0, verify.stderr);
  });
});

Deno.test("API-key query: when the pair cannot be written, the statement never runs (exit 12)", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["shop"]);
    const path = `${home}/shop.db`;
    const db = new DatabaseSync(path);
    db.exec("create table t (x integer)");
    db.close();
    const key = await vault.apiKeys.create({ name: "cron", profiles: ["shop"], expires: null });
    const log = `${home}/audit.jsonl`;
    await Deno.rename(log, `${log}.saved`);
    await Deno.symlink("/dev/full", log); // every write fails with ENOSPC
    try {
      const q = await runHecate(["--home", home, "query", "shop", "insert into t values (1)"], {
        env: { HECATE_API_KEY: key },
      });
      assert.equal(q.code, 12, q.stderr);
      assert.equal(q.stdout, "");
      assert.match(q.stderr, /^hecate: error: Cannot write the audit record/);
    } finally {
      await Deno.remove(log);
      await Deno.rename(`${log}.saved`, log);
    }
    const check = new DatabaseSync(path);
    const n = check.prepare("select count(*) as n from t").get() as { n: number };
    check.close();
    assert.equal(n.n, 0, "the statement ran although its records were not written");
  });
});
