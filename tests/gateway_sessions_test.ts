/**
 * The gateway's cache of opened API-key sessions. Against a real PostgreSQL and the real CLI:
 * a key revoked with `hecate apikey revoke` while the gateway runs is refused (401 key_revoked) on
 * the very next request, a profile removed from the vault is gone on the next request, and many
 * requests of one key cost one unlock but each still gets its own record in the trail. With a
 * scripted unlock and clock: the TTL, the size bound, one unlock for concurrent first requests, a
 * session dropped while in use closes after its last request, and stopping closes every session
 * and wipes the record keys it held.
 */

import assert from "node:assert/strict";
import { openVaultWithState } from "../src/api/open.ts";
import type { Vault } from "../src/hecate.ts";
import { startGateway } from "../src/gateway/server.ts";
import { KeySessions, type OpenWithKey } from "../src/gateway/sessions.ts";
import type { ScopedVault } from "../src/vault/scoped.ts";
import { auditLines, passwordFile, runHecate, vaultWith, withHome } from "./support/access.ts";
import { pgProfile, startPostgres } from "./support/postgres.ts";

function post(origin: string, key: string, profile = "pg"): Promise<Response> {
  return fetch(`${origin}/v1/query`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: JSON.stringify({ profile, sql: "select 1 as one" }),
  });
}

Deno.test("gateway sessions: revoked while serving, refused on the next request; one unlock, a record per request", async () => {
  await using pg = await startPostgres();
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.profiles.add(pgProfile(pg, "pg"));
    await vault.profiles.add(pgProfile(pg, "pg2"));
    const key = await vault.apiKeys.create({
      name: "app",
      profiles: ["pg", "pg2"],
      expires: null,
      policy: { level: "write" },
    });
    const other = await vault.apiKeys.create({
      name: "other",
      profiles: ["pg"],
      expires: null,
      policy: { level: "write" },
    });
    const keyId = (await vault.apiKeys.list()).find((k) => k.name === "app")!.id;
    await vault.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const g = await startGateway({ home, hostname: "127.0.0.1", port: 0, lockout: "off" });
    try {
      // Ten requests of the key: served, one unlock, ten statement records with distinct ids.
      for (let i = 0; i < 10; i++) {
        const res = await post(g.origin, key);
        assert.equal(res.status, 200, await res.clone().text());
        assert.equal(await res.text(), '{"columns":["one"]}\n{"row":["1"]}\n{"more":false}\n');
      }
      const before = await auditLines(home);
      const mine = (e: Record<string, unknown>) =>
        (e.actor as { id?: string } | undefined)?.id === keyId;
      assert.equal(before.filter((e) => e.event === "unlock" && mine(e)).length, 1);
      const queries = before.filter((e) => e.event === "query" && mine(e));
      assert.equal(queries.length, 10);
      const ids = new Set(queries.map((e) => (e.detail as Record<string, string>).request_id));
      assert.equal(ids.size, 10, "each request has its own record");
      for (const q of queries) assert.equal((q.detail as Record<string, string>).key_id, keyId);

      // A profile removed by the owner: the key's next request no longer sees it.
      const rm = await runHecate(["--home", home, "server", "remove", "pg2"], { env });
      assert.equal(rm.code, 0, rm.stderr);
      const gone = await post(g.origin, key, "pg2");
      assert.equal(gone.status, 404, await gone.clone().text());
      assert.equal((await gone.json()).error.code, "profile_not_found");

      // The attack: the key leaked, the owner revokes it while the gateway runs; the holder's
      // very next request (the session was cached a moment ago) is refused.
      assert.equal((await post(g.origin, key)).status, 200);
      const revoke = await runHecate(["--home", home, "apikey", "revoke", "app"], { env });
      assert.equal(revoke.code, 0, revoke.stderr);
      const refused = await post(g.origin, key);
      assert.equal(refused.status, 401);
      assert.equal((await refused.json()).error.code, "key_revoked");
      // Another key is not affected.
      assert.equal((await post(g.origin, other)).status, 200);
    } finally {
      await g.close();
    }
    const after = await auditLines(home);
    assert.ok(
      after.some((e) => e.event === "unlock" && e.outcome === "fail" && e.reason === "key_revoked"),
      "the refused use is in the trail",
    );
  });
});

/** A fake unlock: counts calls, hands out vaults that record their close. */
function fakeOpen(): { open: OpenWithKey; opened: string[]; closed: string[] } {
  const opened: string[] = [];
  const closed: string[] = [];
  const open: OpenWithKey = (apiKey) => {
    opened.push(apiKey);
    const vault = {
      actor: { kind: "apikey", id: `id-${apiKey}` },
      close: () => {
        closed.push(apiKey);
        return Promise.resolve();
      },
    } as unknown as Vault;
    const state = { keyId: `id-${apiKey}`, expires: null } as unknown as ScopedVault;
    return Promise.resolve({ vault, state });
  };
  return { open, opened, closed };
}

Deno.test("gateway sessions: TTL, size bound, one unlock for concurrent requests, drop while in use, close", async () => {
  await withHome(async (home) => {
    await Deno.writeTextFile(`${home}/vault.hecate`, "stand-in");
    let now = 1_000_000;
    const f = fakeOpen();
    const s = new KeySessions({ home, open: f.open, ttlMs: 1000, max: 2, now: () => now });

    // Concurrent first requests of one key share one unlock.
    const got = await Promise.all([s.acquire("hcx_a"), s.acquire("hcx_a"), s.acquire("hcx_a")]);
    assert.deepEqual(f.opened, ["hcx_a"]);
    for (const x of got) s.release(x);

    // Within the TTL: cached; past it: a new unlock, the old session closed.
    now += 999;
    s.release(await s.acquire("hcx_a"));
    assert.equal(f.opened.length, 1);
    now += 1;
    s.release(await s.acquire("hcx_a"));
    assert.equal(f.opened.length, 2);
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(f.closed, ["hcx_a"]);

    // At most two sessions: a third key evicts the least recently used.
    s.release(await s.acquire("hcx_b"));
    s.release(await s.acquire("hcx_a")); // a is now the most recent
    s.release(await s.acquire("hcx_c"));
    assert.equal(s.size, 2);
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(f.closed, ["hcx_a", "hcx_b"]);

    // A change of the vault file drops every session; one in use closes when it is given back.
    const busy = await s.acquire("hcx_c");
    await Deno.writeTextFile(`${home}/vault.hecate`, "stand-in, written again");
    s.release(await s.acquire("hcx_a"));
    assert.equal(s.size, 1);
    await new Promise((r) => setTimeout(r, 0));
    assert.ok(!f.closed.includes("hcx_c"), "not closed under a request in flight");
    s.release(busy);
    await new Promise((r) => setTimeout(r, 0));
    assert.ok(f.closed.includes("hcx_c"));

    // Stop: everything closed, nothing more served.
    await s.close();
    assert.equal(f.closed.filter((k) => k === "hcx_a").length, 3);
    await assert.rejects(() => s.acquire("hcx_a"));
  });
});

Deno.test("gateway sessions: stopping wipes the record keys of the cached sessions", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["db"]);
    const key = await vault.apiKeys.create({ name: "app", profiles: ["db"], expires: null });
    await vault.close();
    const states: ScopedVault[] = [];
    const s = new KeySessions({
      home,
      open: async (apiKey) => {
        const got = await openVaultWithState({ home, apiKey, lockout: "off" });
        states.push(got.state as ScopedVault);
        return got;
      },
    });
    const session = await s.acquire(key);
    assert.equal(session.vault.profiles.list().length, 1);
    const id = states[0]!.records()[0]!.id;
    assert.ok(await states[0]!.recordSideKey(id), "a side key while open");
    s.release(session);
    await s.close();
    assert.deepEqual(states[0]!.records(), [], "no decrypted record kept");
    await assert.rejects(
      () => states[0]!.recordSideKey(id),
      /keys are wiped/,
      "no record key kept",
    );
    assert.ok(states[0]!.keyBuffers().every((b) => b.every((x) => x === 0)), "key buffers zeroed");
  });
});

Deno.test("gateway sessions: deferred query records still give each request its record by the stop", async () => {
  await using pg = await startPostgres();
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.profiles.add(pgProfile(pg, "pg"));
    const key = await vault.apiKeys.create({
      name: "app",
      profiles: ["pg"],
      expires: null,
      policy: { level: "write" },
    });
    await vault.close();
    const g = await startGateway({
      home,
      hostname: "127.0.0.1",
      port: 0,
      lockout: "off",
      auditStatements: "deferred",
    });
    try {
      const answers = await Promise.all(Array.from({ length: 6 }, () => post(g.origin, key)));
      for (const a of answers) assert.equal((await a.text()).split("\n")[1], '{"row":["1"]}');
    } finally {
      await g.close();
    }
    const queries = (await auditLines(home)).filter((e) => e.event === "query");
    assert.equal(queries.length, 6);
    const ids = new Set(queries.map((e) => (e.detail as Record<string, string>).request_id));
    assert.equal(ids.size, 6);
  });
});
