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
import { Lockout, parseLockoutPolicy } from "../access/lockout.ts";
import { type GenerationGate, readGenerationGate } from "../access/vault_generation.ts";
import { totpConfigOf } from "../access/totp.ts";
import { HecateError } from "../errors.ts";
import { MIN_KDF_ITERATIONS } from "../kdf.ts";
import { parseApiKey } from "../vault/apikey.ts";
import { toBase64Url } from "../vault/encoding.ts";
import { checkHome, resolveHome } from "../vault/home.ts";
import { openScoped, type ScopedVault } from "../vault/scoped.ts";
import { type PositionedVaultFile, VaultStore } from "../vault/store.ts";
import { UnlockedVault } from "../vault/vault.ts";
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
 * Options for {@link openVault}: give exactly one of `password` and `apiKey`.
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
  /**
   * The one-time code (TOTP or, with the password, a recovery code), or a function asked for one
   * only when a code is required (for the vault at unlock, or for a profile at connect).
   */
  totp?: string | CodeSource | undefined;
  /** Audit sink. @default {the home's audit.jsonl} */
  audit?: AuditSink;
  /** Lockout policy text (`5/15m`, `off`). @default {$HECATE_LOCKOUT, else 5/15m} */
  lockout?: string | undefined;
  /** Clock, injectable for tests. @default {() => new Date()} */
  now?: () => Date;
}

function codeSource(totp: OpenVaultOptions["totp"]): CodeSource {
  if (typeof totp === "function") return totp;
  return () => Promise.resolve(totp);
}

/**
 * Opens the vault with the master password or an API key. The attempt, success or failure, is
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
 * {@link openVault}, also returning the unlocked vault state (for a restore, which re-reads the
 * current file under the vault lock with its root key). Not part of the library API.
 *
 * @param options As for {@link openVault}.
 * @returns The open vault and its state (an API key's scoped state on that path).
 */
export async function openVaultWithState(
  options: OpenVaultOptions,
): Promise<{ vault: Vault; state: UnlockedVault | ScopedVault }> {
  if ((options.password === undefined) === (options.apiKey === undefined)) {
    throw new HecateError("usage", "Give either the master password or an API key");
  }
  const home = resolveHome({ home: options.home });
  await checkHome(home);
  const store = new VaultStore(home);
  const audit = options.audit ?? new FileAuditLog(home);
  const now = options.now ?? (() => new Date());
  const lockout = new Lockout(
    home,
    parseLockoutPolicy(options.lockout ?? Deno.env.get("HECATE_LOCKOUT")),
    now,
  );
  const code = codeSource(options.totp);
  const t0 = performance.now();
  const by = options.apiKey !== undefined ? "apikey" : "password";
  log("debug", "vault", "unlocking", { home, by });
  try {
    const opened = options.apiKey !== undefined
      ? await openWithApiKey(home, store, audit, lockout, now, code, options.apiKey)
      : await openWithPassword(home, store, audit, lockout, now, code, options.password!);
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
async function refuseRolledBack(
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

async function openWithPassword(
  home: string,
  store: VaultStore,
  audit: AuditSink,
  lockout: Lockout,
  now: () => Date,
  code: CodeSource,
  password: string,
): Promise<{ vault: Vault; state: UnlockedVault }> {
  const actor: Actor = { kind: "password" };
  const ctx: AccessContext = { actor, subject: "password", lockout, audit, home, now, code };
  // The gate first, then the file: a write by another process in between is then not mistaken
  // for a rollback. A missing or unreadable vault is not audited: there is no vault to record it for.
  const gate = await readGenerationGate(home);
  const bytes = await store.read();
  let state = await guarded(
    ctx,
    "unlock",
    // A fresh read, used for nothing else: the vault keeps it without a copy.
    () => UnlockedVault.unlock(bytes, password, { owned: true }),
    failureOf("auth_failed"),
  );
  await refuseRolledBack(gate, audit, actor, state);
  // A custom sink keeps its own records; the file trail needs its chain key in the vault.
  if (audit instanceof FileAuditLog && !chainKeyOf(state.meta)) {
    state = await startChainFor(home, store, state, audit);
  }
  const core = new VaultCore(home, store, state, audit, ctx);
  const vault = new Vault(core);
  const totp = totpConfigOf(state.meta.totp);
  if (totp) {
    // Failures stay counted until the code passes too: a known password does not reset the
    // count of wrong codes.
    const ok = await requireSecondFactor(ctx, totp, "vault", "the vault", "unlock", true);
    if (ok.kind === "recovery") await spendVaultRecoveryCode(core, ok.spent);
    core.passed.add("vault");
  }
  await lockout.succeeded("password");
  // Removing old segments needs a proof made from A0: only a full password unlock enables it.
  if (audit instanceof FileAuditLog) audit.enableRetention(chainKeyOf(state.meta)!);
  await audit.append({ event: "unlock", actor, outcome: "ok" });
  if (state.passwordIterations < MIN_KDF_ITERATIONS) {
    await upgradeKdf(core, password, MIN_KDF_ITERATIONS);
  }
  return { vault, state };
}

async function refuseUnreadable<T>(audit: AuditSink, actor: Actor, fn: () => Promise<T>) {
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
): Promise<{ vault: Vault; state: ScopedVault }> {
  const gate = await readGenerationGate(home); // before the file, as on the password path
  // Read by position: the header, the seal and the record lines in scope, not the whole file.
  const file = await store.openPositioned();
  try {
    return await openWithApiKeyFile(home, store, audit, lockout, now, code, apiKey, gate, file);
  } finally {
    file.close();
  }
}

async function openWithApiKeyFile(
  home: string,
  store: VaultStore,
  audit: AuditSink,
  lockout: Lockout,
  now: () => Date,
  code: CodeSource,
  apiKey: string,
  gate: Awaited<ReturnType<typeof readGenerationGate>>,
  bytes: PositionedVaultFile,
): Promise<{ vault: Vault; state: ScopedVault }> {
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
    new VaultCore(home, store, scoped, audit, { actor, subject, lockout, audit, home, now, code }),
  );
  return { vault, state: scoped };
}

/** A vault made before the chained trail: give it a first chain key on first unlock. */
async function startChainFor(
  home: string,
  store: VaultStore,
  state: UnlockedVault,
  audit: AuditSink,
): Promise<UnlockedVault> {
  return await store.withLock(async () => {
    const fresh = await state.reload(await store.read());
    if (chainKeyOf(fresh.meta)) return fresh; // another process did it meanwhile
    fresh.meta = withChainKey(fresh.meta, await startChain(home));
    await saveVault(store, fresh, audit, { kind: "password" });
    return fresh;
  });
}
