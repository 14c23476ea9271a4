/**
 * `server rotate-password` against a real PostgreSQL server with statement logging on: the new
 * password works and the old one is refused by the server, the server log never holds the new
 * plaintext (only a SCRAM verifier is sent), the old password stays a previous version that
 * rollback can restore in the vault, and refused profile kinds get invalid_profile.
 */

import assert from "node:assert/strict";
import { exitCodeFor } from "../src/errors.ts";
import { openVault } from "../src/hecate.ts";
import { scramVerifier } from "../src/lifecycle/scram_verifier.ts";
import { generatePassword } from "../src/lifecycle/generate.ts";
import {
  assertCode,
  auditLines,
  passwordFile,
  PW,
  runHecate,
  vaultWith,
  withHome,
} from "./support/access.ts";
import { startPostgres } from "./support/postgres.ts";

Deno.test("rotate-password on real PostgreSQL: server changed, old refused, no plaintext in the server log", async () => {
  await using pg = await startPostgres();
  await pg.psql("ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf();");
  await withHome(async (home) => {
    const vault = await vaultWith(home, ["lite"]);
    await vault.profiles.add({
      name: "pg",
      engine: "postgres",
      host: pg.host,
      port: pg.port,
      user: pg.user,
      database: pg.database,
      tls: { mode: "disable" },
      secrets: { password: { value: pg.password } },
    });
    await vault.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const r = await runHecate(["--home", home, "server", "rotate-password", "pg"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /password rotated on the server \(version 2\)/);

    const again = await openVault({ home, password: PW, lockout: "off" });
    const fresh = (await again.environment("pg")).PGPASSWORD!;
    assert.notEqual(fresh, pg.password);
    assert.equal(fresh.length, 32);
    // The new password logs in; the old one is refused by the server.
    const conn = await again.connect("pg");
    await conn.close();
    await again.profiles.rollback("pg", 1);
    await assert.rejects(async () => (await again.connect("pg")).close());
    await again.profiles.rollback("pg", 2);
    await (await again.connect("pg")).close();

    // The server log saw the ALTER ROLE, with a verifier and never the plaintext.
    const log = await Deno.readTextFile(`${pg.dataDir}/../server.log`);
    assert.match(log, /ALTER ROLE CURRENT_USER PASSWORD 'SCRAM-SHA-256\$4096:/);
    assert.ok(!log.includes(fresh), "the new plaintext reached the server log");

    const events = (await auditLines(home)).map((l) => `${l.event}:${l.outcome}`);
    for (const e of ["rotation.start", "rotation.server", "rotation.verify", "rotation.commit"]) {
      assert.ok(events.includes(`${e}:ok`), e);
    }
    assert.ok(!JSON.stringify(await auditLines(home)).includes(fresh));
    assert.ok(!(r.stdout + r.stderr).includes(fresh));

    // Rollback on the server: the original password works there again, the rotated one not.
    const rb = await runHecate(
      ["--home", home, "server", "rollback", "pg", "--version", "1", "--on-server"],
      { env },
    );
    assert.equal(rb.code, 0, rb.stderr);
    const back = await openVault({ home, password: PW, lockout: "off" });
    assert.equal((await back.environment("pg")).PGPASSWORD, pg.password);
    await (await back.connect("pg")).close();
    const hist = await back.profiles.history("pg");
    assert.match(hist[0]!.reason, /^rollback to 1 \(on the server\)$/);
    const rotated = hist.find((h) => h.reason === "rotate-password")!.version;
    await back.profiles.rollback("pg", rotated);
    await assert.rejects(async () => (await back.connect("pg")).close());
    await back.close();
    // Without --on-server, the CLI says that only the vault changed.
    const vaultOnly = await runHecate(
      ["--home", home, "server", "rollback", "pg", "--version", String(rotated + 1)],
      { env },
    );
    assert.equal(vaultOnly.code, 0, vaultOnly.stderr);
    assert.match(vaultOnly.stderr, /only the vault changed/);

    // SQLite is refused with invalid_profile, the vault unchanged.
    const lite = await runHecate(["--home", home, "server", "rotate-password", "lite"], { env });
    assert.equal(lite.code, exitCodeFor("invalid_profile"), lite.stderr);
    assert.match(lite.stderr, /SQLite has no server login/);
    await again.close();
  });
});

Deno.test("a password from a secret source is refused; --length out of range is usage", async () => {
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    await vault.profiles.add({
      name: "ref",
      engine: "postgres",
      host: "127.0.0.1",
      user: "app",
      secrets: { password: { ref: "env:SOME_PW" } },
    });
    await assertCode(() => vault.profiles.rotatePassword("ref"), "invalid_profile");
    await assertCode(() => vault.profiles.rotatePassword("ref", { length: 8 }), "usage");
    await vault.close();
  });
});

Deno.test("generated passwords: every class present, only safe characters, lengths respected", () => {
  for (let i = 0; i < 200; i++) {
    const p = generatePassword(16 + (i % 50));
    assert.equal(p.length, 16 + (i % 50));
    assert.match(p, /[A-Z]/);
    assert.match(p, /[a-z]/);
    assert.match(p, /[0-9]/);
    assert.doesNotMatch(p, /['"\\$ `]/);
  }
});

Deno.test("the SCRAM verifier matches RFC 7677's test vector keys", async () => {
  // RFC 7677 section 3: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
  const salt = Uint8Array.from(atob("W22ZaJ0SNY7soEsUEjb6gQ=="), (c) => c.charCodeAt(0));
  const v = await scramVerifier("pencil", 4096, salt);
  const [, , keys] = v.split("$");
  const [, serverKey] = keys!.split(":");
  // ServerSignature in the RFC = HMAC(ServerKey, AuthMessage); check ServerKey via that.
  const key = await crypto.subtle.importKey(
    "raw",
    Uint8Array.from(atob(serverKey!), (c) => c.charCodeAt(0)),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const authMessage =
    "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const sig = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(authMessage)),
  );
  assert.equal(btoa(String.fromCharCode(...sig)), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  assert.match(
    v,
    /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/,
  );
});

Deno.test("rotate-password --admin on real PostgreSQL: an administrator profile changes another login", async () => {
  await using pg = await startPostgres();
  await pg.psql(
    "CREATE ROLE rot_admin LOGIN SUPERUSER PASSWORD 'admin-pw-1234'; " +
      "CREATE ROLE \"rot target\" LOGIN PASSWORD 'target-pw-1234';",
  );
  await withHome(async (home) => {
    const vault = await vaultWith(home, []);
    const base = {
      engine: "postgres" as const,
      host: pg.host,
      port: pg.port,
      database: pg.database,
      tls: { mode: "disable" as const },
    };
    await vault.profiles.add({
      ...base,
      name: "admin",
      user: "rot_admin",
      secrets: { password: { value: "admin-pw-1234" } },
    });
    await vault.profiles.add({
      ...base,
      name: "target",
      user: "rot target",
      secrets: { password: { value: "target-pw-1234" } },
    });
    await vault.close();
    const env = { HECATE_PASSWORD_FILE: await passwordFile(home) };
    const r = await runHecate(
      ["--home", home, "server", "rotate-password", "target", "--admin", "admin"],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    const v = await openVault({ home, password: PW, lockout: "off" });
    await (await v.connect("target")).close();
    await v.profiles.rollback("target", 1);
    await assert.rejects(async () => (await v.connect("target")).close());
    // The administrator's own password did not change.
    await (await v.connect("admin")).close();
    await v.close();
    const self = await runHecate(
      ["--home", home, "server", "rotate-password", "target", "--admin", "target"],
      { env },
    );
    assert.equal(self.code, exitCodeFor("invalid_profile"));
  });
});
