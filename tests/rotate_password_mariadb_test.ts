/**
 * `server rotate-password` against a real MariaDB server: the new password logs in, the old one
 * is refused by the server, the new one is never printed or audited.
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { auditLines, passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { startMariadb } from "./support/mariadb.ts";

Deno.test("rotate-password on real MariaDB: the server takes the new password, the old one is refused", async () => {
  const db = await startMariadb();
  try {
    await withHome(async (home) => {
      const vault = await vaultWith(home, []);
      await vault.profiles.add({
        name: "maria",
        engine: "mysql",
        host: db.host,
        port: db.port,
        user: db.user,
        database: db.database,
        tls: { mode: "disable" },
        secrets: { password: { value: db.password } },
      });
      await vault.close();
      const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
      const r = await runHecate([
        "--home",
        home,
        "server",
        "rotate-password",
        "maria",
        "--length",
        "40",
      ], {
        env,
      });
      assert.equal(r.code, 0, r.stderr);
      const v = await openVault({ home, password: PW, lockout: "off" });
      const fresh = (await v.environment("maria")).MYSQL_PWD ??
        (await v.environment("maria")).HECATE_PASSWORD;
      assert.ok(fresh && fresh !== db.password && fresh.length === 40);
      await (await v.connect("maria")).close();
      // The old password, restored in the vault only, is refused by the server.
      await v.profiles.rollback("maria", 1);
      await assert.rejects(async () => (await v.connect("maria")).close());
      await v.profiles.rollback("maria", 2);
      await (await v.connect("maria")).close();
      await v.close();
      assert.ok(!(r.stdout + r.stderr).includes(fresh));
      assert.ok(!JSON.stringify(await auditLines(home)).includes(fresh));
    });
  } finally {
    await db.stop();
  }
});
