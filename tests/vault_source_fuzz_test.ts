/**
 * Property tests (fast-check) of the Vault source: random reference texts only ever parse or fail
 * with `usage` (exit 2); random answers from a server posing as Vault (any status, any body, JSON
 * or not) only ever resolve or fail with `secret_unresolved` (exit 18), never hang, and never put
 * the token, the AppRole secret id or a value the server sent into a message.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { forgetVaultTokens, vaultSource } from "../providers/sources/vault/mod.ts";
import { within } from "./support/within.ts";

const TOKEN = "hvs.CANARY-token-4f1d2e";
const SECRET_ID = "CANARY-secret-id-77aa";
const VALUE_CANARY = "CANARY-value-9c9c";

Deno.test("vault references: random text parses or is a usage error", () => {
  const chars = fc.constantFrom(..."ab/#?=&.-_:%1 ".split(""));
  fc.assert(
    fc.property(
      fc.constantFrom("vault", "vault-db"),
      fc.array(chars, { maxLength: 40 }).map((a) => a.join("")),
      (scheme, rest) => {
        try {
          const p = vaultSource.parse(scheme, rest);
          assert.equal(p.scheme, scheme);
          assert.ok(p.parts.mount);
        } catch (e) {
          assert.ok(e instanceof HecateError && e.code === "usage", String(e));
        }
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("vault answers: any status and body resolve or fail with exit 18, no canary leaks", async () => {
  let answer: { status: number; body: string } = { status: 200, body: "{}" };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      await req.body?.cancel();
      return new Response(answer.status === 204 ? null : answer.body, { status: answer.status });
    },
  );
  try {
    const addr = `http://127.0.0.1:${server.addr.port}`;
    const jsonish = fc.oneof(
      fc.json(),
      fc.constant(`{"data":{"data":{"password":"${VALUE_CANARY}"},"metadata":{"version":1}}}`),
      fc.constant(`{"data":{"data":null,"metadata":{"version":"${VALUE_CANARY}"}}}`),
      fc.constant(`{"errors":["${VALUE_CANARY}"]}`),
      fc.constant(`{"auth":{"client_token":"${TOKEN}","lease_duration":"x"}}`),
      fc.constant(
        `{"lease_id":"${VALUE_CANARY}","lease_duration":1,"data":{"username":1,"password":"${VALUE_CANARY}"}}`,
      ),
      fc.string({ maxLength: 60 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(200, 204, 301, 400, 403, 404, 429, 500, 503),
        jsonish,
        fc.constantFrom(
          "vault:secret/app#password",
          "vault:secret/app#other",
          "vault:secret/app",
          "vault:old/app?kv=1#password",
          "vault-db:database/ro",
        ),
        fc.boolean(),
        async (status, body, ref, approle) => {
          answer = { status, body };
          forgetVaultTokens();
          const at = ref.indexOf(":");
          const parsed = vaultSource.parse(ref.slice(0, at), ref.slice(at + 1));
          const ctx = {
            signal: AbortSignal.timeout(3000),
            credentials: approle ? { secret_id: SECRET_ID } : {},
            env: (n: string) => (n === "VAULT_TOKEN" && !approle ? TOKEN : undefined),
            params: {
              "vault.addr": addr,
              "vault.tls": "disable",
              ...(approle ? { "vault.auth": "approle", "vault.roleId": "r" } : {}),
            },
          };
          try {
            await within(vaultSource.resolve(parsed, ctx), 5000);
          } catch (e) {
            assert.ok(e instanceof HecateError, `not a HecateError: ${e}`);
            assert.equal(e.code, "secret_unresolved", e.message);
            const text = `${e.message}\n${e.hint ?? ""}`;
            for (const c of [TOKEN, SECRET_ID, VALUE_CANARY]) {
              assert.ok(!text.includes(c), `canary in: ${text}`);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  } finally {
    await server.shutdown();
  }
});
