/**
 * The SSH tunnel is driver-neutral: real MariaDB and the SQL Server TEST DOUBLE behind a real
 * OpenSSH sshd on loopback, reached through the library exactly like PostgreSQL is in
 * ssh_tunnel_test.ts, and nothing left open afterwards.
 */

import assert from "node:assert/strict";
import { startMariadb } from "./support/mariadb.ts";
import { startSshd } from "./support/sshd.ts";
import { startTdsDouble } from "./support/tds_double.ts";
import { initVault, openVault } from "../src/hecate.ts";
import { openTunnelCount } from "../src/tunnel/tunnel.ts";

const MASTER = "ssh engines test master password";
const SA_PASSWORD = "Sa-Secret-Pw-9090";

Deno.test("MariaDB and the SQL Server test double work through an SSH tunnel", async (t) => {
  await using maria = await startMariadb();
  await using tds = await startTdsDouble({ logins: { sa: SA_PASSWORD } });
  tds.answer("select 41 + 1 as answer", {
    sets: [{ columns: [{ name: "answer", type: "int" }], rows: [[42]] }],
  });
  await using sshd = await startSshd();
  const dir = await Deno.makeTempDir({ prefix: "hecate-ssh-engines-" });
  try {
    const knownHosts = `${dir}/known_hosts`;
    await Deno.writeTextFile(knownHosts, sshd.knownHostsLine + "\n");
    const home = `${dir}/home`;
    await initVault({ home, password: MASTER, kdfIterations: 600_000 });
    const vault = await openVault({ home, password: MASTER });
    const ssh = {
      hops: [{ host: sshd.host, port: sshd.port, user: sshd.user, auth: "password" as const }],
      knownHostsFile: knownHosts,
    };
    await vault.profiles.add({
      name: "maria",
      engine: "mysql",
      host: "127.0.0.1",
      port: maria.port,
      database: maria.database,
      user: maria.user,
      tls: { mode: "disable" },
      ssh,
      secrets: { password: { value: maria.password }, "ssh.0.password": { value: sshd.password } },
    });
    await vault.profiles.add({
      name: "mssql",
      engine: "mssql",
      host: "127.0.0.1",
      port: tds.port,
      user: "sa",
      tls: { mode: "disable" },
      ssh,
      secrets: { password: { value: SA_PASSWORD }, "ssh.0.password": { value: sshd.password } },
    });

    await t.step("MariaDB answers through the tunnel, with a bound parameter", async () => {
      const rows = await vault.query("maria", "select ? + 1 as n, database() as db", [41]);
      assert.equal(Number(rows[0]!.n), 42);
      assert.equal(rows[0]!.db, maria.database);
    });

    await t.step("the SQL Server test double answers through the tunnel", async () => {
      const rows = await vault.query("mssql", "select 41 + 1 as answer");
      assert.deepEqual(rows, [{ answer: 42 }]);
      assert.ok(tds.logins.some((l) => l.user === "sa"));
    });

    await t.step("hecate run keeps the tunnel open for the program it starts", async () => {
      // The mariadb client reads MYSQL_HOST, MYSQL_TCP_PORT and MYSQL_PWD from its environment.
      const code = await vault.run("maria", "sh", [
        "-c",
        `test "$MYSQL_TCP_PORT" != "${maria.port}" && ` +
        `mariadb --protocol=tcp -u "${maria.user}" -e "select 1" "${maria.database}" > /dev/null`,
      ]);
      assert.equal(code, 0);
    });

    await t.step("hecate env refuses a tunnelled profile (its port would be gone)", async () => {
      await assert.rejects(() => vault.environment("maria"), /SSH tunnel/);
    });

    await t.step("no tunnel is left open after the queries", () => {
      assert.equal(openTunnelCount(), 0);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
