/**
 * `server rotate-password`: change a profile's database password on the server with its own
 * login. Order, so a kill at any point leaves a working password in the vault: (1) the new
 * password is stored durably as the profile's `pending` secret, (2) the server is changed, (3) a
 * fresh login with the new password is proven, (4) it is committed as the current version (the
 * old one becomes a previous version). Each step is audited, never with a value.
 *
 * @module
 */

import type { VaultCore } from "../api/_core.ts";
import { openDbConnection } from "../connect.ts";
import type { DbConnection } from "../db/driver.ts";
import { HecateError } from "../errors.ts";
import type { Profile } from "../profile.ts";
import { reasonOf } from "../api/util.ts";
import type { AuditEventName } from "../audit/events.ts";
import { DEFAULT_LENGTH, generatePassword, MIN_LENGTH } from "./generate.ts";
import type { ComplexityRule } from "./complexity.ts";
import { actorText, recordChange } from "./history.ts";
import { scramVerifier } from "./scram_verifier.ts";
import { pauseAt } from "./test_pause.ts";

/** The `pending` member of a profile record: a new password not yet known to be in use. */
export interface PendingSecret {
  /** The new password. */
  password: string;
  /** When the rotation stored it. */
  time: string;
  /** Who started the rotation. */
  actor: string;
}

function refuse(name: string, why: string): HecateError {
  return new HecateError("invalid_profile", `Profile "${name}" cannot be rotated: ${why}`);
}

/**
 * Why a profile's password cannot be rotated on the server, or undefined when it can.
 *
 * @param p The profile.
 * @returns The reason.
 */
export function rotationRefusal(p: Profile): string | undefined {
  if (p.engine === "sqlite") return "SQLite has no server login";
  if (p.auth !== "sql") return `its login uses '${p.auth}' authentication, not a password`;
  const s = p.secrets.password;
  if (!s) return "it stores no password";
  if (!("value" in s)) return "its password comes from a secret source; rotate it there";
  if (p.sources?.from?.length) return "its connection comes from a secret source (--from)";
  return undefined;
}

/**
 * The statement that sets the password (no plaintext for PostgreSQL): of the login itself, or,
 * run by an administrator, of `user`.
 */
async function alterStatement(p: Profile, password: string, user?: string): Promise<string> {
  // Generated passwords hold no quote or backslash (./generate.ts): safe as a literal.
  if (p.engine === "mssql") {
    // SQL Server wants the old password when a login changes itself; an administrator does not.
    const login = `[${(user ?? p.user ?? "").replaceAll("]", "]]")}]`;
    const old = (p.secrets.password as { value: string }).value.replaceAll("'", "''");
    return `ALTER LOGIN ${login} WITH PASSWORD = N'${tsqlText(password)}'` +
      (user === undefined ? ` OLD_PASSWORD = N'${old}'` : "");
  }
  if (p.engine === "postgres") {
    const role = user === undefined ? "CURRENT_USER" : `"${user.replaceAll('"', '""')}"`;
    return `ALTER ROLE ${role} PASSWORD '${await scramVerifier(password)}'`;
  }
  const account = user === undefined
    ? "CURRENT_USER()"
    : `'${user.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
  return `ALTER USER ${account} IDENTIFIED BY '${mysqlText(password)}'`;
}

async function run(conn: DbConnection, sql: string): Promise<void> {
  for await (const _ of conn.query(sql, [])) { /* drain */ }
}

/** A MySQL string literal's body (a kept password may hold quotes or backslashes). */
function mysqlText(s: string): string {
  return s.replaceAll("\\", "\\\\").replaceAll("'", "''");
}

/** A T-SQL N'...' literal's body. */
function tsqlText(s: string): string {
  return s.replaceAll("'", "''");
}

/** A copy of the profile that logs in with `password`. */
function withPassword(p: Profile, password: string): Profile {
  return { ...p, secrets: { ...p.secrets, password: { value: password } } };
}

/**
 * Rotates a profile's password on its server (see the module text).
 *
 * @param core The open vault (master password).
 * @param name Profile name.
 * @param length Length of the new password.
 * @returns The new current version number.
 * @throws {HecateError} `invalid_profile` for a profile that cannot be rotated, `no_credential`
 * with an API key, or the driver's error (the vault then keeps the old password current).
 */
export async function rotatePassword(
  core: VaultCore,
  name: string,
  length?: number,
  admin?: string,
  restore?: { password: string; reason: string },
): Promise<number> {
  core.unlocked();
  if (length !== undefined) generatePassword(length); // a bad --length before anything else
  const { profile } = await core.released(name);
  const why = rotationRefusal(profile);
  if (why) throw refuse(name, why);
  // A rollback sets a kept password back; otherwise a new one is generated, at least as long as
  // the profile's complexity rule asks (every class is always present).
  const policy = core.policy();
  const floor = (profile as { complexity?: ComplexityRule }).complexity?.minLength ??
    policy.complexityMinLength;
  const password = restore?.password ??
    generatePassword(Math.max(length ?? DEFAULT_LENGTH, floor, MIN_LENGTH));
  let adminProfile: Profile | undefined;
  if (admin !== undefined) {
    if (admin === name) throw refuse(name, "--admin names the profile itself");
    adminProfile = (await core.released(admin)).profile;
    if (adminProfile.engine !== profile.engine) {
      throw refuse(name, `administrator profile "${admin}" is for another engine`);
    }
    if (!profile.user) throw refuse(name, "it names no login (--user)");
  }
  const step = async (event: AuditEventName, fn: () => Promise<void>) => {
    const base = { event, actor: core.actor, profile: name };
    try {
      await fn();
    } catch (e) {
      await core.audit.append({ ...base, outcome: "fail", reason: reasonOf(e) }).catch(() => {});
      throw e;
    }
    await core.audit.append({ ...base, outcome: "ok" });
  };
  const time = new Date().toISOString();
  // (1) Durable before the server hears of it.
  await step("rotation.start", () =>
    core.mutate(async (state) => {
      const { id, profile: p, totp } = await core.find(name, state);
      const pending: PendingSecret = { password, time, actor: actorText(core.actor) };
      const record = { ...p, pending } as unknown as Record<string, unknown>;
      state.putRecord(totp ? { ...record, totp } : record, id);
    }));
  // (2) The server, with the current password.
  await pauseAt("server");
  await step("rotation.server", async () => {
    const conn = await openDbConnection(adminProfile ?? profile);
    try {
      try {
        await run(conn, await alterStatement(profile, password, adminProfile && profile.user));
      } catch (e) {
        // MariaDB lets a login change its own password with SET PASSWORD but wants the CREATE
        // USER privilege for ALTER USER even on itself (error 1227).
        if (adminProfile || profile.engine !== "mysql" || !/\b1227\b/.test(String(e))) throw e;
        await run(conn, `SET PASSWORD = PASSWORD('${mysqlText(password)}')`);
      }
    } finally {
      await conn.close();
    }
  });
  // (3) A fresh login with the new one.
  await pauseAt("verify");
  await step("rotation.verify", async () => {
    const conn = await openDbConnection(withPassword(profile, password));
    await conn.close();
  });
  // (4) Current; the old password becomes a previous version.
  await pauseAt("commit");
  let version = 0;
  await step("rotation.commit", async () => {
    version = await settleRecord(core, name, password, restore?.reason ?? "rotate-password");
  });
  return version;
}

/**
 * Ends a rotation in the record: with `password`, it becomes the current version (the old one a
 * previous version); without, the pending member is dropped and the secrets stay as they are.
 *
 * @returns The current version number afterwards.
 */
export async function settleRecord(
  core: VaultCore,
  name: string,
  password: string | undefined,
  reason: string,
): Promise<number> {
  let version = 0;
  await core.mutate(async (state) => {
    const { id, profile: p, totp } = await core.find(name, state);
    const { pending: _, ...rest } = p as Profile & { pending?: PendingSecret };
    const secrets = password === undefined
      ? rest.secrets
      : { ...rest.secrets, password: { value: password } };
    const now = new Date().toISOString();
    const history = recordChange(rest, secrets, core.actor, reason, now, core.policy().historyKeep);
    version = history.current.version;
    const record = { ...rest, secrets, history, updated: now } as unknown as Record<
      string,
      unknown
    >;
    state.putRecord(totp ? { ...record, totp } : record, id);
  });
  return version;
}

/** The pending member of a profile, if a rotation left one. */
export function pendingOf(p: Profile): PendingSecret | undefined {
  const v = (p as { pending?: unknown }).pending as PendingSecret | undefined;
  return v && typeof v === "object" && typeof v.password === "string" ? v : undefined;
}

/**
 * Settles a rotation a crash left pending, before a connection: a login with the pending
 * password is tried first (it works when the server was changed: it becomes current), then the
 * current one (it works when the server was not: the pending one is dropped). Says what it did
 * on stderr and in the audit trail (`rotation.settle`). With an API key nothing is written: the
 * working password is used for this connection only.
 *
 * @param core The open vault.
 * @param name Profile name.
 * @param profile The released profile.
 * @returns The profile to connect with.
 */
export async function settlePending(
  core: VaultCore,
  name: string,
  profile: Profile,
): Promise<Profile> {
  const pending = pendingOf(profile);
  if (!pending) return profile;
  const base = { event: "rotation.settle" as const, actor: core.actor, profile: name };
  const works = async (p: Profile) => {
    try {
      await (await openDbConnection(p)).close();
      return true;
    } catch {
      return false;
    }
  };
  const writable = core.actor.kind === "password" || core.actor.kind === "pkcs11"; // root key
  const candidate = withPassword(profile, pending.password);
  if (await works(candidate)) {
    if (writable) await settleRecord(core, name, pending.password, "rotate-password (settled)");
    await core.audit.append({ ...base, outcome: "ok", detail: { kept: "new", saved: writable } });
    console.error(
      `hecate: profile "${name}": an interrupted password rotation was settled: the new ` +
        `password logs in${writable ? " and is now current" : " (not saved: API key)"}`,
    );
    return candidate;
  }
  if (await works(profile)) {
    if (writable) await settleRecord(core, name, undefined, "rotation abandoned");
    await core.audit.append({ ...base, outcome: "ok", detail: { kept: "old", saved: writable } });
    console.error(
      `hecate: profile "${name}": an interrupted password rotation did not reach the server: ` +
        `the current password still logs in${writable ? " and the pending one was dropped" : ""}`,
    );
    return profile;
  }
  await core.audit.append({ ...base, outcome: "fail", reason: "neither_logs_in" });
  console.error(
    `hecate: profile "${name}": a password rotation is pending and neither the new nor the ` +
      `current password logs in; both are kept`,
  );
  return profile;
}
