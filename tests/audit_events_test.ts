/**
 * The audit event names cannot drift: docs/SECURITY.md's events table lists exactly the names and
 * descriptions of `AUDIT_EVENTS`, the list whose type every written event has.
 */

import assert from "node:assert/strict";
import { AUDIT_EVENTS } from "../src/audit/events.ts";

Deno.test("docs/SECURITY.md's events table equals AUDIT_EVENTS, in order, with the same descriptions", async () => {
  const text = await Deno.readTextFile(new URL("../docs/SECURITY.md", import.meta.url));
  const start = text.search(/^\|\s*event\s*\|\s*recorded when\s*\|/m);
  assert.ok(start >= 0, "SECURITY.md has an events table");
  const rows: [string, string][] = [];
  for (const line of text.slice(start).split("\n").slice(2)) {
    const m = /^\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|$/.exec(line);
    if (!m) break;
    rows.push([m[1]!, m[2]!]);
  }
  assert.deepEqual(rows, Object.entries(AUDIT_EVENTS));
});
