/**
 * The gateway against a real MariaDB with fetch: the key's scope, NDJSON with `?` parameters, a
 * server error as a JSON error, and no secret (the database password, the key) in any response.
 */

import assert from "node:assert/strict";
import { startGateway } from "../src/gateway/server.ts";
import { vaultWith, withHome } from "./support/access.ts";
import { startMariadb } from "./support/mariadb.ts";

Deno.test("gateway: MariaDB query, scope and no secret in any response", async () => {
  await using db = await startMariadb();
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["other"]);
    await vault.profiles.add({
      name: "my",
      engine: "mysql",
      host: db.host,
      port: db.port,
      database: db.database,
      user: db.user,
      tls: { mode: "disable" },
      secrets: { password: { value: db.password } },
    });
    const key = await vault.apiKeys.create({ name: "app", profiles: ["my"], expires: null });
    const reader = await vault.apiKeys.create({
      name: "reader",
      profiles: ["my"],
      expires: null,
      policy: { level: "read" },
    });
    await vault.close();
    const g = await startGateway({ home, hostname: "127.0.0.1", port: 0, lockout: "off" });
    const texts: string[] = [];
    const post = async (body: unknown, as = key) => {
      const res = await fetch(`${g.origin}/v1/query`, {
        method: "POST",
        headers: { authorization: `Bearer ${as}` },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      texts.push(text);
      return { status: res.status, text };
    };
    try {
      const ok = await post({
        profile: "my",
        sql: "select 40 + 2 as answer, ? as p",
        params: ["x"],
      });
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(ok.text.trim().split("\n").map((l) => JSON.parse(l)), [
        { columns: ["answer", "p"] },
        { row: ["42", "x"] },
        { more: false },
      ]);
      const out = await post({ profile: "other", sql: "select 1" });
      assert.equal(out.status, 404, out.text);
      const bad = await post({ profile: "my", sql: "select * from no_such_table" });
      assert.equal(bad.status, 400, bad.text);
      assert.equal(JSON.parse(bad.text).error.code, "query_failed");
      // Read level: MariaDB refuses the INSERT in the read-only session; the write key's runs.
      assert.equal((await post({ profile: "my", sql: "create table t (n int)" })).status, 200);
      const refused = await post({ profile: "my", sql: "insert into t values (1)" }, reader);
      assert.equal(refused.status, 400, refused.text);
      assert.equal((await post({ profile: "my", sql: "insert into t values (2)" })).status, 200);
      const count = await post(
        { profile: "my", sql: "select group_concat(n) as c from t" },
        reader,
      );
      assert.match(count.text, /\{"row":\["2"\]\}/);
      const list = await fetch(`${g.origin}/v1/profiles`, {
        headers: { authorization: `Bearer ${key}` },
      });
      texts.push(await list.text());
      assert.deepEqual(JSON.parse(texts.at(-1)!), { profiles: [{ name: "my", engine: "mysql" }] });
    } finally {
      await g.close();
    }
    for (const t of texts) {
      for (const secret of [db.password, key, reader, "secret-of-other"]) {
        assert.ok(!t.includes(secret), "a secret in a response");
      }
    }
  });
});
