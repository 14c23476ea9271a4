/**
 * The console's edit form changes what `server edit` changes: the auth method with its params and
 * secrets, secret references, whole-connection sources (`--from`), and the SSH tunnel; add takes
 * the SSH fields of `server add --ssh...`. The same input makes the same profile as the CLI, a bad
 * value gets the CLI's message and changes nothing, the edit page submitted as shown changes
 * nothing, and no secret is ever sent back to the browser.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/console_profile_edit_test.ts
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { type ConsoleClient, consoleClient, login } from "./support/console.ts";

const PIN = "SHA256:" + "A".repeat(43);

/** HTML text unescaped as a browser shows it. */
function unescape(text: string): string {
  return text.replaceAll("&#34;", '"').replaceAll("&#60;", "<").replaceAll("&#62;", ">").replaceAll(
    "&#39;",
    "'",
  ).replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

/**
 * The fields a browser would submit for the page's profile form (the one posting to `action`):
 * inputs with their values (checkboxes only when checked), textareas, selected options.
 */
function formOf(page: string, action: string): Record<string, string> {
  const start = page.indexOf(`action="${action}"`);
  assert.ok(start >= 0, `a form posting to ${action}`);
  const form = page.slice(start, page.indexOf("</form>", start));
  const out: Record<string, string> = {};
  for (const m of form.matchAll(/<input([^>]*)>/g)) {
    const attrs = m[1]!;
    const name = /name="([^"]*)"/.exec(attrs)?.[1];
    if (!name) continue;
    if (/type="checkbox"/.test(attrs)) {
      if (/\bchecked\b/.test(attrs)) out[name] = "on";
      continue;
    }
    out[name] = unescape(/value="([^"]*)"/.exec(attrs)?.[1] ?? "");
  }
  for (const m of form.matchAll(/<textarea[^>]*name="([^"]*)"[^>]*>([^<]*)<\/textarea>/g)) {
    out[m[1]!] = unescape(m[2]!);
  }
  for (const m of form.matchAll(/<select[^>]*name="([^"]*)"[^>]*>([\s\S]*?)<\/select>/g)) {
    const opts = [...m[2]!.matchAll(/<option value="([^"]*)"\s*(selected)?/g)];
    out[m[1]!] = unescape((opts.find((o) => o[2]) ?? opts[0])?.[1] ?? "");
  }
  return out;
}

/** Posts a form and returns the flash text of the page it leads to (and the page). */
async function post(
  c: ConsoleClient,
  path: string,
  form: Record<string, string>,
  bodies: string[],
): Promise<string> {
  const res = await c.request(path, { method: "POST", form: { ...form, csrf: c.csrf! } });
  await res.body?.cancel();
  assert.equal(res.status, 303);
  const page = await (await c.request("/console/profiles")).text();
  bodies.push(page);
  const flash = [...page.matchAll(/<div class="flash [^"]*" role="status">([\s\S]*?)<\/div>/g)]
    .map((m) => m[1]!.replace(/<[^>]+>/g, " ").trim());
  return unescape(flash.join("\n"));
}

async function editPage(c: ConsoleClient, name: string, bodies: string[]): Promise<string> {
  const page = await (await c.request(`/console/profiles/${name}/edit`)).text();
  bodies.push(page);
  return page;
}

/** The first line of the CLI's error for these arguments. */
async function cliError(home: string, args: string[]): Promise<string> {
  const pw = await passwordFile(home);
  const r = await runHecate(["--home", home, ...args], { env: { HECATE_PASSWORD_FILE: pw } });
  assert.notEqual(r.code, 0, r.stdout);
  const m = /^hecate: (?:error: )?([^\n]+)/.exec(r.stderr)?.[1];
  assert.ok(m, r.stderr);
  return m;
}

/** What the profile holds, without its timestamps and secret history. */
async function stateOf(home: string, name: string): Promise<Record<string, unknown>> {
  const vault = await openVault({ home, password: PW, lockout: "off" });
  try {
    const { updated: _u, created: _c, version: _v, ...rest } = await vault.profiles.show(
      name,
    ) as Record<string, unknown>;
    return rest;
  } finally {
    await vault.close();
  }
}

Deno.test("console edit: auth method, params, secret refs and --from, with the CLI's checks", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, [])).close();
    const canary = "canary-db-password-7d1e";
    const canary2 = "canary-client-secret-90ab";
    const c = await consoleClient(home);
    const bodies: string[] = [];
    try {
      await login(c, PW);
      assert.match(
        await post(c, "/console/profiles", {
          name: "db",
          engine: "mssql",
          host: "db.example",
          user: "app",
          password: canary,
        }, bodies),
        /Added profile "db"/,
      );
      const action = "/console/profiles/db";

      // The page submitted as shown changes nothing (a secret left empty is kept).
      const before = await stateOf(home, "db");
      const shown = formOf(await editPage(c, "db", bodies), action);
      assert.equal(shown.auth, "sql");
      assert.equal(shown.password, "");
      assert.match(await post(c, action, shown, bodies), /Saved profile "db"/);
      assert.deepEqual(await stateOf(home, "db"), before);

      // The method changes, with its params and its secret; it persists.
      assert.match(
        await post(c, action, {
          ...shown,
          auth: "token",
          param_tokenMode: "client-secret",
          param_tenantId: "tenant-1",
          param_clientId: "client-1",
          param_scope: "api://db/.default",
          secret_clientSecret: canary2,
        }, bodies),
        /Saved profile "db"/,
      );
      let now = await stateOf(home, "db");
      assert.equal(now.auth, "token");
      assert.deepEqual(now.params, {
        tokenMode: "client-secret",
        tenantId: "tenant-1",
        clientId: "client-1",
        scope: "api://db/.default",
      });
      assert.equal((now.secrets as Record<string, string>).clientSecret, "********");
      const page = await editPage(c, "db", bodies);
      assert.match(page, /clientSecret \(set\)/);
      const again = formOf(page, action);
      assert.equal(again.auth, "token");
      assert.equal(again.param_tenantId, "tenant-1");
      assert.equal(again.secret_clientSecret, "");

      // Emptying a param removes it; references replace the first secret, in order.
      assert.match(
        await post(c, action, {
          ...again,
          param_scope: "",
          secret_refs: "env:HECATE_A\nenv:HECATE_B",
        }, bodies),
        /Saved profile "db"/,
      );
      now = await stateOf(home, "db");
      assert.equal((now.params as Record<string, string>).scope, undefined);
      assert.equal(
        (now.secrets as Record<string, string>).clientSecret,
        "env:HECATE_A env:HECATE_B",
      );
      assert.equal(
        formOf(await editPage(c, "db", bodies), action).secret_refs,
        "env:HECATE_A\nenv:HECATE_B",
      );

      // Whole-connection sources, then back to sql with a typed password.
      assert.match(
        await post(c, action, {
          ...formOf(await editPage(c, "db", bodies), action),
          from: "env:HECATE_CONN",
        }, bodies),
        /Saved profile "db"/,
      );
      assert.deepEqual((await stateOf(home, "db")).sources, { from: ["env:HECATE_CONN"] });
      assert.match(
        await post(c, action, {
          ...formOf(await editPage(c, "db", bodies), action),
          auth: "sql",
          param_tokenMode: "",
          param_clientId: "",
          param_tenantId: "",
          secret_refs: "",
          password: canary,
          from: "",
        }, bodies),
        /Saved profile "db"/,
      );
      now = await stateOf(home, "db");
      assert.equal(now.auth, "sql");
      assert.equal(now.params, undefined);
      assert.equal(now.sources, undefined);
      assert.deepEqual(now.secrets, { password: "********" });

      // Bad input: the CLI's message for the same edit, and the profile as it was.
      const kept = await stateOf(home, "db");
      const form = formOf(await editPage(c, "db", bodies), action);
      const cases: [Record<string, string>, string[]][] = [
        [{ auth: "kerberos" }, ["--auth", "kerberos"]],
        [{ secret_refs: "nosuchscheme:x" }, ["--secret-ref", "nosuchscheme:x"]],
        [{ secret_refs: "no scheme here" }, ["--secret-ref", "no scheme here"]],
        [{ from: "nosuchscheme:x" }, ["--from", "nosuchscheme:x"]],
      ];
      for (const [change, args] of cases) {
        const message = await cliError(home, ["server", "edit", "db", ...args]);
        const flash = await post(c, action, { ...form, ...change }, bodies);
        assert.ok(flash.includes(message), `the console shows the CLI's "${message}"`);
        assert.deepEqual(await stateOf(home, "db"), kept);
      }
      assert.match(
        await post(c, action, { ...form, secret_refs: "env:X", password: "typed" }, bodies),
        /Give either a secret value or secret references, not both/,
      );
      assert.match(
        await post(c, action, { ...form, auth: "none", password: "typed" }, bodies),
        /Auth method "none" does not use a password/,
      );
      assert.deepEqual(await stateOf(home, "db"), kept);

      for (const b of bodies) {
        assert.ok(!b.includes(canary) && !b.includes(canary2), "a secret was sent back");
      }
    } finally {
      await c.close();
    }
  });
});

Deno.test("console SSH fields: add and edit make the CLI's tunnel; bad input gets its message", async () => {
  await withHome(async (home) => {
    await (await vaultWith(home, [])).close();
    const canary = "canary-ssh-password-44f0";
    const pw = await passwordFile(home);
    const sshArgs = [
      "--ssh",
      "ops@bastion.example:2222",
      "--ssh-jump",
      "jump@j1.example",
      "--ssh-agent",
      "--ssh-host-key",
      PIN,
      "--ssh-accept-new",
      "--ssh-keepalive",
      "15000",
    ];
    const made = await runHecate([
      "--home",
      home,
      "server",
      "add",
      "viacli",
      "--engine",
      "postgres",
      "--host",
      "db.internal",
      "--user",
      "app",
      "--secret-ref",
      "env:HECATE_PW",
      ...sshArgs,
    ], { env: { HECATE_PASSWORD_FILE: pw } });
    assert.equal(made.code, 0, made.stderr);
    const c = await consoleClient(home);
    const bodies: string[] = [];
    try {
      await login(c, PW);
      const add = {
        engine: "postgres",
        host: "db.internal",
        user: "app",
        secret_refs: "env:HECATE_PW",
        ssh_form: "1",
        ssh_target: "ops@bastion.example:2222",
        ssh_jumps: "jump@j1.example",
        ssh_agent: "on",
        ssh_host_keys: PIN,
        ssh_accept_new: "on",
        ssh_keepalive: "15000",
      };
      assert.match(
        await post(c, "/console/profiles", { ...add, name: "viaui" }, bodies),
        /Added profile "viaui"/,
      );
      const cliSsh = (await stateOf(home, "viacli")).ssh;
      assert.deepEqual((await stateOf(home, "viaui")).ssh, cliSsh);

      // The edit page shows the tunnel; submitted as shown, nothing changes.
      const action = "/console/profiles/viaui";
      const shown = formOf(await editPage(c, "viaui", bodies), action);
      assert.equal(shown.ssh_target, "ops@bastion.example:2222");
      assert.equal(shown.ssh_jumps, "jump@j1.example");
      assert.equal(shown.ssh_agent, "on");
      assert.equal(shown.ssh_host_keys, `bastion.example:2222=${PIN}`);
      assert.equal(shown.ssh_accept_new, "on");
      assert.equal(shown.ssh_keepalive, "15000");
      const before = await stateOf(home, "viaui");
      assert.match(await post(c, action, shown, bodies), /Saved profile "viaui"/);
      assert.deepEqual(await stateOf(home, "viaui"), before);

      // Password login on both hops: every hop needs the secret; without it nothing changes.
      const toPassword = { ...shown, ssh_agent: "" };
      delete (toPassword as Record<string, string>).ssh_agent;
      assert.match(
        await post(c, action, toPassword, bodies),
        /No SSH secret given: SSH password for jump@j1\.example:22 \(viaui\)/,
      );
      assert.deepEqual(await stateOf(home, "viaui"), before);
      assert.match(
        await post(c, action, { ...toPassword, ssh_secret: canary }, bodies),
        /Saved profile "viaui"/,
      );
      // The same change through the CLI gives the same tunnel.
      const cliEdit = await runHecate([
        "--home",
        home,
        "server",
        "edit",
        "viacli",
        "--ssh",
        "ops@bastion.example:2222",
        "--ssh-jump",
        "jump@j1.example",
        "--ssh-secret-stdin",
      ], { env: { HECATE_PASSWORD_FILE: pw }, stdin: `${canary}\n${canary}\n` });
      assert.equal(cliEdit.code, 0, cliEdit.stderr);
      let now = await stateOf(home, "viaui");
      assert.deepEqual(now.ssh, (await stateOf(home, "viacli")).ssh);
      assert.deepEqual(
        Object.keys(now.secrets as object).filter((k) => k.startsWith("ssh.")).sort(),
        ["ssh.0.password", "ssh.1.password"],
      );
      const page = await editPage(c, "viaui", bodies);
      assert.ok(!page.includes(canary));
      assert.match(page, /ssh\.0\.password \(set\)/);

      // Bad input: the CLI's message, nothing changed.
      const kept = await stateOf(home, "viaui");
      const form = formOf(page, action);
      const cases: [Record<string, string>, string[]][] = [
        [{ ssh_target: "no-at-sign" }, ["--ssh", "no-at-sign"]],
        [{ ssh_host_keys: `${form.ssh_host_keys}\nSHA256:short` }, [
          "--ssh-host-key",
          "SHA256:short",
        ]],
        [{ ssh_host_keys: `elsewhere.example=${PIN}` }, [
          "--ssh-host-key",
          `elsewhere.example=${PIN}`,
        ]],
        [{ ssh_key: "/k", ssh_agent: "on" }, ["--ssh-key", "/k", "--ssh-agent"]],
      ];
      for (const [change, args] of cases) {
        const message = await cliError(home, ["server", "edit", "viacli", ...args]);
        const flash = await post(c, action, { ...form, ...change }, bodies);
        assert.ok(flash.includes(message), `the console shows the CLI's "${message}":\n${flash}`);
        assert.deepEqual(await stateOf(home, "viaui"), kept);
      }
      assert.match(
        await post(c, "/console/profiles", {
          ...add,
          name: "nossh",
          ssh_target: "",
        }, bodies),
        /The --ssh-\* options need --ssh/,
      );

      // An emptied SSH host removes the tunnel and its secrets.
      assert.match(await post(c, action, { ...form, ssh_target: "" }, bodies), /Saved profile/);
      now = await stateOf(home, "viaui");
      assert.equal(now.ssh, undefined);
      assert.deepEqual(Object.keys(now.secrets as object), ["password"]);

      for (const b of bodies) assert.ok(!b.includes(canary), "an SSH secret was sent back");
    } finally {
      await c.close();
    }
  });
});
