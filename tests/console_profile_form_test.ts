/**
 * The console's profile form takes the auth method with its params, secrets and secret
 * references like `server add`: the same profile results, a bad reference or an unknown method
 * gets the CLI's message and adds nothing, and no secret is ever sent back to the browser.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/console_profile_form_test.ts
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { consoleClient, login } from "./support/console.ts";

/** The text of the page's flash messages, unescaped like a browser shows it. */
function flashOf(page: string): string {
  return page.replaceAll("&#34;", '"').replaceAll("&#39;", "'").replaceAll("&amp;", "&")
    .replaceAll("&lt;", "<").replaceAll("&gt;", ">");
}

Deno.test("console profile form: auth method, params, secret refs, with the CLI's validation", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, [])).close();
    const pw = await passwordFile(home);
    const cli = (args: string[]) =>
      runHecate(["--home", home, ...args], { env: { HECATE_PASSWORD_FILE: pw } });
    const canary = "canary-client-secret-51c7";
    const c = await consoleClient(home);
    const bodies: string[] = [];
    try {
      await login(c, PW);
      const add = async (form: Record<string, string>): Promise<string> => {
        const res = await c.request("/console/profiles", {
          method: "POST",
          form: { csrf: c.csrf!, engine: "postgres", host: "db.example", user: "app", ...form },
        });
        await res.body?.cancel();
        assert.equal(res.status, 303);
        const page = await (await c.request("/console/profiles")).text();
        bodies.push(page);
        return flashOf(page);
      };

      // A reference stands for the method's first secret, as with --secret-ref.
      assert.match(
        await add({ name: "refd", secret_refs: "env:HECATE_FORM_PW" }),
        /Added profile "refd"/,
      );
      // Two references: sources in priority order.
      assert.match(
        await add({ name: "two", secret_refs: "env:A_PW\nenv:B_PW" }),
        /Added profile "two"/,
      );
      // A method with params and a secret of its own.
      assert.match(
        await add({
          name: "tok",
          engine: "mssql",
          auth: "token",
          param_tokenMode: "client-secret",
          param_tenantId: "tenant-1",
          param_clientId: "client-1",
          secret_clientSecret: canary,
        }),
        /Added profile "tok"/,
      );

      // Bad input: the CLI's message, and nothing added.
      const cliBad = await cli([
        "server",
        "add",
        "bad",
        "--engine",
        "postgres",
        "--host",
        "db.example",
        "--user",
        "app",
        "--secret-ref",
        "nosuchscheme:x",
      ]);
      assert.equal(cliBad.code, 2, cliBad.stderr);
      const cliMessage = /^hecate: (?:error: )?([^\n]+)/.exec(cliBad.stderr)?.[1];
      assert.ok(cliMessage, cliBad.stderr);
      assert.match(cliMessage, /Unknown secret reference scheme "nosuchscheme"/);
      const bad = await add({ name: "bad", secret_refs: "nosuchscheme:x" });
      assert.ok(bad.includes(cliMessage), `console shows the CLI's message: ${cliMessage}`);
      assert.match(
        await add({ name: "bad", secret_refs: "no scheme here" }),
        /A secret reference must look like SCHEME:LOCATION/,
      );
      assert.match(
        await add({ name: "bad", auth: "kerberos" }),
        /Profile "bad": unknown auth method "kerberos"/,
      );
      assert.match(
        await add({ name: "bad", secret_refs: "env:X", password: "typed" }),
        /Give either a secret value or secret references, not both/,
      );
      assert.match(
        await add({ name: "bad", engine: "sqlite", database: "/tmp/x.db", password: "typed" }),
        /Auth method "none" does not use a password/,
      );

      for (const b of bodies) assert.ok(!b.includes(canary), "a secret was sent back");
    } finally {
      await c.close();
    }

    const vault = await openVault({ home, password: PW, lockout: "off" });
    try {
      assert.deepEqual(vault.profiles.list().map((p) => p.name).sort(), ["refd", "tok", "two"]);
      const refd = await vault.profiles.show("refd");
      assert.equal(refd.auth, "sql");
      // show() gives a reference as its text (it is not secret).
      assert.deepEqual(refd.secrets, { password: "env:HECATE_FORM_PW" });
      const two = JSON.stringify((await vault.profiles.show("two")).secrets);
      assert.ok(
        two.indexOf("env:A_PW") >= 0 && two.indexOf("env:A_PW") < two.indexOf("env:B_PW"),
        two,
      );
      const tok = await vault.profiles.show("tok");
      assert.equal(tok.auth, "token");
      assert.deepEqual(tok.params, {
        tokenMode: "client-secret",
        tenantId: "tenant-1",
        clientId: "client-1",
      });
      assert.deepEqual(Object.keys(tok.secrets ?? {}), ["clientSecret"]);
    } finally {
      await vault.close();
    }
  });
});
