/**
 * Property test: `runDoctor` (without the password) on a home whose vault, audit trail and state
 * files hold arbitrary bytes finishes quickly with findings: never a crash, never a hang, and no
 * byte of the planted files' canary in any finding.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { runDoctor } from "../src/doctor/doctor.ts";
import { withHome } from "./support/access.ts";

const CANARY = "fuzz-canary-0b9e";

Deno.test("doctor on hostile trail, state and vault bytes: findings, no crash, no leak", async () => {
  await withHome(async (home) => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      // Near-valid lines: the shapes the parsers look for, with the canary inside.
      fc.array(
        fc.tuple(fc.nat(5), fc.string({ maxLength: 30 })).map(([seq, s]) =>
          `{"seq":${seq},"time":"${CANARY}","x":${JSON.stringify(s)},"mac":"${"A".repeat(43)}"}\n`
        ),
        { maxLength: 4 },
      ).map((ls) => new TextEncoder().encode(ls.join(""))),
    );
    await fc.assert(
      fc.asyncProperty(bytes, bytes, bytes, async (trail, state, vault) => {
        await Deno.writeFile(`${home}/audit.jsonl`, trail, { mode: 0o600 });
        await Deno.writeFile(`${home}/audit.state`, state, { mode: 0o600 });
        await Deno.writeFile(`${home}/vault.hecate`, vault, { mode: 0o600 });
        const t0 = performance.now();
        const report = await runDoctor({ home, measureKdf: () => Promise.resolve(0.0002) });
        assert.ok(performance.now() - t0 < 5_000);
        assert.ok(report.findings.length > 0);
        for (const f of report.findings) {
          assert.ok(!f.message.includes(CANARY) && !(f.fix ?? "").includes(CANARY));
        }
      }),
      { numRuns: 150 },
    );
  });
});
