/**
 * Opening (unlocking) a vault: with the master password (and the vault's one-time code, if TOTP
 * is on), or with an API key (only the profiles in its scope, read-only). Lockout is checked
 * before each attempt and every failure is counted and audited. A vault file older than the
 * highest generation written in the home is refused on both paths (`vault_rolled_back`).
 *
 * @module
 */

import { log } from "../log.ts";
import { type Actor, type AuditSink, FileAuditLog, startChain } from "../audit/log.ts";
import { chainKeyOf, withChainKey } from "../audit/meta.ts";
import { recordApiKeyUse } from "../access/apikey_state.ts";
import { Lockout } from "../access/lockout.ts";
import {
  effectiveAuditFailure,
  effectiveLockout,
  readPolicyCopy,
  syncPolicyCopy,
} from "../policy/overrides.ts";
import { policyOf, storedPolicyOf } from "../policy/policy.ts";
import { type GenerationGate, readGenerationGate } from "../access/vault_generation.ts";
import { totpConfigOf } from "../access/totp.ts";
import { HecateError } from "../errors.ts";
import { MIN_KDF_ITERATIONS } from "../kdf.ts";
import { parseApiKey } from "../vault/apikey.ts";
import { openWithIdentity } from "./open_identity.ts";
import { PASSWORD_USE_KEY } from "./slots.ts";
import { toBase64Url } from "../vault/encoding.ts";
import { checkHome, resolveHome } from "../vault/home.ts";
import { openScoped, type ScopedVault } from "../vault/scoped.ts";
import { type PositionedVaultFile, VaultStore } from "../vault/store.ts";
import type { StoredPolicy } from "../policy/policy.ts";
import { readListingFile } from "../vault/listing.ts";
import { UnlockedVault, type UnlockSource } from "../vault/vault.ts";
import {
  type AccessContext,
  type CodeSource,
  failureOf,
  guarded,
  requireSecondFactor,
} from "./access.ts";
import { VaultCore } from "./_core.ts";
import { upgradeKdf } from "./keys.ts";
import { spendVaultRecoveryCode } from "./totp.ts";
import { reasonOf } from "./util.ts";
import { Vault } from "./vault.ts";
import { saveVault } from "./vault_write.ts";

/**
 * A hardware token holding one of the vault's PKCS#11 slots (`hecate slot add pkcs11`). Opening
 * with it loads the module through Deno's FFI, so it needs `--allow-ffi` (docs/SECURITY.md).
 */
export interface Pkcs11UnlockOptions {
  /** Path of the PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`. */
  module: string;
  /** The token's label; may be left out when the vault has one PKCS#11 slot. */
  token?: string | undefined;
  /** The token's user PIN. */
  pin: string;
}

/**
 * Options for {@link openVault}: give exactly one of `password`, `apiKey`, `identity` and
 * `pkcs11`.
 *
 * @example
 * ```ts ignore
 * const vault = await openVault({ home: "/srv/hecate", password });
 * ```
 */
export interface OpenVaultOptions {
  /** Home directory. @default {$HECATE_HOME or ~/.hecate} */
  home?: string | undefined;
  /** The master password. */
  password?: string | undefined;
  /** An API key (`hcx_...`): opens only the profiles in its scope, read-only. */
  apiKey?: string | undefined;
  /** A hardware token with its PIN: opens everything, as the master password does. */
  pkcs11?: Pkcs11UnlockOptions | undefined;
  /**
   * The text of an age identity file (`AGE-SECRET-KEY-1...` lines): opens the vault through the
   * age slot of one of its identities. Everything the password can do except changing keys,
   * slots, API keys or TOTP (docs/SECURITY.md, "Age slots").
   */
  identity?: string | undefined;
  /**
   * The one-time code (TOTP or, with the password, a recovery code), or a function asked for one
   * only when a code is required (for the vault at unlock, or for a profile at connect).
   */
  totp?: string | CodeSource | undefined;
  /** Audit sink. @default {the home's audit.jsonl} */
  audit?: AuditSink;
  /**
   * Lockout policy text (`5/15m`, `off`); with a stored vault policy it may only tighten it.
   * @default {$HECATE_LOCKOUT, else the vault's policy, else 5/15m}
   */
  lockout?: string | undefined;
  /** Clock, injectable for tests. @default {() => new Date()} */
  now?: () => Date;
}

function codeSource(totp: OpenVaultOptions["totp"]): CodeSource {
  if (typeof totp === "function") return totp;
  return () => Promise.resolve(totp);
}

/**
 * Opens the vault with the master password, an API key or an age identity. The attempt, success or failure, is
 * audited with its actor; failures count toward lockout.
 *
 * @param options Home, credential, one-time code, audit sink, clock.
 * @returns The open vault.
 * @throws {HecateError} `vault_not_found`, `auth_failed`, `vault_integrity`,
 * `unsupported_version`, `insecure_home`, `locked_out`, `key_expired`, `key_revoked`,
 * `totp_failed`, `vault_rolled_back` (the file is older than a generation already written in
 * this home), `usage` (neither or both credentials).
 *
 * @example Open a vault and list its profiles
 * ```ts ignore
 * import { openVault } from "./hecate.ts";
 * const vault = await openVault({ password: Deno.env.get("PW")! });
 * console.log(vault.profiles.list().map((p) => p.name));
 * ```
 */
export async function openVault(options: OpenVaultOptions): Promise<Vault> {
  return (await openVaultWithState(options)).vault;
}

/**
 * {@link openVault} for a listing (`server list`; not part of the library API): with a root-key
 * credential (password, age identity, token) a format-4 file is read by position, the header,
 * table and index line only (src/vault/listing.ts), with every check of those an unlock makes;
 * the record lines are not read. The vault lists its profiles and reads its policy; opening a
 * record from it is an internal error, and a write re-reads the whole file first, as after any
 * other writer. With an API key, as {@link openVault}.
 *
 * @param options As for {@link openVault}.
 * @returns The open vault, for listing only.
 */
export async function openVaultForListing(options: OpenVaultOptions): Promise<Vault> {
  return (await openVaultWithState(options, { listing: true })).vault;
}

/**
 * {@link openVault}, also returning the unlocked vault state (for a restore, which re-reads the
 * current file under the vault lock with its root key). Not part of the library API.
 *
 * @param options As for {@link openVault}.
 * @param how `listing`: read only what a listing needs ({@link openVaultForListing}).
 * @returns The open vault and its state (an API key's scoped state on that path).
 */
export async function openVaultWithState(
  options: OpenVaultOptions,
  how: { listing?: boolean } = {},
): Promise<{ vault: Vault; state: UnlockedVault | ScopedVault }> {
  const given = [options.password, options.apiKey, options.identity, options.pkcs11].filter((c) =>
    c !== undefined
  );
  if (given.length !== 1) {
    throw new HecateError(
      "usage",
      "Give one of the master password, an API key, an age identity or a token",
    );
  }
  const home = resolveHome({ home: options.home });
  await checkHome(home);
  const store = new VaultStore(home);
  // What must be known before the sealed policy can be read comes from the home's copy of it.
  const copy = await readPolicyCopy(home);
  const audit = options.audit ??
    new FileAuditLog(home, auditOptionsOf(copy, envOf("HECATE_AUDIT_FAILURE")));
  const now = options.now ?? (() => new Date());
  const lockout = new Lockout(
    home,
    effectiveLockout(copy, options.lockout ?? envOf("HECATE_LOCKOUT")),
    now,
  );
  const code = codeSource(options.totp);
  const t0 = performance.now();
  const by = options.apiKey !== undefined
    ? "apikey"
    : options.identity !== undefined
    ? "age"
    : options.pkcs11
    ? "pkcs11"
    : "password";
  log("debug", "vault", "unlocking", { home, by });
  try {
    const opened = options.apiKey !== undefined
      ? await openWithApiKey(home, store, audit, lockout, now, code, options.apiKey, copy)
      : options.identity !== undefined
      ? await openWithIdentity(
        { home, store, audit, lockout, now, code, listing: how.listing ?? false },
        options.identity,
      )
      : await openWithRootKey(home, store, audit, lockout, now, code, options, copy, how);
    log("info", "vault", "unlocked", { by, ms: Math.round(performance.now() - t0) });
    return opened;
  } catch (e) {
    log("warn", "vault", "unlock refused", {
      by,
      error: e instanceof HecateError ? e.code : "internal",
      ms: Math.round(performance.now() - t0),
    });
    throw e;
  }
}

/**
 * Refuses (and audits as a failed unlock) a vault file older than the highest generation written
 * in this home. Not counted toward lockout: the credential was right.
 */
export async function refuseRolledBack(
  gate: GenerationGate,
  audit: AuditSink,
  actor: Actor,
  vault: { id: string; generation: number },
): Promise<void> {
  await refuseUnreadable(audit, actor, () => {
    gate.check(vault.id, vault.generation);
    return Promise.resolve();
  });
}

/** How the root key is reached: the password slot, or a PKCS#11 slot with its token. */
interface RootCredential {
  actor: Actor;
  /** The lockout subject: `password`, or `pkcs11:<slot id>`. */
  subject: string;
  /** Key of its last use in the last-used state (`slot list`): `password`, or the slot id. */
  useKey: string;
  unlock: () => Promise<UnlockedVault>;
}

/**
 * The vault file as a root-key unlock reads it: whole, or for a listing by position (the
 * header, table and index line; a file of an older format whole). Shared with
 * ./open_identity.ts.
 */
export async function readForUnlock(store: VaultStore, listing: boolean): Promise<UnlockSource> {
  if (!listing) return await store.read();
  const file = await store.openPositioned();
  try {
    return await readListingFile(file);
  } finally {
    file.close();
  }
}

/** The credential of a password or token unlock, the file read. */
async function rootCredential(
  options: OpenVaultOptions,
  bytes: UnlockSource,
  audit: AuditSink,
): Promise<RootCredential> {
  const password = options.password;
  if (password !== undefined) {
    return {
      actor: { kind: "password" },
      subject: "password",
      useKey: PASSWORD_USE_KEY,
      // A fresh read, used for nothing else: the vault keeps it without a copy.
      unlock: () => UnlockedVault.unlock(bytes, password, { owned: true }),
    };
  }
  const token = options.pkcs11!;
  // Only to pick the slot: the whole file is checked by the unlock, under the root key.
  const { pickPkcs11Slot, unlockWithToken } = await import("./pkcs11_open.ts");
  const slot = await refuseUnreadable(
    audit,
    { kind: "pkcs11" },
    () => Promise.resolve(pickPkcs11Slot(bytes, token.token)),
  );
  return {
    actor: { kind: "pkcs11", id: toBase64Url(slot.id), name: slot.token },
    subject: `pkcs11:${toBase64Url(slot.id)}`,
    useKey: toBase64Url(slot.id),
    unlock: () => unlockWithToken(bytes, slot, token),
  };
}

async function openWithRootKey(
  home: string,
  store: VaultStore,
  audit: AuditSink,
  lockout: Lockout,
  now: () => Date,
  code: CodeSource,
  options: OpenVaultOptions,
  copy: StoredPolicy | undefined,
  reading: { listing?: boolean },
): Promise<{ vault: Vault; state: UnlockedVault }> {
  // The gate first, then the file: a write by another process in between is then not mistaken
  // for a rollback. A missing or unreadable vault is not audited: there is no vault to record it for.
  const gate = await readGenerationGate(home);
  const bytes = await readForUnlock(store, reading.listing ?? false);
  const how = await rootCredential(options, bytes, audit);
  const { actor, subject } = how;
  const ctx: AccessContext = {
    actor,
    subject,
    lockout,
    audit,
    home,
    now,
    code,
    policyCopy: copy,
  };
  let state = await guarded(ctx, "unlock", how.unlock, failureOf("auth_failed"));
  await refuseRolledBack(gate, audit, actor, state);
  // A custom sink keeps its own records; the file trail needs its chain key in the vault.
  if (audit instanceof FileAuditLog && !chainKeyOf(state.meta)) {
    state = await startChainFor(home, store, state, audit, actor);
  }
  const core = new VaultCore(home, store, state, audit, ctx);
  const vault = new Vault(core);
  const totp = totpConfigOf(state.meta.totp);
  await checkPolicyCopy(home, state, copy);
  if (!totp && policyOf(state.meta).totpUnlock) {
    // Only a build that does not know the policy can have turned TOTP off under it.
    console.error(
      "hecate: warning: the vault's policy requires TOTP for unlock but none is enabled; " +
        "run 'hecate totp setup'",
    );
  }
  if (totp) {
    // Failures stay counted until the code passes too: a known password does not reset the
    // count of wrong codes.
    // Recovery codes stand in for the TOTP device next to the master password only.
    const recovery = options.password !== undefined;
    const ok = await requireSecondFactor(ctx, totp, "vault", "the vault", "unlock", recovery);
    if (ok.kind === "recovery") await spendVaultRecoveryCode(core, ok.spent);
    core.passed.add("vault");
  }
  await lockout.succeeded(subject);
  // Removing old segments needs a proof made from A0: only a full (root-key) unlock enables it.
  if (audit instanceof FileAuditLog) audit.enableRetention(chainKeyOf(state.meta)!);
  await audit.append({ event: "unlock", actor, outcome: "ok" });
  // For 'slot list': the password's use, or this token slot's.
  await recordApiKeyUse(home, how.useKey, now()).catch(() => {});
  const password = options.password;
  if (password !== undefined && state.passwordIterations < MIN_KDF_ITERATIONS) {
    await upgradeKdf(core, password, MIN_KDF_ITERATIONS);
  }
  return { vault, state };
}

/**
 * Makes the home's copy of the policy equal to the sealed one; a copy that differed (edited, or
 * left from another vault) is reported, since the lockout of this attempt was taken from it.
 */
async function checkPolicyCopy(
  home: string,
  state: UnlockedVault,
  copy: StoredPolicy | undefined,
): Promise<void> {
  const stored = storedPolicyOf(state.meta);
  // The common case (equal, or neither exists) costs nothing more than the read already made.
  if (JSON.stringify(stored?.settings) === JSON.stringify(copy?.settings)) return;
  const changed = await syncPolicyCopy(home, stored).catch(() => false);
  if (changed && copy !== undefined) {
    console.error(
      "hecate: warning: policy.state.json differed from the vault's sealed policy; rewritten",
    );
  }
}

function auditOptionsOf(
  copy: StoredPolicy | undefined,
  env: string | undefined,
): { failure?: "closed" | "warn" } {
  const failure = effectiveAuditFailure(copy, env);
  return failure ? { failure } : {};
}

function envOf(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the stored policy alone applies
  }
}

/**
 * Runs a step of an unlock and audits its failure as a failed `unlock` (not counted toward
 * lockout). Shared with ./open_identity.ts.
 */
export async function refuseUnreadable<T>(audit: AuditSink, actor: Actor, fn: () => Promise<T>) {
  try {
    return await fn();
  } catch (e) {
    await audit.append({ event: "unlock", actor, outcome: "fail", reason: reasonOf(e) })
      .catch(() => {});
    throw e;
  }
}

async function openWithApiKey(
  home: string,
  store: VaultStore,
  audit: AuditSink,
  lockout: Lockout,
  now: () => Date,
  code: CodeSource,
  apiKey: string,
  copy: StoredPolicy | undefined,
): Promise<{ vault: Vault; state: ScopedVault }> {
  const gate = await readGenerationGate(home); // before the file, as on the password path
  // Read by position: the header, the seal and the record lines in scope, not the whole file.
  const file = await store.openPositioned();
  try {
    return await openWithApiKeyFile(
      { home, store, audit, lockout, now, code, copy },
      apiKey,
      gate,
      file,
    );
  } finally {
    file.close();
  }
}

async function openWithApiKeyFile(
  opening: {
    home: string;
    store: VaultStore;
    audit: AuditSink;
    lockout: Lockout;
    now: () => Date;
    code: CodeSource;
    copy: StoredPolicy | undefined;
  },
  apiKey: string,
  gate: Awaited<ReturnType<typeof readGenerationGate>>,
  bytes: PositionedVaultFile,
): Promise<{ vault: Vault; state: ScopedVault }> {
  const { home, store, audit, lockout, now, code, copy } = opening;
  const keyId = await refuseUnreadable(
    audit,
    { kind: "apikey" },
    () => Promise.resolve(toBase64Url(parseApiKey(apiKey).slotId)),
  );
  const subject = `apikey:${keyId}`;
  const scoped = await guarded(
    { actor: { kind: "apikey", id: keyId }, subject, lockout, audit },
    "unlock",
    () => openScoped(bytes, apiKey, { now: now() }),
    failureOf("auth_failed", "key_revoked"),
  );
  const actor: Actor = { kind: "apikey", id: keyId, name: scoped.keyName };
  await refuseRolledBack(gate, audit, actor, scoped);
  await lockout.succeeded(subject);
  await audit.append({ event: "unlock", actor, outcome: "ok" });
  await recordApiKeyUse(home, keyId, now()).catch(() => {}); // informational only
  const vault = new Vault(
    new VaultCore(home, store, scoped, audit, {
      actor,
      subject,
      lockout,
      audit,
      home,
      now,
      code,
      policyCopy: copy,
    }),
  );
  return { vault, state: scoped };
}

/** A vault made before the chained trail: give it a first chain key on first unlock. */
async function startChainFor(
  home: string,
  store: VaultStore,
  state: UnlockedVault,
  audit: AuditSink,
  actor: Actor,
): Promise<UnlockedVault> {
  return await store.withLock(async () => {
    const fresh = await state.reloadCurrent(store);
    if (chainKeyOf(fresh.meta)) return fresh; // another process did it meanwhile
    fresh.meta = withChainKey(fresh.meta, await startChain(home));
    await saveVault(store, fresh, audit, actor);
    return fresh;
  });
}
