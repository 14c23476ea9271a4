/**
 * The audit page's live tail reads only what was appended since its last poll, and falls back to
 * a full read when the position no longer applies (another file, a shorter file, nonsense).
 */

import assert from "node:assert/strict";
import { FileAuditLog } from "../src/audit/log.ts";
import { parsePosition, positionText, readSince } from "../src/console/trail_tail.ts";
import { PW, vaultWith, withHome } from "./support/access.ts";
import { consoleClient, login } from "./support/console.ts";

Deno.test("tail: only new lines after a position; a full read when the position does not apply", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["app"])).close();
    const first = await readSince(home, undefined);
    assert.ok(first.entries.length >= 3, "a full read at first");
    const last = first.entries.at(-1)!.seq;
    const same = await readSince(home, first.position);
    assert.deepEqual(same.entries, [], "nothing new");
    const log = new FileAuditLog(home);
    await log.append({ event: "audit.export", actor: { kind: "none" }, outcome: "ok" });
    const next = await readSince(home, first.position);
    assert.deepEqual(next.entries.map((e) => [e.seq, e.event]), [[last + 1, "audit.export"]]);
    assert.ok(next.position!.offset > first.position!.offset);
    // A position past the end (a truncated or replaced file) reads everything again.
    const past = await readSince(home, { ...next.position!, offset: next.position!.offset + 10 });
    assert.equal(past.entries.at(-1)!.seq, last + 1);
    assert.equal(past.entries.length, first.entries.length + 1);
    const other = await readSince(home, { ino: (next.position!.ino ?? 0) + 1, offset: 0 });
    assert.equal(other.entries.length, first.entries.length + 1);
    assert.deepEqual(parsePosition(positionText(next.position)), next.position);
    for (const bad of ["", "1", "a.b", "1.2.3", "-1.5", "99999999999999999999.1"]) {
      assert.equal(parsePosition(bad), undefined, bad);
    }
  });
});

Deno.test("tail API: the page's position makes a poll return only the new records", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["app"])).close();
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      const page = await (await c.request("/console/audit")).text();
      const from = /data-from="([^"]*)"/.exec(page)?.[1];
      const after = Number(/data-after="(\d+)"/.exec(page)?.[1]);
      assert.ok(from && after > 0);
      const poll = await (await c.request(`/console/api/audit?after=${after}&from=${from}`)).json();
      // Only records written after the page was read (the page view itself writes none).
      assert.ok(poll.rows.every((r: { seq: number }) => r.seq > after));
      await new FileAuditLog(home).append({
        event: "audit.export",
        actor: { kind: "none" },
        outcome: "ok",
      });
      const next = await (await c.request(
        `/console/api/audit?after=${after}&from=${poll.next}&event=audit.export`,
      )).json();
      assert.deepEqual(next.rows.map((r: { event: string }) => r.event), ["audit.export"]);
      assert.notEqual(next.next, poll.next);
    } finally {
      await c.close();
    }
  });
});
