/**
 * "Test" of a profile reports each step of the connect with its latency: for a TLS PostgreSQL
 * profile the handshake (with the name the certificate was checked against and the mode) and the
 * login, both in the console (through its HTTP API) and in `hecate server test`. A profile whose
 * certificate does not verify shows where it stopped: no TLS step, the failure.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/console_test_steps_test.ts
 */

import assert from "node:assert/strict";
import { passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { consoleClient, login } from "./support/console.ts";
import { pgProfile, startPostgres } from "./support/postgres.ts";
import { makeCa } from "./support/tls_certs.ts";

Deno.test("Test shows the TLS handshake and the login with their latency (console and CLI)", async () => {
  await using pg = await startPostgres({ tls: true });
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.profiles.add(
      pgProfile(pg, "pgtls", { tls: { mode: "verify", caFile: pg.caFile! } }),
    );
    // A CA that did not sign the server's certificate: the handshake must fail.
    const rogueDir = await Deno.makeTempDir({ prefix: "hecate-rogue-ca-" });
    try {
      const rogue = await makeCa(rogueDir, "rogue");
      await vault.profiles.add(
        pgProfile(pg, "rogue", { tls: { mode: "verify", caFile: rogue.certFile } }),
      );
      await vault.close();

      const c = await consoleClient(home);
      try {
        await login(c, PW);
        const testOf = async (name: string): Promise<string> => {
          const res = await c.request(`/console/profiles/${name}/test`, {
            method: "POST",
            form: { csrf: c.csrf! },
          });
          await res.body?.cancel();
          assert.equal(res.status, 303);
          return await (await c.request("/console/profiles")).text();
        };
        const ok = await testOf("pgtls");
        assert.match(ok, /Test of &#34;pgtls&#34; passed/);
        assert.match(ok, /TLS handshake, verify \(127\.0\.0\.1\): \d+\.\d ms/);
        assert.match(ok, /database login \(127\.0\.0\.1:\d+\): \d+\.\d ms/);
        assert.ok(
          ok.indexOf("TLS handshake") < ok.indexOf("database login"),
          "steps in the order they happened",
        );
        assert.ok(!ok.includes(pg.password), "the profile's password reached the browser");

        const bad = await testOf("rogue");
        assert.match(bad, /Test of &#34;rogue&#34; failed/);
        assert.doesNotMatch(bad, /TLS handshake, verify/, "no handshake step when it failed");
        assert.match(bad, /failed after \d+\.\d ms: /);
      } finally {
        await c.close();
      }

      const pw = await passwordFile(home);
      const run = await runHecate(["--home", home, "server", "test", "pgtls"], {
        env: { HECATE_PASSWORD_FILE: pw },
      });
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trimEnd().split("\n");
      assert.match(lines[0]!, /^ {2}tls verify 127\.0\.0\.1: handshake ok, \d+\.\d ms$/);
      assert.match(lines[1]!, /^ {2}database login via 127\.0\.0\.1:\d+: ok, \d+\.\d ms$/);
      assert.match(lines[2]!, /^ok: pgtls: connected in \d+\.\d ms, round trip \d+\.\d ms$/);
      assert.equal(lines.length, 3);
    } finally {
      await Deno.remove(rogueDir, { recursive: true });
    }
  });
});
