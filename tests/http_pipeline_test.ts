/**
 * The shared HTTP layer (src/http) on its own, then fuzzed through the console: refusals and
 * failures are JSON with a stable code and never a stack or an error's text, every response has
 * the security headers and its request id, server-wide checks run before a route's, and audit
 * records written during a request carry its context. The fuzz sends random methods, paths,
 * headers and bodies to a logged-in console: never a 500, never a crash, never the canary secret.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { AuditEntry } from "../src/audit/entry.ts";
import { trailLines } from "../src/audit/read.ts";
import { HecateError } from "../src/errors.ts";
import { RequestAuditLog } from "../src/http/audit.ts";
import { hostCheck, originCheck } from "../src/http/checks.ts";
import { currentRequest } from "../src/http/context.ts";
import { HttpRefusal, SECURITY_HEADERS } from "../src/http/respond.ts";
import { handler, type Route, startServer } from "../src/http/router.ts";
import { openVault } from "../src/hecate.ts";
import { PW, vaultWith, withHome } from "./support/access.ts";
import { consoleClient, login } from "./support/console.ts";

Deno.test("http: codes, headers, check order, no error text leaked, context on audit records", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, [])).close();
    const audit = new RequestAuditLog(home);
    let routeCheckRan = false;
    let port = 0;
    const routes: Route[] = [
      {
        method: "GET",
        path: "/boom",
        checks: [],
        handle: () => {
          throw new Error("internal detail /etc/secret-path");
        },
      },
      {
        method: "GET",
        path: "/usage/:what",
        checks: [],
        handle: (_r, { params }) => {
          throw new HecateError("usage", `bad ${params.what}`);
        },
      },
      {
        method: "POST",
        path: "/audited",
        checks: [() => {
          routeCheckRan = true;
        }],
        handle: async (_r, { ctx }) => {
          assert.equal(currentRequest(), ctx);
          await audit.append({ event: "audit.export", actor: { kind: "none" }, outcome: "ok" });
          return new Response("ok");
        },
      },
      {
        method: "GET",
        path: "/refuse",
        checks: [() => {
          throw new HttpRefusal(418, "teapot", "No");
        }],
        handle: () => new Response("never"),
      },
    ];
    const server = startServer(
      "127.0.0.1",
      0,
      handler(routes, {
        checks: [
          hostCheck(() => [`127.0.0.1:${port}`]),
          originCheck(() => [`http://127.0.0.1:${port}`]),
        ],
      }),
    );
    port = server.port;
    const base = `http://127.0.0.1:${port}`;
    try {
      const cases: [string, RequestInit, number, string][] = [
        ["/boom", {}, 500, "internal"],
        ["/usage/x", {}, 400, "usage"],
        ["/nothing", {}, 404, "not_found"],
        ["/audited", {}, 405, "method_not_allowed"],
        ["/refuse", {}, 418, "teapot"],
        [
          "/audited",
          { method: "POST", headers: { origin: "http://evil.example" } },
          403,
          "bad_origin",
        ],
      ];
      for (const [path, init, status, code] of cases) {
        const res = await fetch(base + path, init);
        assert.equal(res.status, status, path);
        const body = await res.json();
        assert.equal(body.error.code, code, path);
        assert.equal(body.error.request_id, res.headers.get("x-request-id"), path);
        assert.doesNotMatch(JSON.stringify(body), /secret-path|at file:|Error:/, path);
        for (const [k, v] of Object.entries(SECURITY_HEADERS)) {
          assert.equal(res.headers.get(k), v, `${path} ${k}`);
        }
      }
      assert.equal(routeCheckRan, false, "a refused Origin stops before the route's checks");
      const ok = await fetch(base + "/audited", {
        method: "POST",
        headers: { origin: base, "user-agent": "pipeline\ttest" },
      });
      assert.equal(await ok.text(), "ok");
      assert.equal(routeCheckRan, true);
      await audit.flush?.();
      const entries: AuditEntry[] = [];
      for await (const l of trailLines(home)) if (l.entry) entries.push(l.entry);
      const e = entries.find((x) => x.event === "audit.export")!;
      assert.equal(e.detail?.request_id, ok.headers.get("x-request-id"));
      assert.equal(e.detail?.client, "127.0.0.1");
      assert.equal(e.detail?.user_agent, "pipelinetest", "control characters are removed");
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test("http fuzz: random requests to a logged-in console never get a 500 or a secret", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, ["app"])).close();
    const canary = "CANARY-fuzz-41c9d2";
    {
      await using v = await openVault({ home, password: PW, lockout: "off" });
      await v.profiles.edit("app", { secrets: { password: { value: canary } } });
    }
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      let passed = 0;
      const paths = [
        "/console/profiles",
        "/console/profiles/app/edit",
        "/console/profiles/app",
        "/console/profiles/app/test",
        "/console/profiles/%ZZ/edit",
        "/console/query",
        "/console/api/query",
        "/console/query/csv",
        "/console/apikeys",
        "/console/apikeys/x/revoke",
        "/console/totp",
        "/console/totp/enable",
        "/console/audit",
        "/console/api/audit",
        "/console/backups/verify",
        "/console/login",
        "/console/login/x",
        "/console/assets/app.js",
      ];
      const field = fc.constantFrom(
        "csrf",
        "name",
        "engine",
        "port",
        "profile",
        "sql",
        "params",
        "limit",
        "code",
        "file",
        "after",
      );
      const request = fc.record({
        method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
        path: fc.oneof(
          fc.constantFrom(...paths),
          fc.string({ maxLength: 30 }).map((s) => `/console/${encodeURIComponent(s)}`),
        ),
        query: fc.string({ maxLength: 20 }),
        json: fc.boolean(),
        goodCsrf: fc.boolean(),
        fields: fc.dictionary(
          field,
          fc.oneof(
            fc.string({ maxLength: 40 }),
            fc.constantFrom("[", "[1,", "sqlite", "app", "99999999", "-1"),
          ),
        ),
      });
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const fields: Record<string, string> = { ...r.fields };
          if (r.goodCsrf) fields.csrf = c.csrf!;
          // Lock and logout are left out: they would end the session the other runs use.
          const init: RequestInit & { form?: Record<string, string> } = { method: r.method };
          if (r.method !== "GET") {
            if (r.json) {
              init.body = JSON.stringify(fields);
              init.headers = { "content-type": "application/json" };
            } else init.form = fields;
          }
          const res = await c.request(`${r.path}?${encodeURIComponent(r.query)}`, init);
          const text = await res.text();
          assert.ok(res.status < 500, `${r.method} ${r.path}: ${res.status} ${text.slice(0, 200)}`);
          assert.ok(!text.includes(canary), `${r.method} ${r.path} leaked the secret`);
          assert.ok(!text.includes(PW), `${r.method} ${r.path} leaked the password`);
          if (res.status < 400) passed++;
        }),
        { numRuns: 250 },
      );
      // Random runs reach a handler only now and then (each needs a real path, method and token),
      // so their count is not asserted; these fixed requests show the session still serves pages
      // after the fuzz, so the runs above were not all refused at the door by a dead session.
      let served = 0;
      for (const p of paths) {
        const res = await c.request(p, { method: "GET" });
        const text = await res.text();
        assert.ok(!text.includes(canary), `GET ${p} leaked the secret`);
        if (res.status < 400) served++;
      }
      assert.ok(served >= 5, `the session still serves pages after the fuzz (${served})`);
      console.log(`  ${passed} random requests got past the checks; ${served} pages served after`);
    } finally {
      await c.close();
    }
  });
});
