/**
 * `server rotate-password` for SQL Server through the TDS double (which enforces ALTER LOGIN as
 * SQL Server does: the old password for a login changing itself, `sa` for another login).
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { startTdsDouble } from "./support/tds_double.ts";

Deno.test("rotate-password on the TDS double: own login with OLD_PASSWORD, and --admin", async () => {
  await using db = await startTdsDouble({
    logins: { sa: "Admin-Pass-1", app: "Old-Pass-1'x", other: "Other-Pass-1" },
  });
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    const base = {
      engine: "mssql" as const,
      host: "127.0.0.1",
      port: db.port,
      tls: { mode: "disable" as const },
      connectTimeoutMs: 3000,
    };
    for (
      const [name, pw] of [["sa", "Admin-Pass-1"], ["app", "Old-Pass-1'x"], [
        "other",
        "Other-Pass-1",
      ]]
    ) {
      await vault.profiles.add({
        ...base,
        name: name!,
        user: name!,
        secrets: { password: { value: pw! } },
      });
    }
    await vault.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const own = await runHecate(["--home", home, "server", "rotate-password", "app"], { env });
    assert.equal(own.code, 0, own.stderr);
    const alter = db.requests.find((r) => r.kind === "batch" && r.sql.startsWith("ALTER LOGIN"));
    assert.match(
      alter!.sql,
      /^ALTER LOGIN \[app\] WITH PASSWORD = N'[^']+' OLD_PASSWORD = N'Old-Pass-1''x'$/,
    );
    const byAdmin = await runHecate(
      ["--home", home, "server", "rotate-password", "other", "--admin", "sa"],
      { env },
    );
    assert.equal(byAdmin.code, 0, byAdmin.stderr);
    const v = await openVault({ home, password: PW, lockout: "off" });
    for (const name of ["app", "other"]) {
      await (await v.connect(name)).close();
      // The old password is now refused by the server.
      await v.profiles.rollback(name, 1);
      await assert.rejects(async () => (await v.connect(name)).close(), name);
    }
    await v.close();
  });
});
