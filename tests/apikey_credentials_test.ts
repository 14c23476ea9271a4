/**
 * The attack: a holder of an API key made for queries tries to get the profile's raw credentials
 * with `hecate env` / `hecate run` (and the library's `vault.endpoint`). A key made by `apikey
 * create` without `--allow-credentials` is refused with exit 28 (`key_not_allowed`) and no secret
 * in any output; the same key still queries. A key made with `--allow-credentials` may, and a key
 * made without any policy (as before the permission existed) keeps today's behaviour. `apikey
 * list` shows the checks.
 */

import assert from "node:assert/strict";
import { openVault } from "../src/api/open.ts";
import { HecateError } from "../src/errors.ts";
import { passwordFile, runHecate, vaultWith, withHome } from "./support/access.ts";

Deno.test("API key: run/env need --allow-credentials; old keys keep them", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["app"]);
    const legacy = await vault.apiKeys.create({ name: "old", profiles: ["app"], expires: null });
    await vault.close();
    const pw = await passwordFile(home);
    const cli = (args: string[], env: Record<string, string> = {}) =>
      runHecate(["--home", home, ...args], { env: { HECATE_PASSWORD_FILE: pw, ...env } });

    const plain = await cli(["apikey", "create", "q", "--server", "app", "--rate", "10/1m"]);
    assert.equal(plain.code, 0, plain.stderr);
    const queryKey = plain.stdout.trim();
    const full = await cli(["apikey", "create", "r", "--server", "app", "--allow-credentials"]);
    assert.equal(full.code, 0, full.stderr);
    const runKey = full.stdout.trim();
    const bad = await cli(["apikey", "create", "x", "--server", "app", "--allow-from", "10.0.0/8"]);
    assert.equal(bad.code, 2, bad.stderr);

    const listed = await cli(["apikey", "list"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^q .*checks: rate=10\/1m level=read no-credentials$/m);
    assert.match(listed.stdout, /^r .*checks: level=read$/m);

    const asKey = (key: string, args: string[]) => cli(args, { HECATE_API_KEY: key });
    for (const args of [["env", "app"], ["run", "app", "--", "true"]]) {
      const r = await asKey(queryKey, args);
      assert.equal(r.code, 28, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /not hand out its credentials/);
      assert.ok(!r.stdout.includes("secret-of-app") && !r.stderr.includes("secret-of-app"));
    }
    const q = await asKey(queryKey, ["query", "app", "select 1 as one"]);
    assert.equal(q.code, 0, q.stderr);
    for (const key of [runKey, legacy]) {
      const r = await asKey(key, ["env", "app"]);
      assert.equal(r.code, 0, r.stderr);
    }

    // The library path is refused the same way.
    const scoped = await openVault({ home, apiKey: queryKey, lockout: "off" });
    try {
      await assert.rejects(
        () => scoped.endpoint("app"),
        (e: unknown) => e instanceof HecateError && e.code === "key_not_allowed",
      );
    } finally {
      await scoped.close();
    }
  });
});
