/**
 * A tunnel made in the console's forms works: a PostgreSQL profile added with the SSH fields (a
 * real sshd, the hop's password in the form's write-only input, the host key pinned) passes Test
 * with each SSH step shown; a wrong SSH password saved from the edit form fails Test after the
 * steps that completed; the right one typed alone into the edit form makes it pass again. No
 * page carries the SSH or database password.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/console_ssh_test.ts
 */

import assert from "node:assert/strict";
import { startPostgres } from "./support/postgres.ts";
import { startSshd } from "./support/sshd.ts";
import { PW, vaultWith, withHome } from "./support/access.ts";
import { type ConsoleClient, consoleClient, login } from "./support/console.ts";

/** Posts a form; returns the flash text (tags removed) of the page it leads to. */
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
  return [...page.matchAll(/<div class="flash [^"]*" role="status">([\s\S]*?)<\/div>/g)]
    .map((m) => m[1]!.replace(/<[^>]+>/g, " ")).join("\n").replaceAll("&#34;", '"');
}

Deno.test("console: a tunnel from the SSH fields passes Test, each SSH step shown", async () => {
  const pg = await startPostgres();
  const sshd = await startSshd();
  try {
    await withHome(async (home) => {
      await (await vaultWith(home, [])).close();
      const c = await consoleClient(home);
      const bodies: string[] = [];
      try {
        await login(c, PW);
        const ssh = {
          ssh_form: "1",
          ssh_target: `${sshd.user}@127.0.0.1:${sshd.port}`,
          ssh_host_keys: sshd.hostKey.fingerprint,
        };
        assert.match(
          await post(c, "/console/profiles", {
            name: "tun",
            engine: "postgres",
            host: "127.0.0.1",
            port: String(pg.port),
            database: pg.database,
            user: pg.user,
            tls: "disable",
            password: pg.password,
            ...ssh,
            ssh_secret: sshd.password,
          }, bodies),
          /Added profile "tun"/,
        );
        const test = () => post(c, "/console/profiles/tun/test", {}, bodies);
        const passed = await test();
        assert.match(passed, /Test of "tun" passed/);
        for (const step of ["host key", "handshake", "auth", "forward"]) {
          assert.match(passed, new RegExp(`SSH hop 1 ${step}\\b.*: [\\d.]+ ms`), passed);
        }
        assert.match(passed, /round trip: [\d.]+ ms/);

        // A wrong SSH password from the edit form (the only field changed): Test fails at auth.
        const edit = (secret: string) =>
          post(c, "/console/profiles/tun", { ...ssh, ssh_secret: secret }, bodies);
        assert.match(await edit("not the password"), /Saved profile "tun"/);
        const failed = await test();
        assert.match(failed, /Test of "tun" failed/);
        assert.match(failed, /SSH hop 1 handshake\b/);
        assert.doesNotMatch(failed, /SSH hop 1 forward\b/);
        assert.match(failed, /failed after [\d.]+ ms: SSH login to SSH server .* refused/);
        assert.match(await edit(sshd.password), /Saved profile "tun"/);
        assert.match(await test(), /Test of "tun" passed/);

        for (const b of bodies) {
          assert.ok(!b.includes(sshd.password) && !b.includes(pg.password), "a secret came back");
        }
      } finally {
        await c.close();
      }
    });
  } finally {
    await sshd.stop();
    await pg.stop();
  }
});
