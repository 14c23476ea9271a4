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
  HECATE_PERMISSIONS,
  MAIN_TS,
  MASTER_PASSWORD,
  REPO_ROOT,
  runHecate,
  type RunHecateResult,
  stackLines,
  tempDir,
} from "./support/cli.ts";
import { MARIADB_STATEMENTS, PG_STATEMENTS, startVaultDouble } from "./support/vault_double.ts";
import { startPostgres } from "./support/postgres.ts";
import { startMariadb } from "./support/mariadb.ts";
import { makeCa } from "./support/tls_certs.ts";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";

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

/** A hecate process left running, for the signal tests. */
function spawnHecate(home: string, args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...HECATE_PERMISSIONS,
      MAIN_TS,
      "--home",
      home,
      "--password-stdin",
      ...args,
    ],
    cwd: REPO_ROOT,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: home, NO_COLOR: "1", ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  void w.write(new TextEncoder().encode(`${MASTER_PASSWORD}\n`)).then(() => w.close()).catch(
    () => {},
  );
  return child;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("hecate with Vault against real PostgreSQL: vault:, vault-db:, query, run, SIGTERM, expired token", async (t) => {
  await using pg = await startPostgres();
  await using v = await startVaultDouble();
  await using dir = await tempDir("hecate-vault-pg-");
  const home = `${dir.path}/home`;
  v.mountKv("secret", 2);
  v.mountKv("old", 1);
  v.putKv("secret", "billing", { password: "wrong-first" });
  v.putKv("secret", "billing", { password: pg.password });
  v.putKv("old", "billing", { password: pg.password });
  v.policy("hecate", {
    "secret/data/billing": ["read"],
    "old/billing": ["read"],
    "database/creds/ro": ["read"],
    "database/creds/long": ["read"],
    "sys/leases/revoke": ["update"],
  });
  // A long lease: a login still there after a signal can only be there because nobody revoked it.
  v.dbRole("database", "long", {
    engine: "postgres",
    admin: (sql) => pg.psql(sql),
    creation: PG_STATEMENTS.creation,
    revocation: PG_STATEMENTS.revocation,
    ttl: 300,
    maxTtl: 600,
  });
  v.dbRole("database", "ro", {
    engine: "postgres",
    admin: (sql) => pg.psql(sql),
    creation: PG_STATEMENTS.creation,
    revocation: PG_STATEMENTS.revocation,
    ttl: 5,
    maxTtl: 120,
  });
  const token = v.token({ policies: ["hecate"] });
  const env = { VAULT_TOKEN: token };
  const seen: RunHecateResult[] = [];
  const run = async (
    args: string[],
    more: string[] = [],
    extraEnv: Record<string, string> = env,
  ) => {
    const r = await runHecate(["--password-stdin", ...args], {
      home,
      env: { HOME: home, ...extraEnv },
      stdin: [MASTER_PASSWORD, ...more].map((l) => l + "\n").join(""),
    });
    seen.push(r);
    return r;
  };
  const add = (name: string, ref: string, user: string[] = ["--user", pg.user]) =>
    run([
      "server",
      "add",
      name,
      "--engine",
      "postgres",
      "--host",
      pg.host,
      "--port",
      String(pg.port),
      "--database",
      pg.database,
      ...user,
      "--tls",
      "disable",
      "--secret-ref",
      ref,
      "--vault-addr",
      v.addr,
      "--vault-ca-file",
      v.caFile,
    ]);
  const roleCount = async (u: string) =>
    (await pg.psql(`select count(*) from pg_roles where rolname = '${u}'`)).trim();
  ok(await run(["init", "--kdf-iterations", "600000"]));

  await t.step("vault: KV v2 latest, pinned version, KV v1", async () => {
    ok(await add("kv", "vault:secret/billing#password"));
    assert.equal(ok(await run(["query", "kv", "select current_user as u"])), `u\n${pg.user}\n`);
    ok(await add("kv1", "vault:secret/billing#password?version=1"));
    const r = await run(["query", "kv1", "select 1"]);
    assert.notEqual(r.code, 0, "version 1 holds a wrong password");
    ok(await add("old", "vault:old/billing#password"));
    ok(await run(["query", "old", "select 1"]));
    // server test: the source's health (Vault up, Hecate's token accepted), then the database.
    const tested = ok(await run(["server", "test", "kv"]));
    assert.match(
      tested,
      /source password vault:secret\/billing#password \(HashiCorp Vault\): ok, [\d.]+ ms, 1\.15\.0\+double active, token ttl \d+s/,
    );
    assert.ok(!tested.includes(token));
  });

  await t.step("a malformed reference is refused at add (exit 2)", async () => {
    fails(await add("bad", "vault:secret//x#password"), 2);
    fails(await add("bad", "vault-db:database/creds/ro/extra"), 2);
  });

  await t.step("vault-db: the dynamic login works and is gone after hecate query", async () => {
    ok(await add("dyn", "vault-db:database/creds/ro", []));
    const out = ok(await run(["query", "dyn", "select current_user as u"]));
    const user = v.usernames.at(-1)!;
    assert.equal(out, `u\n${user}\n`);
    assert.equal(await roleCount(user), "0", "revoked at exit");
    assert.deepEqual(v.liveLeases(), []);
  });

  await t.step(
    "vault-db: hecate run renews the lease while the child lives, revokes after",
    async () => {
      const renewals = v.counts.leaseRenewals;
      const r = await run([
        "run",
        "dyn",
        "--",
        "sh",
        "-c",
        // TTL 5 s, renewed at about 3.3 s and 6.7 s: 9 s leaves room for both on a loaded machine.
        "sleep 9; psql -X -At -c 'select current_user'",
      ]);
      const user = v.usernames.at(-1)!;
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout, `${user}\n`, "the login still works after its first TTL");
      assert.ok(
        v.counts.leaseRenewals - renewals >= 2,
        `renewals: ${v.counts.leaseRenewals - renewals}`,
      );
      // Each renewal and the revoke are in the trail, with a hash of the lease id only.
      const trail = ok(await run(["audit", "show", "--json", "--server", "dyn"])).trim().split("\n")
        .map((l) => JSON.parse(l));
      const renewed = trail.filter((e) => e.event === "lease.renew" && e.outcome === "ok");
      const revoked = trail.filter((e) => e.event === "lease.revoke" && e.outcome === "ok");
      assert.ok(renewed.length >= 2, JSON.stringify(trail.map((e) => e.event)));
      assert.ok(revoked.length >= 2, "query and run each revoked");
      for (const e of [...renewed, ...revoked]) {
        assert.match(e.detail.lease_sha256, /^[0-9a-f]{64}$/);
        assert.equal(e.detail.scheme, "vault-db");
        assert.ok(!JSON.stringify(e).includes("creds/ro/"), "no lease id");
      }
      assert.equal(await roleCount(user), "0");
    },
  );

  await t.step("vault-db: SIGTERM to hecate run and to hecate query still revokes", async () => {
    ok(await add("dyn-long", "vault-db:database/creds/long", []));
    for (
      const args of [
        ["run", "dyn-long", "--", "sleep", "60"],
        ["query", "dyn-long", "select pg_sleep(60)"],
      ]
    ) {
      const before = v.usernames.length;
      const child = spawnHecate(home, args, env);
      await until("the dynamic login", () => v.usernames.length > before);
      const user = v.usernames.at(-1)!;
      await until("the login in use", async () => (await roleCount(user)) === "1");
      await new Promise((r) => setTimeout(r, 500));
      child.kill("SIGTERM");
      const status = await child.output();
      assert.notEqual(status.code, 0);
      assert.equal(await roleCount(user), "0", `${args[0]}: revoked after SIGTERM`);
    }
  });

  await t.step("--from vault: a whole connection from one KV secret", async () => {
    v.putKv("secret", "conn", {
      engine: "postgres",
      host: pg.host,
      port: pg.port,
      dbname: pg.database,
      username: pg.user,
      password: pg.password,
    });
    v.policy("hecate", {
      "secret/data/billing": ["read"],
      "secret/data/conn": ["read"],
      "old/billing": ["read"],
      "database/creds/ro": ["read"],
      "database/creds/long": ["read"],
      "sys/leases/revoke": ["update"],
    });
    ok(
      await run([
        "server",
        "add",
        "whole",
        "--engine",
        "postgres",
        "--tls",
        "disable",
        "--from",
        "vault:secret/conn",
        "--vault-addr",
        v.addr,
        "--vault-ca-file",
        v.caFile,
      ]),
    );
    assert.equal(
      ok(await run(["query", "whole", "select current_user as u, current_database() as d"])),
      `u,d\n${pg.user},${pg.database}\n`,
    );
  });

  await t.step(
    "AppRole with the secret id sealed in the profile: vault-db login, query",
    async () => {
      const { roleId, secretId } = v.approle("hecate", { policies: ["hecate"] });
      const logins = v.counts.logins;
      ok(
        await run(
          [
            "server",
            "add",
            "ar",
            "--engine",
            "postgres",
            "--host",
            pg.host,
            "--port",
            String(pg.port),
            "--database",
            pg.database,
            "--tls",
            "disable",
            "--secret-ref",
            "vault-db:database/creds/ro",
            "--vault-addr",
            v.addr,
            "--vault-ca-file",
            v.caFile,
            "--vault-auth",
            "approle",
            "--vault-role-id",
            roleId,
            "--vault-secret-id-stdin",
          ],
          [secretId],
        ),
      );
      // No VAULT_TOKEN: the AppRole login is the only way in.
      const out = ok(await run(["query", "ar", "select current_user as u"], [], { HOME: home }));
      assert.equal(out, `u\n${v.usernames.at(-1)}\n`);
      assert.equal(v.counts.logins, logins + 1);
      assert.equal(await roleCount(v.usernames.at(-1)!), "0");
      for await (const f of walk(home)) {
        assert.ok(!new TextDecoder().decode(await Deno.readFile(f)).includes(secretId), f);
      }
      // The attack: a holder of an API key scoped to another profile tries to use, show or
      // list this profile's sealed secret id. The key's scope covers source credentials like
      // passwords.
      const key = ok(await run(["apikey", "create", "cron", "--server", "kv", "--expires", "1d"]))
        .trim();
      const asKey = (args: string[]) =>
        runHecate(args, { home, env: { ...env, HOME: home, HECATE_API_KEY: key } });
      assert.equal(ok(await asKey(["query", "kv", "select 1 as one"])), "one\n1\n");
      for (const args of [["query", "ar", "select 1"], ["server", "show", "ar", "--json"]]) {
        const r = await asKey(args);
        fails(r, 5);
        assert.ok(!r.stdout.includes(secretId) && !r.stderr.includes(secretId));
      }
      const listed = ok(await asKey(["server", "list", "--json"]));
      assert.ok(!listed.includes(secretId) && !listed.includes('"ar"'));
    },
  );

  await t.step(
    "an unknown or expired token: exit 18 with a hint, no token in the output",
    async () => {
      const expired = v.token({ policies: ["hecate"], ttl: 1 });
      await new Promise((r) => setTimeout(r, 1200));
      for (const bad of [expired, "hvs.never-issued-token"]) {
        const r = await run(["query", "kv", "select 1"], [], { VAULT_TOKEN: bad });
        fails(r, 18, /forbidden/);
        assert.match(r.stderr, /hecate: hint: .*vault login/);
        assert.ok(!r.stderr.includes(bad) && !r.stdout.includes(bad));
      }
    },
  );

  await t.step("TLS: a Vault certificate from another CA is refused (exit 18)", async () => {
    const other = await makeCa(dir.path, "other");
    ok(await run(["server", "edit", "kv", "--vault-ca-file", other.certFile]));
    fails(await run(["query", "kv", "select 1"]), 18, /TLS verification failed/);
    // Pinned: the double's CA among Deno's trusted roots (DENO_CERT) does not help.
    fails(
      await run(["query", "kv", "select 1"], [], { ...env, DENO_CERT: v.caFile }),
      18,
      /TLS verification failed/,
    );
    ok(await run(["server", "edit", "kv", "--vault-ca-file", v.caFile]));
    // Without a CA file: the trusted roots (here the double's CA added with DENO_CERT), else
    // refused.
    ok(
      await run([
        "server",
        "add",
        "roots",
        "--engine",
        "postgres",
        "--host",
        pg.host,
        "--port",
        String(pg.port),
        "--database",
        pg.database,
        "--user",
        pg.user,
        "--tls",
        "disable",
        "--secret-ref",
        "vault:secret/billing#password",
        "--vault-addr",
        v.addr,
      ]),
    );
    fails(await run(["query", "roots", "select 1"]), 18, /TLS verification failed/);
    assert.equal(
      ok(await run(["query", "roots", "select 1 as one"], [], { ...env, DENO_CERT: v.caFile })),
      "one\n1\n",
    );
  });

  // No token and no password in any output; no token in any file of the home (audit trail).
  for (const r of seen) {
    for (const s of [token, pg.password]) {
      assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), show(r));
    }
  }
  for await (const f of walk(home)) {
    const bytes = await Deno.readFile(f);
    assert.ok(!new TextDecoder().decode(bytes).includes(token), `token in ${f}`);
  }
});

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile) yield p;
  }
}

Deno.test("hecate with Vault against real MariaDB: vault-db: login gone after query; sealed token; Kubernetes auth", async () => {
  await using db = await startMariadb();
  await using v = await startVaultDouble();
  await using dir = await tempDir("hecate-vault-my-");
  const home = `${dir.path}/home`;
  v.policy("hecate", { "mysql/creds/app": ["read"], "sys/leases/revoke": ["update"] });
  v.dbRole("mysql", "app", {
    engine: "mysql",
    admin: (sql) => db.sql(sql),
    ...MARIADB_STATEMENTS,
    ttl: 60,
    maxTtl: 120,
  });
  // The token is sealed in the profile (--vault-token-stdin): none in the environment.
  const token = v.token({ policies: ["hecate"] });
  const env = { HOME: home };
  const run = (args: string[], more: string[] = []) =>
    runHecate(["--password-stdin", ...args], {
      home,
      env,
      stdin: [MASTER_PASSWORD, ...more].map((l) => l + "\n").join(""),
    });
  ok(await run(["init", "--kdf-iterations", "600000"]));
  ok(
    await run([
      "server",
      "add",
      "my",
      "--engine",
      "mysql",
      "--host",
      db.host,
      "--port",
      String(db.port),
      "--tls",
      "disable",
      "--secret-ref",
      "vault-db:mysql/creds/app",
      "--vault-addr",
      v.addr,
      "--vault-ca-file",
      v.caFile,
      "--vault-token-stdin",
    ], [token]),
  );
  const shown = ok(await run(["server", "show", "my", "--json"]));
  assert.ok(!shown.includes(token));
  assert.equal(JSON.parse(shown).secrets["source.vault.token"], "********");
  const out = ok(await run(["query", "my", "select current_user() as u"]));
  const user = v.usernames.at(-1)!;
  assert.equal(out, `u\n${user}@%\n`);
  assert.equal(
    (await db.sql(`select count(*) from mysql.user where user = '${user}'`)).trim(),
    "0",
  );

  // Kubernetes auth: the pod's service-account JWT, verified by the double with the cluster key.
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  v.kubernetesKey(await exportSPKI(publicKey));
  v.kubernetesRole("hecate", {
    saNames: ["billing"],
    saNamespaces: ["prod"],
    policies: ["hecate"],
  });
  const jwtFile = `${dir.path}/sa-token`;
  await Deno.writeTextFile(
    jwtFile,
    await new SignJWT({}).setProtectedHeader({ alg: "ES256" }).setIssuer(
      "kubernetes/serviceaccount",
    ).setSubject("system:serviceaccount:prod:billing").setIssuedAt().setExpirationTime("10m")
      .sign(privateKey),
  );
  ok(
    await run([
      "server",
      "add",
      "k8s",
      "--engine",
      "mysql",
      "--host",
      db.host,
      "--port",
      String(db.port),
      "--tls",
      "disable",
      "--secret-ref",
      "vault-db:mysql/creds/app",
      "--vault-addr",
      v.addr,
      "--vault-ca-file",
      v.caFile,
      "--vault-auth",
      "kubernetes",
      "--vault-role",
      "hecate",
      "--vault-jwt-file",
      jwtFile,
    ]),
  );
  const logins = v.counts.logins;
  assert.equal(
    ok(await run(["query", "k8s", "select 1 as one"])),
    "one\n1\n",
  );
  assert.equal(v.counts.logins, logins + 1);
  // A token of another namespace's service account is refused: exit 18, no JWT in the output.
  const other = await new SignJWT({}).setProtectedHeader({ alg: "ES256" }).setIssuer(
    "kubernetes/serviceaccount",
  ).setSubject("system:serviceaccount:dev:billing").sign(privateKey);
  await Deno.writeTextFile(jwtFile, other);
  const r = await run(["query", "k8s", "select 1"]);
  fails(r, 18, /login failed/);
  assert.ok(!r.stderr.includes(other));

  // A token whose policy lacks sys/leases/revoke (Vault's default policy does): the query works,
  // the revoke is refused, warned on stderr and audited as failed, and the login stays until its
  // lease ends (the double drops it at close).
  v.policy("no-revoke", { "mysql/creds/app": ["read"] });
  const weak = v.token({ policies: ["no-revoke"] });
  ok(
    await run([
      "server",
      "add",
      "weak",
      "--engine",
      "mysql",
      "--host",
      db.host,
      "--port",
      String(db.port),
      "--tls",
      "disable",
      "--secret-ref",
      "vault-db:mysql/creds/app",
      "--vault-addr",
      v.addr,
      "--vault-ca-file",
      v.caFile,
      "--vault-token-stdin",
    ], [weak]),
  );
  const w = await run(["query", "weak", "select 1 as one"]);
  assert.equal(ok(w), "one\n1\n");
  assert.match(
    w.stderr,
    /hecate: warning: dynamic credentials \(lease:[0-9a-f]{12}\) could not be revoked/,
  );
  const left = v.usernames.at(-1)!;
  assert.equal(
    (await db.sql(`select count(*) from mysql.user where user = '${left}'`)).trim(),
    "1",
  );
  const trail = ok(await run(["audit", "show", "--json", "--server", "weak"])).trim().split("\n")
    .map((l) => JSON.parse(l));
  const failed = trail.filter((e) => e.event === "lease.revoke");
  assert.equal(failed.length, 1);
  assert.equal(failed[0].outcome, "fail");
  assert.equal(failed[0].reason, "forbidden");
});

Deno.test("failover: Vault refused, too slow, 403, malformed -> the next source answers; cache within and past its TTL", async (t) => {
  await using pg = await startPostgres();
  await using v = await startVaultDouble();
  await using dir = await tempDir("hecate-vault-failover-");
  const home = `${dir.path}/home`;
  v.mountKv("secret", 2);
  v.putKv("secret", "billing", { password: pg.password });
  v.policy("hecate", { "secret/data/billing": ["read"] });
  const env = { HOME: home, VAULT_TOKEN: v.token({ policies: ["hecate"] }) };
  const pwFile = `${dir.path}/pw`;
  await Deno.writeTextFile(pwFile, pg.password, { mode: 0o600 });
  const run = (args: string[]) =>
    runHecate(["--password-stdin", ...args], { home, env, stdin: `${MASTER_PASSWORD}\n` });
  ok(await run(["init", "--kdf-iterations", "600000"]));
  const common = [
    "--engine",
    "postgres",
    "--host",
    pg.host,
    "--port",
    String(pg.port),
    "--database",
    pg.database,
    "--user",
    pg.user,
    "--tls",
    "disable",
    "--vault-addr",
    v.addr,
    "--vault-ca-file",
    v.caFile,
    "--source-timeout",
    "1s",
  ];
  ok(
    await run([
      "server",
      "add",
      "fo",
      ...common,
      "--secret-ref",
      "vault:secret/billing#password",
      "--secret-ref",
      `file:${pwFile}`,
    ]),
  );
  const failed = async (why: RegExp) => {
    const r = await run(["query", "fo", "select 1 as one"]);
    assert.equal(ok(r), "one\n1\n");
    const trail = ok(await run(["audit", "show", "--json"]));
    const last = trail.trim().split("\n").map((l) => JSON.parse(l)).filter((e) =>
      e.event === "secret.resolve"
    ).slice(-2);
    assert.equal(last[0].outcome, "fail", JSON.stringify(last));
    assert.match(String(last[0].reason), why);
    assert.equal(last[1].outcome, "ok");
    assert.equal(last[1].detail.scheme, "file");
  };
  for (
    const [fault, why] of [
      [{ kind: "refuse" }, /unreachable/],
      [{ kind: "slow", ms: 3000 }, /timed_out/],
      [{ kind: "forbidden" }, /forbidden/],
      [{ kind: "malformed" }, /malformed/],
    ] as const
  ) {
    await t.step(`A ${fault.kind} -> B answers`, async () => {
      await v.fault(fault);
      try {
        await failed(why);
      } finally {
        await v.fault(undefined);
      }
    });
  }

  await t.step("cache: used within its TTL when Vault fails, refused past it", async () => {
    ok(
      await run([
        "server",
        "add",
        "cached",
        ...common,
        "--secret-ref",
        "vault:secret/billing#password",
        "--cache-ttl",
        "3s",
      ]),
    );
    ok(await run(["query", "cached", "select 1"]));
    await v.fault({ kind: "refuse" });
    const r = await run(["query", "cached", "select 1 as one"]);
    assert.equal(ok(r), "one\n1\n");
    assert.match(r.stderr, /hecate: warning: .*cached/);
    await new Promise((res) => setTimeout(res, 3200));
    fails(await run(["query", "cached", "select 1"]), 18, /unreachable/);
    await v.fault(undefined);
  });
});
