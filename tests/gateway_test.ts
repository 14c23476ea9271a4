/**
 * The HTTP gateway against a real PostgreSQL with fetch: health, a key's scope, NDJSON and CSV
 * results, refusals (no key, a wrong key, a browser page, a profile out of scope) with JSON bodies
 * and `gateway.refused` in the trail, the request context on the key's records, no secret in any
 * response, plain HTTP refused off loopback, TLS with a test CA.
 */

import assert from "node:assert/strict";
import { trailLines } from "../src/audit/read.ts";
import { HecateError } from "../src/errors.ts";
import { isLoopback, type RunningGateway, startGateway } from "../src/gateway/server.ts";
import { vaultWith, withHome } from "./support/access.ts";
import { pgProfile, startPostgres } from "./support/postgres.ts";
import { issueCert, makeCa } from "./support/tls_certs.ts";

async function withGateway(
  fn: (g: RunningGateway, key: string, secrets: string[], home: string) => Promise<void>,
): Promise<void> {
  await using pg = await startPostgres();
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["other"]);
    await vault.profiles.add(pgProfile(pg, "pg"));
    const key = await vault.apiKeys.create({ name: "app", profiles: ["pg"], expires: null });
    await vault.close();
    const g = await startGateway({ home, hostname: "127.0.0.1", port: 0, lockout: "off" });
    try {
      await fn(g, key, [pg.password, "secret-of-other", key], home);
    } finally {
      await g.close();
    }
  });
}

function bearer(key: string): HeadersInit {
  return { authorization: `Bearer ${key}`, "user-agent": "gateway-test/1" };
}

function assertNoSecret(text: string, secrets: string[]): void {
  for (const s of secrets) assert.ok(!text.includes(s), "a secret in a response");
}

Deno.test("gateway: health, scope, NDJSON and CSV, refusals, trail, no secret", async () => {
  await withGateway(async (g, key, secrets, home) => {
    const health = await fetch(`${g.origin}/v1/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });

    // No key, a forged key: 401 with a JSON error naming the check.
    const none = await fetch(`${g.origin}/v1/profiles`);
    assert.equal(none.status, 401);
    assert.equal((await none.json()).error.code, "no_key");
    const forged = key.slice(0, -4) + (key.endsWith("AAAA") ? "BBBB" : "AAAA");
    const wrong = await fetch(`${g.origin}/v1/profiles`, { headers: bearer(forged) });
    assert.equal(wrong.status, 401);
    assert.equal((await wrong.json()).error.code, "auth_failed");

    // A browser page of any site is refused before the key is looked at.
    const page = await fetch(`${g.origin}/v1/profiles`, {
      headers: { ...bearer(key), origin: "https://evil.example" },
    });
    assert.equal(page.status, 403);
    assert.equal((await page.json()).error.code, "bad_origin");

    // The key's scope only, names and engines, no secret.
    const list = await fetch(`${g.origin}/v1/profiles`, { headers: bearer(key) });
    assert.equal(list.status, 200);
    const listText = await list.text();
    assertNoSecret(listText, secrets);
    assert.deepEqual(JSON.parse(listText), { profiles: [{ name: "pg", engine: "postgres" }] });

    // NDJSON by default.
    const q = await fetch(`${g.origin}/v1/query`, {
      method: "POST",
      headers: bearer(key),
      body: JSON.stringify({
        profile: "pg",
        sql: "select n, $1::text as tag from generate_series(1, 3) n",
        params: ["x"],
      }),
    });
    assert.equal(q.status, 200);
    assert.equal(q.headers.get("content-type"), "application/x-ndjson");
    const lines = (await q.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines, [
      { columns: ["n", "tag"] },
      { row: ["1", "x"] },
      { row: ["2", "x"] },
      { row: ["3", "x"] },
      { more: false },
    ]);

    // CSV by Accept.
    const csv = await fetch(`${g.origin}/v1/query`, {
      method: "POST",
      headers: { ...bearer(key), accept: "text/csv" },
      body: JSON.stringify({ profile: "pg", sql: "select 1 as a, 'b' as b" }),
    });
    assert.equal(csv.status, 200);
    assert.equal(await csv.text(), "a,b\n1,b\n");

    // A profile out of the key's scope: refused with a JSON error, nothing about it leaks.
    const out = await fetch(`${g.origin}/v1/query`, {
      method: "POST",
      headers: bearer(key),
      body: JSON.stringify({ profile: "other", sql: "select 1" }),
    });
    const outText = await out.text();
    assert.equal(out.status, 404, outText);
    assert.equal(JSON.parse(outText).error.code, "profile_not_found");
    assertNoSecret(outText, secrets);

    // A bad statement: the server's error as a JSON error before any row.
    const bad = await fetch(`${g.origin}/v1/query`, {
      method: "POST",
      headers: bearer(key),
      body: JSON.stringify({ profile: "pg", sql: "select * from no_such_table" }),
    });
    const badText = await bad.text();
    assert.equal(bad.status, 400, badText);
    assert.equal(JSON.parse(badText).error.code, "query_failed");
    assertNoSecret(badText, secrets);

    await g.close();
    const entries: Record<string, unknown>[] = [];
    for await (const l of trailLines(home)) if (l.entry) entries.push({ ...l.entry });
    const trail = JSON.stringify(entries);
    assertNoSecret(trail, secrets);
    const refused = entries.filter((e) => e.event === "gateway.refused").map((e) => e.reason);
    assert.deepEqual(refused, ["no_key", "bad_origin"]);
    const query = entries.find((e) => e.event === "query" && e.outcome === "ok");
    assert.ok(query, "the query is in the trail");
    const detail = query.detail as Record<string, unknown>;
    assert.equal(detail.client, "127.0.0.1");
    assert.equal(detail.user_agent, "gateway-test/1");
    assert.equal(typeof detail.request_id, "string");
    assert.equal(detail.level, "write", "a key made without a level keeps write");
    assert.match(String(detail.key_id), /^[A-Za-z0-9_-]{11}$/);
  });
});

Deno.test("gateway: plain HTTP off loopback is refused unless told --insecure-http", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, [])).close();
    await assert.rejects(
      () => startGateway({ home, hostname: "0.0.0.0", port: 0 }),
      (e: unknown) => e instanceof HecateError && e.code === "usage",
    );
    const g = await startGateway({ home, hostname: "0.0.0.0", port: 0, insecureHttp: true });
    assert.match(g.transport, /WARNING.*plain HTTP/);
    await g.close();
    const local = await startGateway({ home, hostname: "127.0.0.1", port: 0 });
    assert.match(local.transport, /loopback only/);
    await local.close();
  });
  assert.ok(isLoopback("127.0.0.2") && isLoopback("::1") && isLoopback("localhost"));
  assert.ok(!isLoopback("0.0.0.0") && !isLoopback("10.0.0.1") && !isLoopback("::"));
});

Deno.test("gateway: HTTPS with a test CA", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, [])).close();
    const dir = await Deno.makeTempDir({ prefix: "hecate-gw-tls-" });
    try {
      const ca = await makeCa(dir, "ca");
      const cert = await issueCert(ca, dir, "server", { cn: "127.0.0.1", server: true });
      const g = await startGateway({
        home,
        hostname: "0.0.0.0",
        port: 0,
        tls: {
          cert: await Deno.readTextFile(cert.certFile),
          key: await Deno.readTextFile(cert.keyFile),
        },
      });
      try {
        assert.match(g.transport, /TLS/);
        const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(ca.certFile)] });
        const res = await fetch(`https://127.0.0.1:${g.server.port}/v1/health`, { client });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { status: "ok" });
        client.close();
        // Without the CA the client refuses the certificate.
        await assert.rejects(() => fetch(`https://127.0.0.1:${g.server.port}/v1/health`));
      } finally {
        await g.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("gateway: a read-level key's INSERT is refused by PostgreSQL; a write key's runs", async () => {
  await using pg = await startPostgres();
  await pg.psql(`create table t (n int); grant all on t to ${pg.user};`);
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.profiles.add(pgProfile(pg, "pg"));
    const reader = await vault.apiKeys.create({
      name: "reader",
      profiles: ["pg"],
      expires: null,
      policy: { level: "read" },
    });
    const writer = await vault.apiKeys.create({
      name: "writer",
      profiles: ["pg"],
      expires: null,
      policy: { level: "write" },
    });
    await vault.close();
    const g = await startGateway({ home, hostname: "127.0.0.1", port: 0, lockout: "off" });
    const post = async (key: string, sql: string) => {
      const res = await fetch(`${g.origin}/v1/query`, {
        method: "POST",
        headers: bearer(key),
        body: JSON.stringify({ profile: "pg", sql }),
      });
      return { status: res.status, text: await res.text() };
    };
    try {
      const refused = await post(reader, "insert into t values (1)");
      assert.equal(refused.status, 400, refused.text);
      assert.equal(JSON.parse(refused.text).error.code, "query_failed");
      assert.equal((await post(reader, "select count(*) as c from t")).status, 200);
      const wrote = await post(writer, "insert into t values (2)");
      assert.equal(wrote.status, 200, wrote.text);
    } finally {
      await g.close();
    }
    // The server's own view: only the write key's row is there.
    assert.equal(
      (await pg.psql("select coalesce(string_agg(n::text, ','), '') from t")).trim(),
      "2",
    );
  });
});
