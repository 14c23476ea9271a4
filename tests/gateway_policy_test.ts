/**
 * The zero-trust checks of an API key at the gateway, as a client would meet them: a key allowed
 * only from 127.0.0.1/32 is refused from 127.0.0.2 (Linux routes 127/8 to lo), a key bound to a
 * User-Agent pattern is refused with another, a key with a rate gets 429 with Retry-After once
 * its bucket is empty. Each refusal names its check to the client and in the trail. A key made
 * without checks (as before they existed) keeps working with none. Bad check text at `apikey
 * create` is a usage error. Unit checks of CIDR and pattern matching.
 */

import assert from "node:assert/strict";
import { trailLines } from "../src/audit/read.ts";
import { startGateway } from "../src/gateway/server.ts";
import { inCidr, RateBuckets, userAgentMatches, validatePolicy } from "../src/gateway/policy.ts";
import type { ApiKeyPolicy } from "../src/vault/apikey.ts";
import { HecateError } from "../src/errors.ts";
import { vaultWith, withHome } from "./support/access.ts";

async function withKey(
  policy: ApiKeyPolicy | undefined,
  fn: (origin: string, key: string, port: number) => Promise<void>,
  hostname = "0.0.0.0",
): Promise<string> {
  let trail = "";
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["app"]);
    const key = await vault.apiKeys.create({ name: "k", profiles: ["app"], expires: null, policy });
    assert.deepEqual((await vault.apiKeys.list())[0]!.policy, policy ?? {});
    await vault.close();
    const g = await startGateway({ home, hostname, port: 0, lockout: "off", insecureHttp: true });
    try {
      await fn(`http://127.0.0.1:${g.server.port}`, key, g.server.port);
    } finally {
      await g.close();
    }
    const entries: unknown[] = [];
    for await (const l of trailLines(home)) if (l.entry) entries.push(l.entry);
    trail = JSON.stringify(entries);
  });
  return trail;
}

function get(url: string, key: string, init: { client?: Deno.HttpClient; ua?: string } = {}) {
  return fetch(url, {
    ...(init.client ? { client: init.client } : {}),
    headers: { authorization: `Bearer ${key}`, "user-agent": init.ua ?? "app/1.0" },
  });
}

Deno.test("gateway policy: --allow-from refuses another address (127.0.0.2)", async () => {
  const trail = await withKey({ allowFrom: ["127.0.0.1/32"] }, async (_origin, key, port) => {
    const ok = await get(`http://127.0.0.1:${port}/v1/profiles`, key);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const client = Deno.createHttpClient({ localAddress: "127.0.0.2" });
    try {
      const res = await get(`http://127.0.0.1:${port}/v1/profiles`, key, { client });
      assert.equal(res.status, 403);
      const body = await res.json();
      assert.equal(body.error.code, "address_not_allowed");
      assert.equal(typeof body.error.request_id, "string");
    } finally {
      client.close();
    }
  });
  assert.match(
    trail,
    /"event":"gateway.refused","actor":{"kind":"none"},"outcome":"fail","reason":"address_not_allowed","detail":{"client":"127.0.0.2","key_id"/,
  );
  assert.match(trail, /"client":"127.0.0.2"/);
});

Deno.test("gateway policy: --user-agent refuses another client", async () => {
  const trail = await withKey({ userAgent: "billing-worker/*" }, async (origin, key) => {
    const ok = await get(`${origin}/v1/profiles`, key, { ua: "billing-worker/2.1" });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const res = await get(`${origin}/v1/profiles`, key, { ua: "curl/8.0" });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error.code, "user_agent_not_allowed");
  });
  assert.match(trail, /"reason":"user_agent_not_allowed"/);
});

Deno.test("gateway policy: --rate answers 429 with Retry-After when the bucket is empty", async () => {
  const trail = await withKey({ rate: "3/1h" }, async (origin, key) => {
    for (let i = 0; i < 3; i++) {
      const ok = await get(`${origin}/v1/profiles`, key);
      assert.equal(ok.status, 200, `request ${i + 1}`);
      await ok.body?.cancel();
    }
    const res = await get(`${origin}/v1/profiles`, key);
    assert.equal(res.status, 429);
    assert.equal((await res.json()).error.code, "rate_limited");
    const after = Number(res.headers.get("retry-after"));
    assert.ok(after >= 1 && after <= 3600, `Retry-After ${after}`);
  });
  assert.match(trail, /"reason":"rate_limited"/);
});

Deno.test("gateway policy: a key without checks (as made before them) has none", async () => {
  await withKey(undefined, async (_origin, key, port) => {
    const client = Deno.createHttpClient({ localAddress: "127.0.0.2" });
    try {
      for (let i = 0; i < 5; i++) {
        const res = await get(`http://127.0.0.1:${port}/v1/profiles`, key, { client, ua: "x" });
        assert.equal(res.status, 200);
        await res.body?.cancel();
      }
    } finally {
      client.close();
    }
  });
});

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof HecateError ? e.code : String(e);
  }
  return undefined;
}

Deno.test("gateway policy: bad check text is a usage error; matching rules", () => {
  assert.equal(codeOf(() => validatePolicy({ allowFrom: ["10.0.0.0/33"] })), "usage");
  assert.equal(codeOf(() => validatePolicy({ allowFrom: ["nope"] })), "usage");
  assert.equal(codeOf(() => validatePolicy({ rate: "0/1m" })), "usage");
  assert.equal(codeOf(() => validatePolicy({ rate: "5/soon" })), "usage");
  assert.equal(codeOf(() => validatePolicy({ userAgent: "" })), "usage");
  assert.ok(inCidr("10.1.2.3", "10.0.0.0/8") && !inCidr("11.0.0.1", "10.0.0.0/8"));
  assert.ok(inCidr("127.0.0.1", "127.0.0.1/32") && !inCidr("127.0.0.2", "127.0.0.1/32"));
  assert.ok(inCidr("::ffff:127.0.0.1", "127.0.0.1/32"));
  assert.ok(inCidr("2001:db8::1", "2001:db8::/32") && !inCidr("2001:db9::1", "2001:db8::/32"));
  assert.ok(!inCidr("10.0.0.1", "2001:db8::/32"));
  assert.ok(userAgentMatches("a/1.0", "a/*") && !userAgentMatches("xa/1.0", "a/*"));
  assert.ok(!userAgentMatches("a.b", "a?b") && userAgentMatches("a?b", "a?b"));
  let t = 0;
  const b = new RateBuckets(() => t);
  const rate = { tokens: 2, periodMs: 2000 };
  assert.equal(b.take("k", rate), 0);
  assert.equal(b.take("k", rate), 0);
  assert.equal(b.take("k", rate), 1);
  t = 1000;
  assert.equal(b.take("k", rate), 0);
});
