/**
 * `hecate rotate-due` picks exactly the profiles whose `--rotate-every` schedule is due, rotates
 * them on the server (the TDS double), and exits with the number that failed; `server show`
 * gives the last rotation and the next due date.
 */

import assert from "node:assert/strict";
import { openVault } from "../src/hecate.ts";
import { passwordFile, PW, runHecate, vaultWith, withHome } from "./support/access.ts";
import { startTdsDouble } from "./support/tds_double.ts";

Deno.test("rotate-due rotates exactly the due profiles; exit code = failures", async () => {
  await using db = await startTdsDouble({
    logins: { due: "Due-Pass-1", later: "Later-Pass-1", never: "Never-Pass-1", broken: "Real-1" },
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
    const add = (name: string, pw: string, every?: number) =>
      vault.profiles.add({
        ...base,
        name,
        user: name,
        secrets: { password: { value: pw } },
        ...(every ? { rotateEveryMs: every } : {}),
      });
    await add("due", "Due-Pass-1", 1);
    await add("later", "Later-Pass-1", 30 * 86_400_000);
    await add("never", "Never-Pass-1");
    // Due, but its stored password is wrong: the rotation fails at the server step.
    await add("broken", "Wrong-1", 1);
    await vault.close();
    await new Promise((r) => setTimeout(r, 5));
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const r = await runHecate(["--home", home, "rotate-due"], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^FAILED {2}broken: .*\nrotated due \(version 2\)\n$/);
    const altered = db.requests.filter((q) => q.kind === "batch" && q.sql.startsWith("ALTER LOGIN"))
      .map((q) => /^ALTER LOGIN \[(\w+)\]/.exec(q.sql)![1]);
    assert.deepEqual(altered, ["due"]);
    const v = await openVault({ home, password: PW, lockout: "off" });
    await (await v.connect("due")).close();
    const shown = await v.profiles.show("later");
    assert.equal(shown.rotateEveryMs, 30 * 86_400_000);
    assert.ok(Date.parse(String(shown.nextRotation)) > Date.now() + 29 * 86_400_000);
    assert.equal((await v.profiles.show("never")).nextRotation, undefined);
    const due = await v.profiles.show("due");
    assert.ok(Date.parse(String(due.lastRotation)) <= Date.now());
    await v.close();
  });
});
