/**
 * `hecate stats`: figures from a trail made through the library with known statements, --since,
 * --json, "not verified" without the password, and a forged line refused when the password is
 * given (the attacker edits audit.jsonl to hide a query).
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { percentile, trailStats } from "../src/audit/stats.ts";
import type { AuditEntry } from "../src/audit/entry.ts";
import {
  assertCode,
  auditLines,
  passwordFile,
  PW,
  runHecate,
  vaultWith,
  withHome,
} from "./support/access.ts";

Deno.test("percentile is nearest-rank; trailStats counts by profile and actor, failures by reason", () => {
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([7], 95), 7);
  const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.equal(percentile(ten, 50), 5);
  assert.equal(percentile(ten, 95), 10);
  const base = { pid: 1, host: "h", mac: "", actor: { kind: "password" as const } };
  const e = (seq: number, rest: Partial<AuditEntry>): AuditEntry => ({
    ...base,
    seq,
    time: `2026-01-01T00:00:${String(seq).padStart(2, "0")}Z`,
    event: "query",
    outcome: "ok",
    ...rest,
  });
  const s = trailStats([
    e(1, { event: "unlock" }),
    e(2, { event: "profile.read", profile: "a" }),
    ...ten.map((d, i) => e(3 + i, { profile: "a", rows: 2, duration_ms: d })),
    e(20, { profile: "a", outcome: "fail", reason: "db_error" }),
    e(21, { event: "unlock", outcome: "fail", reason: "auth_failed" }),
  ]);
  assert.deepEqual(s.profiles.a, {
    unlocks: 0,
    reads: 1,
    queries: 10,
    failures: { db_error: 1 },
    rows: 20,
    p50Ms: 5,
    p95Ms: 10,
    lastUse: "2026-01-01T00:00:20Z",
  });
  assert.equal(s.actors.password!.unlocks, 1);
  assert.deepEqual(s.actors.password!.failures, { db_error: 1, auth_failed: 1 });
  assert.equal(trailStats([e(1, {}), e(30, {})], new Date("2026-01-01T00:00:10Z")).entries, 1);
});

Deno.test("hecate stats: known trail from the library, --since, --json, unverified without a password, forged line refused with one", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["billing", "hr"]);
    const key = await vault.apiKeys.create({ name: "cron", profiles: ["billing"], expires: null });
    await vault.close();
    await assertCode(
      () => openVault({ home, password: "wrong password", lockout: "off" }),
      "auth_failed",
    );
    const byKey = await openVault({ home, apiKey: key });
    const conn = await byKey.connect("billing");
    for (const sql of ["select 1 union all select 2 union all select 3", "select 1"]) {
      for await (const _ of conn.query(sql)) { /* drain */ }
    }
    await assert.rejects(async () => {
      for await (const _ of conn.query("select * from no_such_table")) { /* drain */ }
    });
    await conn.close();
    await byKey.close();
    await new Promise((r) => setTimeout(r, 20));
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    const late = await openVault({ home, password: PW, lockout: "off" });
    const hr = await late.connect("hr");
    for await (const _ of hr.query("select 1 union all select 2")) { /* drain */ }
    await hr.close();
    await late.close();

    const stats = async (args: string[], env: Record<string, string> = {}) => {
      const r = await runHecate(["--home", home, "stats", ...args], { env });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const all = JSON.parse(await stats(["--json"]));
    assert.equal(all.verified, false);
    const billing = all.profiles.billing;
    assert.equal(billing.reads, 1);
    assert.equal(billing.queries, 2);
    assert.equal(billing.rows, 4);
    assert.equal(
      Object.values(billing.failures as Record<string, number>).reduce((a, b) => a + b),
      1,
    );
    const durations = (await auditLines(home))
      .filter((l) => l.event === "query" && l.profile === "billing" && l.outcome === "ok")
      .map((l) => l.duration_ms as number).sort((a, b) => a - b);
    assert.equal(billing.p50Ms, durations[0]);
    assert.equal(billing.p95Ms, durations[1]);
    assert.equal(all.profiles.hr.queries, 1);
    assert.equal(all.profiles.hr.rows, 2);
    assert.equal(all.actors["apikey:cron"].unlocks, 1);
    assert.equal(all.actors["apikey:cron"].queries, 2);
    assert.equal(all.actors.password.failures.auth_failed, 1);
    assert.ok(all.actors.password.unlocks >= 2);

    const recent = JSON.parse(await stats(["--since", cut, "--json"]));
    assert.deepEqual(Object.keys(recent.profiles), ["hr"]);
    assert.equal(recent.actors["apikey:cron"], undefined);
    assert.equal(recent.actors.password.unlocks, 1);

    const text = await stats([]);
    assert.match(text, /not verified/);
    assert.match(text, /^billing\s+0\s+1\s+2\s+4\s/m);
    assert.match(text, /^apikey:cron\s+1\s+1\s+2\s+4\s/m);

    const pw = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const checked = JSON.parse(await stats(["--json"], pw));
    assert.equal(checked.verified, true);
    assert.equal(checked.profiles.billing.queries, 2);

    // The attacker hides a query by editing its line: counted without the password, refused with it.
    const path = `${home}/audit.jsonl`;
    const lines = (await Deno.readTextFile(path)).split("\n");
    const i = lines.findIndex((l) => l.includes('"event":"query"') && l.includes('"billing"'));
    lines[i] = lines[i]!.replace('"event":"query"', '"event":"lockout"');
    await Deno.writeTextFile(path, lines.join("\n"));
    assert.equal(JSON.parse(await stats(["--json"])).profiles.billing.queries, 1);
    const refused = await runHecate(["--home", home, "stats"], { env: pw });
    assert.equal(refused.code, 20, refused.stderr);
    assert.match(refused.stderr, /failed verification/);
    assert.equal(refused.stdout, "");
  });
});
