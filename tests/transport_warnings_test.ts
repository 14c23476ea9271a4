/**
 * Transport security on every path that hands out a profile's login, through the CLI as a person
 * runs it: the TLS warnings of `query`, `run`, `env`, `server test` and the library's
 * `vault.connect`, and `--allow-plain-auth` from `server add/edit` to the PostgreSQL driver,
 * against a fake server on 127.0.0.1 that asks for the password in cleartext (a man in the middle
 * on a TLS-off connection).
 */

import assert from "node:assert/strict";
import { passwordFile, PW, ROOT, runHecate, vaultWith, withHome } from "./support/access.ts";

/** A port with nothing listening on it. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Serves PostgreSQL logins that ask for a cleartext password and records what comes back. */
function fakeCleartextServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: string[] = [];
  const serve = async (conn: Deno.Conn) => {
    const chunks: Uint8Array[] = [];
    let asked = false;
    try {
      for (;;) {
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf);
        if (n === null) break;
        chunks.push(buf.slice(0, n));
        if (!asked) {
          asked = true; // after the startup message: AuthenticationCleartextPassword
          await conn.write(new Uint8Array([0x52, 0, 0, 0, 8, 0, 0, 0, 3]));
        } else {
          break;
        }
      }
    } catch {
      // the client hung up
    } finally {
      conn.close();
      received.push(chunks.map((c) => new TextDecoder().decode(c)).join(""));
    }
  };
  const served = (async () => {
    for await (const conn of listener) void serve(conn);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    received,
    async close() {
      listener.close();
      await served.catch(() => {});
    },
  };
}

const WARN_DISABLED = (name: string) =>
  `hecate: warning: TLS is disabled for profile "${name}": the login travels unencrypted\n`;
const WARN_INSECURE = (name: string) =>
  `hecate: warning: TLS certificate verification is off for profile "${name}" (--tls insecure)\n`;

Deno.test("TLS warnings on query, run, env, server test and the library connect", async (t) => {
  await withHome(async (home) => {
    await vaultWith(home, []);
    const pw = await passwordFile(home);
    const h = (args: string[], stdin?: string) =>
      runHecate(["--home", home, ...args], {
        env: { HECATE_PASSWORD_FILE: pw },
        ...(stdin !== undefined ? { stdin } : {}),
      });
    const port = String(closedPort());
    // 0.0.0.0 is not a loopback name, and a connection to it fails at once (nothing listens).
    const add = (name: string, tls: string, host = "0.0.0.0") =>
      h([
        "server",
        "add",
        name,
        "--engine",
        "postgres",
        "--host",
        host,
        "--port",
        port,
        "--user",
        "u",
        "--tls",
        tls,
        "--connect-timeout",
        "3000",
        "--secret-stdin",
      ], "db-Passw0rd-canary\n");
    for (
      const [name, tls, host] of [["off", "disable"], ["loose", "insecure"], [
        "local",
        "disable",
        "127.0.0.1",
      ]]
    ) {
      const r = await add(name!, tls!, host);
      assert.equal(r.code, 0, r.stderr);
    }
    const cases: [string, string[], number][] = [
      ["query", ["query", "%", "select 1"], 6],
      ["run", ["run", "%", "--", "true"], 0],
      ["env", ["env", "%"], 0],
      ["server test", ["server", "test", "%"], 6],
    ];
    for (const [what, args, code] of cases) {
      await t.step(what, async () => {
        for (const [name, warning] of [["off", WARN_DISABLED], ["loose", WARN_INSECURE]] as const) {
          const r = await h(args.map((a) => a === "%" ? name : a));
          assert.equal(r.code, code, r.stderr);
          assert.ok(r.stderr.startsWith(warning(name)), `${what} ${name}: ${r.stderr}`);
          assert.equal(r.stderr.split(warning(name)).length, 2, "exactly once");
          assert.ok(!r.stderr.includes("db-Passw0rd-canary"));
        }
        // TLS off to a loopback host: no warning.
        const local = await h(args.map((a) => a === "%" ? "local" : a));
        assert.ok(!local.stderr.includes("warning"), local.stderr);
      });
    }

    await t.step("library: vault.connect and vault.environment warn on stderr", async () => {
      const script = `${home}/lib.ts`;
      await Deno.writeTextFile(
        script,
        `import { openVault } from "${ROOT}mod.ts";\n` +
          `const v = await openVault({ home: ${JSON.stringify(home)}, password: ${
            JSON.stringify(PW)
          } });\n` +
          `await v.environment("off");\n` +
          `await v.connect("loose").catch(() => console.log("connect failed"));\n`,
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", "-A", script],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(new TextDecoder().decode(out.stdout), "connect failed\n");
      assert.equal(err, WARN_DISABLED("off") + WARN_INSECURE("loose"));
    });
  });
});

Deno.test("--allow-plain-auth: off by default, a TLS-off server asking for cleartext gets no password (exit 3); stored by server add/edit", async () => {
  await withHome(async (home) => {
    await vaultWith(home, []);
    const pw = await passwordFile(home);
    const secret = "plain-Passw0rd-canary";
    const h = (args: string[], stdin?: string) =>
      runHecate(["--home", home, ...args], {
        env: { HECATE_PASSWORD_FILE: pw },
        ...(stdin !== undefined ? { stdin } : {}),
      });
    const fake = fakeCleartextServer();
    try {
      const add = await h([
        "server",
        "add",
        "pg",
        "--engine",
        "postgres",
        "--host",
        "127.0.0.1",
        "--port",
        String(fake.port),
        "--user",
        "u",
        "--tls",
        "disable",
        "--secret-stdin",
      ], `${secret}\n`);
      assert.equal(add.code, 0, add.stderr);
      const tlsOf = async () =>
        JSON.parse((await h(["server", "show", "pg", "--json"])).stdout).tls;
      assert.deepEqual(await tlsOf(), { mode: "disable" });

      for (const args of [["server", "test", "pg"], ["query", "pg", "select 1"]]) {
        const r = await h(args);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /asks for the password in cleartext.*the password was not sent/);
        assert.match(r.stderr, /--allow-plain-auth/);
        assert.ok(!r.stderr.includes(secret));
      }
      assert.equal(fake.received.length, 2);
      assert.ok(fake.received.every((m) => !m.includes(secret)), "the password reached the fake");

      // Allowed explicitly: the driver answers (the fake now gets the password, as intended).
      assert.equal((await h(["server", "edit", "pg", "--allow-plain-auth"])).code, 0);
      assert.deepEqual(await tlsOf(), { mode: "disable", allowPlainAuth: true });
      const allowed = await h(["server", "test", "pg"]);
      assert.equal(allowed.code, 6, allowed.stderr); // the fake hangs up after the password
      assert.ok(fake.received.at(-1)!.includes(secret));

      // Changing another TLS field keeps it; --no-allow-plain-auth removes it.
      assert.equal((await h(["server", "edit", "pg", "--tls", "insecure"])).code, 0);
      assert.deepEqual(await tlsOf(), { mode: "insecure", allowPlainAuth: true });
      assert.equal((await h(["server", "edit", "pg", "--no-allow-plain-auth"])).code, 0);
      assert.deepEqual(await tlsOf(), { mode: "insecure" });
    } finally {
      await fake.close();
    }
  });
});
