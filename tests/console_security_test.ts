/**
 * The web console's controls, attacked with a plain HTTP client: no access without a session, a
 * spent login URL, CSRF, cookie flags, CSP and the other headers, foreign Host (DNS rebinding)
 * and Origin, idle timeout, lockout after failed logins, lock forgetting the vault, every action
 * audited with the session, client and user agent, and no secret in any response body.
 */

import assert from "node:assert/strict";
import { trailLines } from "../src/audit/read.ts";
import type { AuditEntry } from "../src/audit/entry.ts";
import { openVault } from "../src/hecate.ts";
import { totpCode } from "../src/access/totp.ts";
import { PW, vaultWith, withHome } from "./support/access.ts";
import { consoleClient, csrfOf, login, rawRequest, unlock } from "./support/console.ts";

async function entries(home: string): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for await (const l of trailLines(home)) if (l.entry) out.push(l.entry);
  return out;
}

async function prepared(home: string, names: string[] = ["app"]): Promise<void> {
  await (await vaultWith(home, names)).close();
}

Deno.test("console: nothing without a session; the login URL works once; cookie flags", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home);
    try {
      for (const path of ["/console/profiles", "/console/audit", "/console/api/audit"]) {
        const res = await c.request(path);
        assert.equal(res.status, 401, path);
        assert.equal((await res.json()).error.code, "no_session");
      }
      const post = await c.request("/console/apikeys", {
        method: "POST",
        form: { name: "x", profile: "app" },
      });
      assert.equal(post.status, 401);
      await post.body?.cancel();
      // A guessed token is refused, and does not spend the real one.
      const guess = await c.request("/console/login/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
      assert.equal(guess.status, 401);
      await guess.body?.cancel();

      const first = await c.request(new URL(c.console.loginUrl).pathname);
      assert.equal(first.status, 303);
      const set = first.headers.get("set-cookie") ?? "";
      assert.match(set, /; HttpOnly/);
      assert.match(set, /; SameSite=Strict/);
      assert.match(set, /; Path=\/console(;|$)/);
      assert.equal(first.headers.get("location"), "/console/login", "the token leaves the URL");
      const again = await fetch(c.console.loginUrl, { redirect: "manual" });
      assert.equal(again.status, 401, "the login URL is one-time");
      await again.body?.cancel();

      // A pre-login session reaches the login page only.
      const profiles = await c.request("/console/profiles");
      assert.equal(profiles.status, 401);
      await profiles.body?.cancel();
      // After unlock the session id changes (no fixation with the pre-login cookie).
      const before = c.cookie;
      const res = await unlock(c, PW);
      assert.equal(res.status, 303);
      assert.notEqual(c.cookie, before);
      const old = await c.request("/console/profiles", { headers: { cookie: before! } });
      assert.equal(old.status, 401, "the pre-login cookie is dead after unlock");
      await old.body?.cancel();
      const ok = await c.request("/console/profiles");
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: CSP and the other security headers on pages, assets and errors", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      for (const path of ["/console/profiles", "/console/assets/app.js", "/console/nope"]) {
        const res = await c.request(path);
        await res.body?.cancel();
        const csp = res.headers.get("content-security-policy") ?? "";
        assert.match(csp, /default-src 'none'/, path);
        assert.match(csp, /script-src 'self'/, path);
        assert.match(csp, /frame-ancestors 'none'/, path);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, path);
        assert.equal(res.headers.get("cache-control"), "no-store", path);
        assert.equal(res.headers.get("x-frame-options"), "DENY", path);
        assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
      }
      // No inline script and no external resource in any page.
      for (const path of ["/console/profiles", "/console/query", "/console/audit"]) {
        const text = await (await c.request(path)).text();
        assert.doesNotMatch(text, /<script(?![^>]*\bsrc="\/console\/assets\/app\.js")/, path);
        assert.doesNotMatch(text, /(src|href)="(https?:)?\/\//, path);
        assert.doesNotMatch(text, / on[a-z]+="/, path);
      }
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: a state-changing request without the right CSRF token changes nothing", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      for (const csrf of [undefined, "wrong", c.csrf!.slice(0, -1)]) {
        const form: Record<string, string> = { name: "stolen", profile: "app" };
        if (csrf !== undefined) form.csrf = csrf;
        const res = await c.request("/console/apikeys", { method: "POST", form });
        assert.equal(res.status, 403, `csrf=${csrf}`);
        assert.equal((await res.json()).error.code, "csrf");
      }
      const big = await c.request("/console/apikeys", {
        method: "POST",
        form: { csrf: c.csrf!, name: "big", profile: "app", pad: "x".repeat(300_000) },
      });
      assert.equal(big.status, 413, "an oversized body is refused before it is read");
      await big.body?.cancel();
      const lock = await c.request("/console/lock", { method: "POST", form: {} });
      assert.equal(lock.status, 403, "even lock needs the token");
      await lock.body?.cancel();
      await using vault = await openVault({ home, password: PW, lockout: "off" });
      assert.deepEqual(await vault.apiKeys.list(), [], "no key was created");
      const refused = (await entries(home)).filter((e) => e.event === "console.refused");
      assert.ok(refused.filter((e) => e.reason === "csrf").length >= 4, "refusals are audited");
      // With the token it works (the test can fail).
      const ok = await c.request("/console/apikeys", {
        method: "POST",
        form: { name: "mine", profile: "app", csrf: c.csrf! },
      });
      assert.equal(ok.status, 303);
      await ok.body?.cancel();
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: a foreign Host (DNS rebinding) or Origin is refused", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      const port = c.console.server.port;
      // A page on evil.example whose name resolves to 127.0.0.1 sends its own name as Host.
      const rebound = await rawRequest(port, [
        "GET /console/profiles HTTP/1.1",
        `Host: evil.example:${port}`,
        `Cookie: ${c.cookie}`,
      ]);
      assert.equal(rebound.status, 421);
      assert.match(rebound.text, /"code":"bad_host"/);
      assert.doesNotMatch(rebound.text, /secret-of-app|<table/);
      const good = await rawRequest(port, [
        "GET /console/profiles HTTP/1.1",
        `Host: 127.0.0.1:${port}`,
        `Cookie: ${c.cookie}`,
      ]);
      assert.equal(good.status, 200, "the same request with the right Host passes");

      const foreign = await c.request("/console/apikeys", {
        method: "POST",
        headers: { origin: "http://evil.example" },
        form: { name: "x", profile: "app", csrf: c.csrf! },
      });
      assert.equal(foreign.status, 403);
      assert.equal((await foreign.json()).error.code, "bad_origin");
      // A POST with no Origin and no same-origin fetch metadata is refused too.
      const bare = await fetch(`${c.console.origin}/console/apikeys`, {
        method: "POST",
        headers: {
          cookie: c.cookie!,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ name: "x", profile: "app", csrf: c.csrf! }).toString(),
        redirect: "manual",
      });
      assert.equal(bare.status, 403);
      await bare.body?.cancel();
      const read = await c.request("/console/api/audit", {
        headers: { origin: "http://evil.example" },
      });
      assert.equal(read.status, 403, "a cross-site read is refused as well");
      await read.body?.cancel();
      await using vault = await openVault({ home, password: PW, lockout: "off" });
      assert.deepEqual(await vault.apiKeys.list(), []);
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: an idle session ends, its vault is closed, and only a new URL logs in again", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const fresh: string[] = [];
    const c = await consoleClient(home, {
      limits: { idleMs: 300 },
      onLoginUrl: (url, why) => fresh.push(`${why} ${url}`),
    });
    try {
      await login(c, PW);
      const ok = await c.request("/console/profiles");
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
      await new Promise((r) => setTimeout(r, 600));
      const late = await c.request("/console/profiles");
      assert.equal(late.status, 401);
      assert.equal((await late.json()).error.code, "no_session");
      const ended = (await entries(home)).filter((e) =>
        e.event === "console.session" && e.detail?.state === "end"
      );
      assert.equal(ended.at(-1)?.detail?.why, "idle");
      // A browser navigating gets a page that says what to do, not JSON.
      const nav = await c.request("/console/audit", { headers: { accept: "text/html,*/*" } });
      assert.equal(nav.status, 401);
      assert.match(await nav.text(), /Session ended[\s\S]*one-time login URL/);
      // The spent URL stays spent; the new one printed for the terminal works once.
      const old = await fetch(c.console.loginUrl, { redirect: "manual" });
      assert.equal(old.status, 401);
      await old.body?.cancel();
      assert.equal(fresh.length, 1);
      const [why, url] = fresh[0]!.split(" ");
      assert.equal(why, "idle");
      assert.notEqual(url, c.console.loginUrl);
      const again = await fetch(url!, { redirect: "manual" });
      assert.equal(again.status, 303);
      await again.body?.cancel();
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: failed logins lock out further attempts, even with the right password", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home, { lockout: "3/15m" });
    try {
      await login(c, "wrong password one");
      for (let i = 0; i < 2; i++) {
        const res = await c.request("/console/login", {
          method: "POST",
          form: { csrf: c.csrf!, password: `wrong password ${i}` },
        });
        assert.equal(res.status, 303);
        await res.body?.cancel();
      }
      const right = await c.request("/console/login", {
        method: "POST",
        form: { csrf: c.csrf!, password: PW },
      });
      assert.equal(right.status, 429, "locked out");
      assert.match(await right.text(), /locked/i);
      const still = await c.request("/console/profiles");
      assert.equal(still.status, 401);
      await still.body?.cancel();
      const trail = await entries(home);
      const fails = trail.filter((e) => e.event === "unlock" && e.outcome === "fail");
      assert.ok(fails.length >= 3);
      assert.ok(trail.some((e) => e.event === "lockout"), "the lockout is audited");
      for (const f of fails) assert.equal(f.detail?.client, "127.0.0.1");
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: lock ends the session and drops the vault; actions carry session, client, agent", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      const add = await c.request("/console/profiles", {
        method: "POST",
        headers: { "user-agent": "console-test-agent/1" },
        form: { csrf: c.csrf!, name: "second", engine: "sqlite", database: `${home}/app.db` },
      });
      assert.equal(add.status, 303);
      await add.body?.cancel();
      const trail = await entries(home);
      const added = trail.find((e) => e.event === "profile.add" && e.profile === "second");
      assert.ok(added, "profile.add recorded");
      assert.equal(added.detail?.client, "127.0.0.1");
      assert.equal(added.detail?.user_agent, "console-test-agent/1");
      assert.match(String(added.detail?.console_session), /^[A-Za-z0-9_-]{8}$/);
      assert.ok(added.detail?.request_id);

      const lock = await c.request("/console/lock", { method: "POST", form: { csrf: c.csrf! } });
      assert.equal(lock.status, 303);
      await lock.body?.cancel();
      const after = await c.request("/console/profiles");
      assert.equal(after.status, 401, "locked: no page");
      await after.body?.cancel();
      // The locked browser may unlock again with the password.
      const form = await c.request("/console/login");
      const text = await form.text();
      assert.match(text, /Locked: the console holds no key now/);
      c.csrf = csrfOf(text);
      const again = await c.request("/console/login", {
        method: "POST",
        form: { csrf: c.csrf!, password: PW },
      });
      assert.equal(again.status, 303);
      await again.body?.cancel();
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: no secret in any response body (canary)", async () => {
  await withHome(async (home) => {
    await prepared(home, ["app"]);
    const canary = "CANARY-console-7f3e9a";
    {
      await using vault = await openVault({ home, password: PW, lockout: "off" });
      await vault.profiles.edit("app", { secrets: { password: { value: canary } } });
    }
    const c = await consoleClient(home);
    try {
      const bodies: string[] = [];
      const keep = async (res: Response) => {
        bodies.push(await res.text());
        return res;
      };
      await login(c, PW);
      for (
        const path of [
          "/console/profiles",
          "/console/profiles/app/edit",
          "/console/query",
          "/console/apikeys",
          "/console/totp",
          "/console/audit",
          "/console/api/audit",
          "/console/backups",
        ]
      ) {
        const res = await keep(await c.request(path));
        assert.equal(res.status, 200, path);
      }
      await keep(
        await c.request("/console/api/query", {
          method: "POST",
          headers: { "x-csrf-token": c.csrf!, "content-type": "application/json" },
          body: JSON.stringify({ profile: "app", sql: "select ? as a, 2 as b", params: ["x"] }),
        }),
      );
      assert.match(bodies.at(-1)!, /"row":\["x","2"\]/, "the query ran");
      await keep(
        await c.request("/console/query/csv", {
          method: "POST",
          form: { csrf: c.csrf!, profile: "app", sql: "select 1 as a", params: "" },
        }),
      );
      const test = await c.request("/console/profiles/app/test", {
        method: "POST",
        form: { csrf: c.csrf! },
      });
      await test.body?.cancel();
      await keep(await c.request("/console/profiles"));
      assert.match(bodies.at(-1)!, /Test of &#34;app&#34; passed/);
      // The list's last use comes from the trail, read again only where it grew.
      assert.match(
        bodies.at(-1)!,
        /<td[^>]*>app<\/td>(?:(?!<\/tr>)[\s\S])*<td[^>]*>\d{4}-\d\d-\d\dT/,
      );
      assert.doesNotMatch(bodies[0]!, /<td>\d{4}-\d\d-\d\dT/, "never used before the test");
      for (const b of bodies) {
        assert.ok(!b.includes(canary), "a profile secret reached the browser");
        assert.ok(!b.includes(PW), "the master password reached the browser");
      }
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: the first page with its script and style is under 150 KB", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      let bytes = 0;
      for (
        const path of ["/console/profiles", "/console/assets/app.js", "/console/assets/app.css"]
      ) {
        const res = await c.request(path);
        assert.equal(res.status, 200, path);
        bytes += (await res.arrayBuffer()).byteLength;
      }
      assert.ok(bytes > 1000, "something was measured");
      assert.ok(bytes < 150 * 1024, `first page ${bytes} bytes`);
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: backups: verify asks the password again (a wrong one is an audited failure), restore needs the typed confirmation", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      const made = await c.request("/console/backups", { method: "POST", form: { csrf: c.csrf! } });
      assert.equal(made.status, 303);
      await made.body?.cancel();
      const page = await (await c.request("/console/backups")).text();
      const file = /name="file" value="([^"]+)"/.exec(page)?.[1];
      assert.ok(file, "the new bundle is listed");
      const post = async (path: string, form: Record<string, string>) => {
        const res = await c.request(path, { method: "POST", form: { csrf: c.csrf!, ...form } });
        await res.body?.cancel();
        assert.equal(res.status, 303, path);
        return await (await c.request("/console/backups")).text();
      };
      assert.match(
        await post("/console/backups/verify", { file, password: "not the password" }),
        /class="flash error"/,
      );
      assert.match(
        await post("/console/backups/verify", { file, password: PW }),
        /Backup is sound/,
      );
      assert.match(
        await post("/console/backups/verify", { file: "../vault.hecate", password: PW }),
        /No backup named/,
        "only listed bundles can be named",
      );
      assert.match(
        await post("/console/backups/restore", { file, password: PW, confirm: "yes" }),
        /Type &#34;restore&#34; to confirm/,
      );
      const trail = await entries(home);
      const verifies = trail.filter((e) => e.event === "backup.verify");
      assert.deepEqual(verifies.map((e) => e.outcome), ["fail", "ok"]);
      assert.ok(verifies.every((e) => typeof e.detail?.console_session === "string"));
      assert.ok(!trail.some((e) => e.event === "backup.restore"), "nothing was restored");
      // With the confirmation the restore runs and the console locks.
      const restore = await c.request("/console/backups/restore", {
        method: "POST",
        form: { csrf: c.csrf!, file, password: PW, confirm: "restore" },
      });
      assert.equal(restore.status, 303);
      assert.equal(restore.headers.get("location"), "/console/login");
      await restore.body?.cancel();
      assert.ok(
        (await entries(home)).some((e) => e.event === "backup.restore" && e.outcome === "ok"),
      );
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: with TOTP on, the password alone does not unlock; the code does", async () => {
  await withHome(async (home) => {
    await prepared(home);
    let secret: string;
    {
      await using v = await openVault({ home, password: PW, lockout: "off" });
      const setup = await v.totp.beginSetup();
      await v.totp.enable(setup, await totpCode(setup.secret, new Date()));
      secret = setup.secret;
    }
    const c = await consoleClient(home);
    try {
      const res = await login(c, PW);
      assert.equal(res.headers.get("location"), "/console/login", "back to the form");
      const form = await (await c.request("/console/login")).text();
      assert.match(form, /class="flash error"/);
      c.csrf = csrfOf(form);
      const denied = await c.request("/console/profiles");
      assert.equal(denied.status, 401);
      await denied.body?.cancel();
      const ok = await c.request("/console/login", {
        method: "POST",
        // The next step's code: the one spent on enabling is refused as a replay.
        form: {
          csrf: c.csrf!,
          password: PW,
          totp: await totpCode(secret, new Date(Date.now() + 30_000)),
        },
      });
      assert.equal(ok.headers.get("location"), "/console/profiles");
      await ok.body?.cancel();
      const page = await c.request("/console/profiles");
      assert.equal(page.status, 200);
      await page.body?.cancel();
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: the absolute limit ends a busy session too", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home, { limits: { absoluteMs: 600 } });
    try {
      await login(c, PW);
      let status = 200;
      const until = Date.now() + 3000;
      while (status === 200 && Date.now() < until) {
        const res = await c.request("/console/api/audit?after=1000000");
        status = res.status;
        await res.body?.cancel();
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 401, "ended although never idle");
      const ended = (await entries(home)).filter((e) =>
        e.event === "console.session" && e.detail?.state === "end"
      );
      assert.equal(ended.at(-1)?.detail?.why, "limit");
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: profile forms are validated like the CLI; a bad value leaves the vault as it was", async () => {
  await withHome(async (home) => {
    await prepared(home);
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      const post = async (path: string, form: Record<string, string>) => {
        const res = await c.request(path, { method: "POST", form: { csrf: c.csrf!, ...form } });
        await res.body?.cancel();
        assert.equal(res.status, 303, path);
        return await (await c.request("/console/profiles")).text();
      };
      const base = { name: "pg1", engine: "postgres", host: "db.internal", user: "app" };
      assert.match(await post("/console/profiles", { ...base, tls: "bogus" }), /Unknown TLS mode/);
      assert.match(await post("/console/profiles", { ...base, port: "70000" }), /Invalid port/);
      assert.match(
        await post("/console/profiles", { ...base, engine: "oracle" }),
        /Unknown engine/,
      );
      assert.match(
        await post("/console/profiles", { ...base, name: "app", password: "p" }),
        /already exists/,
      );
      {
        await using v = await openVault({ home, password: PW, lockout: "off" });
        assert.deepEqual(v.profiles.list().map((p) => p.name), ["app"], "nothing was added");
      }
      assert.match(
        await post("/console/profiles", { ...base, tls: "insecure", password: "pw-value-1" }),
        /Added profile/,
      );
      const edited = await post("/console/profiles/pg1", {
        host: "db2.internal",
        tls: "verify",
        ca_file: "/x/ca.pem",
      });
      assert.match(edited, /Saved profile/);
      await using v = await openVault({ home, password: PW, lockout: "off" });
      const shown = await v.profiles.show("pg1") as {
        host: string;
        tls: { mode: string; caFile?: string };
      };
      assert.equal(shown.host, "db2.internal");
      assert.deepEqual(shown.tls, { mode: "verify", caFile: "/x/ca.pem" });
      const edit = await (await c.request("/console/profiles/pg1/edit")).text();
      assert.match(edit, /password \(set\)/);
      assert.ok(!edit.includes("pw-value-1"), "the secret is write-only");
    } finally {
      await c.close();
    }
  });
});

Deno.test("console: the audit filter and the tail answer only matching records after a sequence", async () => {
  await withHome(async (home) => {
    await prepared(home, ["app", "other"]);
    const c = await consoleClient(home);
    try {
      await login(c, PW);
      const page = await (await c.request("/console/audit?event=profile.add&profile=other")).text();
      const seqs = [...page.matchAll(/<tr class="ok">\s*<td>(\d+)<\/td>/g)].map((m) =>
        Number(m[1])
      );
      const want = (await entries(home)).filter((e) =>
        e.event === "profile.add" && e.profile === "other"
      );
      assert.deepEqual(seqs, want.map((e) => e.seq));
      assert.equal(seqs.length, 1);
      const tail = await (await c.request("/console/api/audit?after=0&outcome=fail")).json();
      assert.deepEqual(tail.rows, [], "no failure yet");
      const bad = await c.request("/console/api/audit?after=-1");
      assert.equal(bad.status, 400);
      await bad.body?.cancel();
    } finally {
      await c.close();
    }
  });
});
