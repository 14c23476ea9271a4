/**
 * The Vault source module against the Vault double (tests/support/vault_double.ts): KV v1/v2,
 * pinned versions, token/AppRole/Kubernetes auth, namespaces, TLS pinning, and dynamic logins on
 * the REAL PostgreSQL and MariaDB servers, renewed by the lease keeper and gone after revoke.
 */

import assert from "node:assert/strict";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { HecateError } from "../src/errors.ts";
import type { SourceContext } from "../providers/sources/source.ts";
import { forgetVaultTokens, vaultSource } from "../providers/sources/vault/mod.ts";
import { LeaseKeeper } from "../providers/sources/lease_keeper.ts";
import { MARIADB_STATEMENTS, PG_STATEMENTS, startVaultDouble } from "./support/vault_double.ts";
import { makeCa } from "./support/tls_certs.ts";
import { startPostgres } from "./support/postgres.ts";
import { startMariadb } from "./support/mariadb.ts";
import { driverFor } from "../src/db/registry.ts";
import type { ConnectSettings } from "../src/db/driver.ts";
import { initVault, openVault } from "../mod.ts";
import { tlsWarnings } from "../src/transport_warnings.ts";
import { MASTER_PASSWORD } from "./support/cli.ts";

function ctx(
  env: Record<string, string>,
  params: Record<string, string> = {},
  credentials: Record<string, string> = {},
): SourceContext & { params: Record<string, string> } {
  return {
    signal: AbortSignal.timeout(10_000),
    credentials,
    env: (n) => env[n],
    params,
  };
}

async function refused(p: Promise<unknown>, pattern: RegExp, secrets: string[] = []) {
  try {
    await p;
  } catch (e) {
    assert(e instanceof HecateError, `not a HecateError: ${e}`);
    assert.equal(e.code, "secret_unresolved");
    assert.equal(e.exitCode, 18);
    assert(pattern.test(e.message), e.message);
    assert(e.hint, "a hint line");
    for (const s of secrets) {
      assert(!e.message.includes(s) && !(e.hint ?? "").includes(s), "secret in the message");
    }
    return e;
  }
  throw new Error("expected a refusal");
}

const parse = (ref: string) => {
  const at = ref.indexOf(":");
  return vaultSource.parse(ref.slice(0, at), ref.slice(at + 1));
};

Deno.test("vault: references are checked at parse time (usage, exit 2)", () => {
  const good = parse("vault:secret/app/db#password?version=3");
  assert.equal(good.parts.mount, "secret");
  assert.equal(good.parts.path, "app/db");
  assert.equal(good.parts.version, "3");
  assert.equal(good.field, "password");
  assert.equal(parse("vault:secret/app?kv=1#pw").parts.kv, "1");
  assert.equal(parse("vault-db:database/creds/ro").parts.role, "ro");
  assert.equal(parse("vault-db:database/ro").parts.role, "ro");
  assert.equal(parse("vault:team/kv/app#x?mount=team/kv").parts.path, "app");
  for (
    const bad of [
      "vault:secret",
      "vault:/secret/x#f",
      "vault:secret//x#f",
      "vault:secret/../x#f",
      "vault:secret/x#",
      "vault:secret/x#f?version=0",
      "vault:secret/x#f?version=abc",
      "vault:secret/x#f?kv=3",
      "vault:secret/x#f?kv=1&version=2",
      "vault:secret/x#f?token=abc",
      "vault:secret/x y#f",
      "vault-db:database",
      "vault-db:database/creds/ro/x",
      "vault-db:database/ro#password",
    ]
  ) {
    try {
      parse(bad);
      throw new Error(`accepted ${bad}`);
    } catch (e) {
      assert(e instanceof HecateError && e.code === "usage" && e.exitCode === 2, `${bad}: ${e}`);
    }
  }
});

Deno.test("vault: KV v2 (latest and pinned), KV v1 detected and stated, errors", async () => {
  await using v = await startVaultDouble();
  forgetVaultTokens();
  v.policy("app", { "secret/data/app/*": ["read"], "old/*": ["read"] });
  v.mountKv("secret", 2);
  v.mountKv("old", 1);
  v.putKv("secret", "app/db", { password: "first-pw", user: "app" });
  v.putKv("secret", "app/db", { password: "second-pw", user: "app" });
  v.putKv("old", "app/db", { password: "v1-pw" });
  const token = v.token({ policies: ["app"] });
  const env = { VAULT_ADDR: v.addr, VAULT_CACERT: v.caFile, VAULT_TOKEN: token };

  const latest = await vaultSource.resolve(parse("vault:secret/app/db#password"), ctx(env));
  assert.deepEqual(latest.fields, { password: "second-pw" });
  assert.equal(latest.version, "2");
  const pinned = await vaultSource.resolve(
    parse("vault:secret/app/db#password?version=1"),
    ctx(env),
  );
  assert.deepEqual(pinned.fields, { password: "first-pw" });
  assert.equal(pinned.version, "1");
  const whole = await vaultSource.resolve(parse("vault:secret/app/db"), ctx(env));
  assert.deepEqual(whole.fields, { password: "second-pw", user: "app" });
  // One round trip for a v2 read.
  const before = v.requests.length;
  await vaultSource.resolve(parse("vault:secret/app/db#user"), ctx(env));
  assert.equal(v.requests.length - before, 1);

  const v1 = await vaultSource.resolve(parse("vault:old/app/db#password"), ctx(env));
  assert.deepEqual(v1.fields, { password: "v1-pw" });
  assert(v.requests.some((r) => r.path === "sys/internal/ui/mounts/old/app/db"), "mount detected");
  const stated = await vaultSource.resolve(parse("vault:old/app/db?kv=1#password"), ctx(env));
  assert.equal(stated.fields.password, "v1-pw");

  await refused(
    vaultSource.resolve(parse("vault:secret/app/db#nope"), ctx(env)),
    /field missing/,
    ["second-pw"],
  );
  await refused(vaultSource.resolve(parse("vault:secret/app/none#x"), ctx(env)), /not found/);
  await refused(
    vaultSource.resolve(parse("vault:secret/app/db#password?version=9"), ctx(env)),
    /not found/,
  );
  // Outside the policy.
  v.putKv("secret", "other/db", { password: "x" });
  await refused(
    vaultSource.resolve(parse("vault:secret/other/db#password"), ctx(env)),
    /forbidden/,
  );
});

Deno.test("vault: unknown, expired and missing tokens are refused without showing the token", async () => {
  await using v = await startVaultDouble();
  forgetVaultTokens();
  v.policy("app", { "secret/data/*": ["read"] });
  v.mountKv("secret", 2);
  v.putKv("secret", "db", { password: "pw" });
  const base = { VAULT_ADDR: v.addr, VAULT_CACERT: v.caFile };
  const unknown = "hvs.this-token-was-never-issued";
  await refused(
    vaultSource.resolve(parse("vault:secret/db#password"), ctx({ ...base, VAULT_TOKEN: unknown })),
    /forbidden \(HTTP 403\)/,
    [unknown],
  );
  const short = v.token({ policies: ["app"], ttl: 1 });
  await new Promise((r) => setTimeout(r, 1200));
  await refused(
    vaultSource.resolve(parse("vault:secret/db#password"), ctx({ ...base, VAULT_TOKEN: short })),
    /forbidden/,
    [short],
  );
  // No VAULT_TOKEN, a HOME without ~/.vault-token.
  const home = await Deno.makeTempDir();
  try {
    await refused(
      vaultSource.resolve(parse("vault:secret/db#password"), ctx({ ...base, HOME: home })),
      /no token/,
    );
    // The token helper file of the vault CLI.
    await Deno.writeTextFile(`${home}/.vault-token`, v.token({ policies: ["app"] }));
    const r = await vaultSource.resolve(
      parse("vault:secret/db#password"),
      ctx({ ...base, HOME: home }),
    );
    assert.equal(r.fields.password, "pw");
    // The token never travels in a URL.
    assert(v.requests.every((q) => !q.path.includes("hvs.")));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("vault: TLS is verified; a wrong CA or no CA fails; plain http is refused", async () => {
  await using v = await startVaultDouble();
  forgetVaultTokens();
  v.mountKv("secret", 2);
  v.putKv("secret", "db", { password: "pw" });
  const token = v.token({ policies: ["root-ish"] });
  const dir = await Deno.makeTempDir();
  try {
    const other = await makeCa(dir, "other");
    await refused(
      vaultSource.resolve(
        parse("vault:secret/db#password"),
        ctx({ VAULT_ADDR: v.addr, VAULT_CACERT: other.certFile, VAULT_TOKEN: token }),
      ),
      /TLS verification failed/,
    );
    await refused(
      vaultSource.resolve(
        parse("vault:secret/db#password"),
        ctx({ VAULT_ADDR: v.addr, VAULT_TOKEN: token }),
      ),
      /TLS verification failed/,
    );
    await refused(
      vaultSource.resolve(
        parse("vault:secret/db#password"),
        ctx({ VAULT_ADDR: v.addr.replace("https", "http"), VAULT_TOKEN: token }),
      ),
      /plain HTTP/,
    );
    // The profile's CA wins over VAULT_CACERT.
    v.policy("p", { "secret/data/*": ["read"] });
    const ok = await vaultSource.resolve(
      parse("vault:secret/db#password"),
      ctx(
        {
          VAULT_ADDR: v.addr,
          VAULT_CACERT: other.certFile,
          VAULT_TOKEN: v.token({ policies: ["p"] }),
        },
        { "vault.caFile": v.caFile },
      ),
    );
    assert.equal(ok.fields.password, "pw");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vault: namespaces travel as X-Vault-Namespace; a token works only in its own", async () => {
  await using v = await startVaultDouble({ namespace: "team-a" });
  forgetVaultTokens();
  v.policy("p", { "secret/data/*": ["read"] });
  v.mountKv("secret", 2, "team-a");
  v.putKv("secret", "db", { password: "ns-pw" }, "team-a");
  const token = v.token({ policies: ["p"], namespace: "team-a" });
  const base = { VAULT_ADDR: v.addr, VAULT_CACERT: v.caFile, VAULT_TOKEN: token };
  const r = await vaultSource.resolve(
    parse("vault:secret/db#password"),
    ctx({ ...base, VAULT_NAMESPACE: "team-a" }),
  );
  assert.equal(r.fields.password, "ns-pw");
  assert.equal(v.requests.at(-1)?.namespace, "team-a");
  await refused(vaultSource.resolve(parse("vault:secret/db#password"), ctx(base)), /forbidden/);
});

Deno.test("vault: AppRole login (secret id sealed or from a 0600 file), token reused", async () => {
  await using v = await startVaultDouble();
  forgetVaultTokens();
  v.policy("p", { "secret/data/*": ["read"] });
  v.mountKv("secret", 2);
  v.putKv("secret", "db", { password: "ar-pw" });
  const { roleId, secretId } = v.approle("hecate", { policies: ["p"] });
  const base = { VAULT_ADDR: v.addr, VAULT_CACERT: v.caFile };
  const params = { "vault.auth": "approle", "vault.roleId": roleId };
  const r = await vaultSource.resolve(
    parse("vault:secret/db#password"),
    ctx(base, params, { secret_id: secretId }),
  );
  assert.equal(r.fields.password, "ar-pw");
  await vaultSource.resolve(
    parse("vault:secret/db#password"),
    ctx(base, params, { secret_id: secretId }),
  );
  assert.equal(v.counts.logins, 1, "the login token is reused, not a login per resolution");

  forgetVaultTokens();
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/secret-id`;
    await Deno.writeTextFile(file, `${secretId}\n`, { mode: 0o644 });
    await Deno.chmod(file, 0o644);
    const e = await refused(
      vaultSource.resolve(
        parse("vault:secret/db#password"),
        ctx(base, { ...params, "vault.secretIdFile": file }),
      ),
      /readable by others/,
      [secretId],
    );
    assert(/chmod 600/.test(e.hint ?? ""));
    await Deno.chmod(file, 0o600);
    const ok = await vaultSource.resolve(
      parse("vault:secret/db#password"),
      ctx(base, { ...params, "vault.secretIdFile": file }),
    );
    assert.equal(ok.fields.password, "ar-pw");
    forgetVaultTokens();
    await refused(
      vaultSource.resolve(
        parse("vault:secret/db#password"),
        ctx(base, params, { secret_id: "wrong" }),
      ),
      /login failed/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vault: Kubernetes login with the service-account JWT, bound to name and namespace", async () => {
  await using v = await startVaultDouble();
  forgetVaultTokens();
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  v.kubernetesKey(await exportSPKI(publicKey));
  v.policy("p", { "secret/data/*": ["read"] });
  v.mountKv("secret", 2);
  v.putKv("secret", "db", { password: "k8s-pw" });
  v.kubernetesRole("app", { saNames: ["billing"], saNamespaces: ["prod"], policies: ["p"] });
  const jwtFor = (sub: string) =>
    new SignJWT({}).setProtectedHeader({ alg: "ES256" }).setIssuer("kubernetes/serviceaccount")
      .setSubject(sub).setIssuedAt().setExpirationTime("10m").sign(privateKey);
  const dir = await Deno.makeTempDir();
  try {
    const jwtFile = `${dir}/token`;
    const base = { VAULT_ADDR: v.addr, VAULT_CACERT: v.caFile };
    const params = { "vault.auth": "kubernetes", "vault.role": "app", "vault.jwtFile": jwtFile };
    await Deno.writeTextFile(jwtFile, await jwtFor("system:serviceaccount:prod:billing"));
    const r = await vaultSource.resolve(parse("vault:secret/db#password"), ctx(base, params));
    assert.equal(r.fields.password, "k8s-pw");
    forgetVaultTokens();
    // Another service account of the same cluster is not bound to the role.
    await Deno.writeTextFile(jwtFile, await jwtFor("system:serviceaccount:dev:billing"));
    await refused(
      vaultSource.resolve(parse("vault:secret/db#password"), ctx(base, params)),
      /login failed/,
    );
    // A JWT signed by another key.
    const other = await generateKeyPair("ES256");
    await Deno.writeTextFile(
      jwtFile,
      await new SignJWT({}).setProtectedHeader({ alg: "ES256" }).setIssuer(
        "kubernetes/serviceaccount",
      )
        .setSubject("system:serviceaccount:prod:billing").sign(other.privateKey),
    );
    await refused(
      vaultSource.resolve(parse("vault:secret/db#password"), ctx(base, params)),
      /login failed/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vault: a login token past two thirds of its TTL is renewed, not a new login", async () => {
  await using v = await startVaultDouble();
  forgetVaultTokens();
  v.policy("p", { "secret/data/*": ["read"] });
  v.mountKv("secret", 2);
  v.putKv("secret", "db", { password: "pw" });
  const { roleId, secretId } = v.approle("r", { policies: ["p"], tokenTtl: 3, tokenMaxTtl: 60 });
  const c = () =>
    ctx({ VAULT_ADDR: v.addr, VAULT_CACERT: v.caFile }, {
      "vault.auth": "approle",
      "vault.roleId": roleId,
    }, { secret_id: secretId });
  await vaultSource.resolve(parse("vault:secret/db#password"), c());
  await new Promise((r) => setTimeout(r, 2200));
  await vaultSource.resolve(parse("vault:secret/db#password"), c());
  assert.equal(v.counts.logins, 1);
  assert.equal(v.counts.tokenRenewals, 1);
});

async function canLogin(settings: ConnectSettings): Promise<boolean> {
  const driver = await driverFor(settings.engine);
  try {
    const conn = await driver.connect(settings);
    try {
      for await (const _ of conn.query("select 1", [])) { /* drain */ }
    } finally {
      await conn.close();
    }
    return true;
  } catch (e) {
    if (e instanceof HecateError && (e.code === "auth_failed" || e.code === "connection_failed")) {
      return false;
    }
    throw e;
  }
}

Deno.test("vault-db: real PostgreSQL login, renewed by the keeper, gone after revoke", async () => {
  await using pg = await startPostgres();
  await using v = await startVaultDouble();
  forgetVaultTokens();
  v.policy("db", {
    "database/creds/ro": ["read"],
    "sys/leases/revoke": ["update"],
  });
  v.dbRole("database", "ro", {
    engine: "postgres",
    admin: (sql) => pg.psql(sql),
    ...PG_STATEMENTS,
    ttl: 5,
    maxTtl: 60,
  });
  const c = () =>
    ctx({ VAULT_ADDR: v.addr, VAULT_CACERT: v.caFile, VAULT_TOKEN: v.token({ policies: ["db"] }) });
  const r = await vaultSource.resolve(parse("vault-db:database/creds/ro"), c());
  assert(r.lease && r.lease.renewable);
  const user = r.fields.username!;
  assert.equal(
    (await pg.psql(`select count(*) from pg_roles where rolname = '${user}'`)).trim(),
    "1",
  );
  const settings: ConnectSettings = {
    engine: "postgres",
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user,
    password: r.fields.password!,
    tls: { mode: "disable" },
    connectTimeoutMs: 5000,
  };
  assert(await canLogin(settings), "the dynamic login works");

  const events: string[] = [];
  const keeper = new LeaseKeeper({
    renew: (l) => vaultSource.renew!(l, c()),
    revoke: (l) => vaultSource.revoke!(l, c()),
    onEvent: (e) => events.push(e.kind),
  });
  keeper.keep(r.lease);
  // Past the first TTL: still alive because the keeper renewed it.
  await new Promise((res) => setTimeout(res, 9000));
  assert(v.counts.leaseRenewals >= 2, `renewals: ${v.counts.leaseRenewals}`);
  assert(await canLogin(settings), "still valid after its first TTL");
  assert.equal(v.counts.creds, 1, "renewed, not new credentials");
  await keeper.close();
  assert(events.includes("renewed") && events.includes("revoked"), events.join());
  assert.equal(
    (await pg.psql(`select count(*) from pg_roles where rolname = '${user}'`)).trim(),
    "0",
  );
  assert(!(await canLogin(settings)), "the login is gone");
});

Deno.test("vault-db: real MariaDB login dropped at expiry when nobody renews, and at revoke", async () => {
  await using db = await startMariadb();
  await using v = await startVaultDouble();
  forgetVaultTokens();
  v.policy("db", { "mysql/creds/*": ["read"], "sys/leases/revoke": ["update"] });
  v.dbRole("mysql", "app", {
    engine: "mysql",
    admin: (sql) => db.sql(sql),
    ...MARIADB_STATEMENTS,
    ttl: 2,
    maxTtl: 4,
  });
  const c = () =>
    ctx({ VAULT_ADDR: v.addr, VAULT_CACERT: v.caFile, VAULT_TOKEN: v.token({ policies: ["db"] }) });
  const count = async (u: string) =>
    (await db.sql(`select count(*) from mysql.user where user = '${u}'`)).trim();
  const settingsFor = (fields: Record<string, string>): ConnectSettings => ({
    engine: "mysql",
    host: db.host,
    port: db.port,
    user: fields.username!,
    password: fields.password!,
    tls: { mode: "disable" },
    connectTimeoutMs: 5000,
  });

  const expiring = await vaultSource.resolve(parse("vault-db:mysql/app"), c());
  assert(await canLogin(settingsFor(expiring.fields)));
  await new Promise((res) => setTimeout(res, 2600));
  assert.equal(await count(expiring.fields.username!), "0", "dropped at expiry");
  await refused(vaultSource.renew!(expiring.lease!, c()), /lease expired/);

  const revoked = await vaultSource.resolve(parse("vault-db:mysql/app"), c());
  assert.equal(await count(revoked.fields.username!), "1");
  await vaultSource.revoke!(revoked.lease!, c());
  assert.equal(await count(revoked.fields.username!), "0", "dropped at revoke");
  assert(!(await canLogin(settingsFor(revoked.fields))));
  // Revoking needs the policy: a token without it is refused (403).
  const other = await vaultSource.resolve(parse("vault-db:mysql/app"), c());
  v.policy("weak", { "mysql/creds/*": ["read"] });
  await refused(
    vaultSource.revoke!(
      other.lease!,
      ctx({
        VAULT_ADDR: v.addr,
        VAULT_CACERT: v.caFile,
        VAULT_TOKEN: v.token({ policies: ["weak"] }),
      }),
    ),
    /forbidden/,
  );
});

Deno.test("vault: fault modes of the double are reported as the right status", async () => {
  await using v = await startVaultDouble();
  forgetVaultTokens();
  v.policy("p", { "secret/data/*": ["read"] });
  v.mountKv("secret", 2);
  v.putKv("secret", "db", { password: "pw" });
  const env = {
    VAULT_ADDR: v.addr,
    VAULT_CACERT: v.caFile,
    VAULT_TOKEN: v.token({ policies: ["p"] }),
  };
  const ref = parse("vault:secret/db#password");
  await v.fault({ kind: "forbidden" });
  await refused(vaultSource.resolve(ref, ctx(env)), /forbidden/);
  await v.fault({ kind: "malformed" });
  await refused(vaultSource.resolve(ref, ctx(env)), /malformed answer/);
  await v.fault({ kind: "slow", ms: 3000 });
  await refused(
    vaultSource.resolve(ref, { ...ctx(env), signal: AbortSignal.timeout(200) }),
    /timed out/,
  );
  await v.fault({ kind: "refuse" });
  await refused(vaultSource.resolve(ref, ctx(env)), /unreachable/);
  await v.fault(undefined);
  assert.equal((await vaultSource.resolve(ref, ctx(env))).fields.password, "pw");
  const h = await vaultSource.health!(ref, ctx(env));
  assert(h.ok && /active, token ttl \d+s$/.test(h.detail), h.detail);
  const bad = await vaultSource.health!(ref, ctx({ ...env, VAULT_TOKEN: "hvs.unknown" }));
  assert(!bad.ok && /token refused \(HTTP 403\)/.test(bad.detail), bad.detail);
  await v.fault({ kind: "refuse" });
  const down = await vaultSource.health!(ref, ctx(env));
  assert(!down.ok && /unreachable/.test(down.detail), down.detail);
  await v.fault(undefined);
});

Deno.test("vault-db through the library pool: one login per connection, renewed, revoked at close", async () => {
  await using pg = await startPostgres();
  await using v = await startVaultDouble();
  forgetVaultTokens();
  const home = `${await Deno.makeTempDir()}/home`;
  v.policy("db", { "database/creds/ro": ["read"], "sys/leases/revoke": ["update"] });
  v.dbRole("database", "ro", {
    engine: "postgres",
    admin: (sql) => pg.psql(sql),
    ...PG_STATEMENTS,
    ttl: 6,
    maxTtl: 120,
  });
  await initVault({ home, password: MASTER_PASSWORD, kdfIterations: 600_000 });
  const vault = await openVault({ home, password: MASTER_PASSWORD });
  try {
    // The Vault token sealed in the profile as a source credential.
    await vault.profiles.add({
      name: "dyn",
      engine: "postgres",
      host: pg.host,
      port: pg.port,
      database: pg.database,
      tls: { mode: "disable" },
      params: { "vault.addr": v.addr, "vault.caFile": v.caFile },
      secrets: {
        password: { ref: "vault-db:database/creds/ro" },
        "source.vault.token": { value: v.token({ policies: ["db"] }) },
      },
    });
    const pool = await vault.pool("dyn", { min: 2, max: 2 });
    try {
      for (let i = 0; i < 40; i++) {
        const rows = await pool.query("select current_user as u", [], { idempotent: true })
          .toArray();
        assert.ok(v.usernames.includes(String(rows[0]!.u)));
      }
      assert.equal(v.counts.creds, 2, "one login per physical connection, not per statement");
      await new Promise((r) => setTimeout(r, 7000));
      await pool.query("select 1", [], { idempotent: true }).toArray();
      assert.ok(v.counts.leaseRenewals >= 2, `renewals: ${v.counts.leaseRenewals}`);
      assert.equal(v.counts.creds, 2, "renewed, not logged in again");
      assert.equal(v.liveLeases().length, 2);
    } finally {
      await pool.close();
    }
    assert.deepEqual(v.liveLeases(), [], "revoked when the pool closed");
    for (const u of v.usernames) {
      assert.equal(
        (await pg.psql(`select count(*) from pg_roles where rolname = '${u}'`)).trim(),
        "0",
      );
    }
  } finally {
    await vault.close();
    await Deno.remove(home.replace(/\/home$/, ""), { recursive: true });
  }
});

Deno.test("vault: weakened Vault TLS in a profile is warned like a database's", () => {
  const base = {
    name: "p",
    engine: "postgres" as const,
    host: "db.internal",
    auth: "sql",
    tls: { mode: "verify" as const },
    secrets: {},
    created: "",
    updated: "",
  };
  assert.deepEqual(tlsWarnings({ ...base, params: { "vault.addr": "https://v:8200" } }), []);
  assert.match(
    tlsWarnings({ ...base, params: { "vault.tls": "insecure" } }).join(),
    /Vault TLS certificate verification is off/,
  );
  assert.match(
    tlsWarnings({ ...base, params: { "vault.tls": "disable", "vault.addr": "http://v:8200" } })
      .join(),
    /Vault token travels unencrypted/,
  );
  // A loopback agent is not warned about.
  assert.deepEqual(
    tlsWarnings({
      ...base,
      params: { "vault.tls": "disable", "vault.addr": "http://127.0.0.1:8100" },
    }),
    [],
  );
});

Deno.test("vault: a redirect is not followed, so the token never reaches another server", async () => {
  const seenTokens: string[] = [];
  const thief = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    seenTokens.push(req.headers.get("x-vault-token") ?? "");
    return Response.json({ data: { data: { password: "stolen" }, metadata: { version: 1 } } });
  });
  const redirector = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      new Response(null, {
        status: 307,
        headers: { location: `http://127.0.0.1:${thief.addr.port}${new URL(req.url).pathname}` },
      }),
  );
  try {
    const token = "hvs.redirect-canary";
    await refused(
      vaultSource.resolve(
        parse("vault:secret/db#password"),
        ctx({ VAULT_TOKEN: token }, {
          "vault.addr": `http://127.0.0.1:${redirector.addr.port}`,
          "vault.tls": "disable",
        }),
      ),
      /HTTP 307/,
      [token],
    );
    assert.deepEqual(seenTokens, []);
  } finally {
    await thief.shutdown();
    await redirector.shutdown();
  }
});

Deno.test("vault-db: a user token is renewed with the leases it holds, so it outlives its first TTL", async () => {
  await using db = await startMariadb();
  await using v = await startVaultDouble();
  forgetVaultTokens();
  v.policy("db", { "mysql/creds/*": ["read"], "sys/leases/revoke": ["update"] });
  v.dbRole("mysql", "app", {
    engine: "mysql",
    admin: (sql) => db.sql(sql),
    ...MARIADB_STATEMENTS,
    ttl: 3,
    maxTtl: 60,
  });
  // The token's TTL equals the lease's: without renewing it, the second lease renewal is refused.
  const env = {
    VAULT_ADDR: v.addr,
    VAULT_CACERT: v.caFile,
    VAULT_TOKEN: v.token({ policies: ["db"], ttl: 3, maxTtl: 60 }),
  };
  const r = await vaultSource.resolve(parse("vault-db:mysql/app"), ctx(env));
  const events: string[] = [];
  const keeper = new LeaseKeeper({
    renew: (l) => vaultSource.renew!(l, ctx(env)),
    revoke: (l) => vaultSource.revoke!(l, ctx(env)),
    onEvent: (e) => events.push(e.kind),
  });
  keeper.keep(r.lease!);
  await new Promise((res) => setTimeout(res, 5500));
  await keeper.close();
  assert.ok(v.counts.tokenRenewals >= 2, `token renewals: ${v.counts.tokenRenewals}`);
  assert.ok(!events.includes("renew_failed"), events.join());
  assert.equal(events.at(-1), "revoked");
  assert.equal(
    (await db.sql(`select count(*) from mysql.user where user = '${r.fields.username}'`)).trim(),
    "0",
  );
});
