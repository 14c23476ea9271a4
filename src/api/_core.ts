/**
 * The machinery every part of an open vault shares (internal; not exported from mod.ts): the
 * unlocked state, the store and its write lock, the audit sink, the access context, the lookup of
 * profiles, fail-closed auditing of operations, and the gate every release of a profile's secrets
 * goes through. The parts (`vault.profiles`, `vault.apiKeys`, ...) each take the one core of their
 * vault, so a write by one part is seen by every other.
 *
 * @module
 */

import type { Actor, AuditSink, DetailValue } from "../audit/log.ts";
import { spendRecoveryCode, type TotpConfig, totpConfigOf } from "../access/totp.ts";
import { HecateError } from "../errors.ts";
import { type Profile, profileFromRecord } from "../profile.ts";
import type { VaultStore } from "../vault/store.ts";
import type { ScopedVault } from "../vault/scoped.ts";
import { type JsonObject, UnlockedVault } from "../vault/vault.ts";
import { recordKindOf, recordSummary, summaryKindOf } from "../vault/record_index.ts";
import { type AccessContext, requireSecondFactor } from "./access.ts";
import { reasonOf } from "./util.ts";
import { saveVault } from "./vault_write.ts";
import type { AuditEventName } from "../audit/events.ts";
import { policyOf, resolvePolicy, type VaultPolicy } from "../policy/policy.ts";

/** A stored profile with its record id and its own TOTP setup, if any. */
export interface Found {
  /** Record id. */
  id: string;
  /** The profile, secrets included. */
  profile: Profile;
  /** The profile's second factor, if it has one. */
  totp: TotpConfig | undefined;
}

/**
 * What only the master password may do, whatever else opened the vault: changing the keys, the
 * slots, the API keys, the second factor, the backup retention or the policy. An age identity (a teammate) or
 * a PKCS#11 token opens everything else (docs/SECURITY.md, "Age slots", "PKCS#11 token slot").
 */
const MASTER_ONLY: ReadonlySet<AuditEventName> = new Set<AuditEventName>([
  "rotate",
  "password.change",
  "kdf.upgrade",
  "apikey.create",
  "apikey.revoke",
  "totp.enable",
  "totp.disable",
  "backup.retention",
  "slot.add",
  "slot.remove",
  "policy.set", // documented as master password only (vault.setPolicy)
]);

/** The shared state and machinery of one open vault. */
export class VaultCore {
  /** The home directory. */
  readonly home: string;
  /** The vault file and its lock. */
  readonly store: VaultStore;
  /** Where audit records go. */
  readonly audit: AuditSink;
  /** Who opened the vault, lockout, clock, one-time code source. */
  readonly access: AccessContext;
  /** Second factors already passed in this session (`vault`, `profile:<id>`): asked once each. */
  readonly passed: Set<string> = new Set();
  #state: UnlockedVault | ScopedVault;
  #policy: { state: UnlockedVault | ScopedVault; policy: VaultPolicy } | undefined;
  /**
   * Side keys handed to offline caches, one per record and state (a pool's every connect reuses
   * it instead of deriving and keeping another copy); zeroed by {@link wipe}.
   */
  #sideKeys = new Map<
    string,
    { state: UnlockedVault | ScopedVault; key: Uint8Array<ArrayBuffer> }
  >();
  /** Side keys of earlier states, which a live cache may still use: zeroed by {@link wipe}. */
  #retiredSideKeys: Uint8Array[] = [];

  /**
   * @param home Home directory.
   * @param store The vault store.
   * @param state The unlocked (or API-key scoped) vault.
   * @param audit Audit sink.
   * @param access Access state of this session.
   */
  constructor(
    home: string,
    store: VaultStore,
    state: UnlockedVault | ScopedVault,
    audit: AuditSink,
    access: AccessContext,
  ) {
    this.home = home;
    this.store = store;
    this.#state = state;
    this.audit = audit;
    this.access = access;
  }

  /** The vault as last read or written by this session. */
  get state(): UnlockedVault | ScopedVault {
    return this.#state;
  }

  /** Who is acting (the actor of every audit record of this session). */
  get actor(): Actor {
    return this.access.actor;
  }

  /**
   * The vault's policy with defaults applied: the sealed one with the master password; on the
   * API-key path (which cannot open the meta) the home's copy read at unlock.
   *
   * @returns The policy.
   */
  policy(): VaultPolicy {
    const state = this.#state;
    // Read once per state: every change replaces the state (see mutate), and reading the meta
    // copies it, which each connect would otherwise pay for.
    if (this.#policy?.state !== state) {
      const policy = state instanceof UnlockedVault
        ? policyOf(state.meta)
        : resolvePolicy(this.access.policyCopy);
      this.#policy = { state, policy };
    }
    return structuredClone(this.#policy.policy);
  }

  /**
   * Zeroes the keys of the current state: `UnlockedVault.wipe` with the password, the API key's
   * secret and data keys with a key (`ScopedVault.wipe`).
   */
  wipe(): void {
    this.#state.wipe();
    for (const { key } of this.#sideKeys.values()) key.fill(0);
    for (const key of this.#retiredSideKeys) key.fill(0);
    this.#sideKeys.clear();
    this.#retiredSideKeys = [];
  }

  /**
   * The full vault, for operations that need the master password.
   *
   * @returns The unlocked vault.
   * @throws {HecateError} `no_credential` when an API key opened the vault.
   */
  unlocked(): UnlockedVault {
    if (this.#state instanceof UnlockedVault) return this.#state;
    throw new HecateError(
      "no_credential",
      "This needs the master password: an API key can only read the profiles in its scope",
      { hint: "run it without HECATE_API_KEY / --api-key-file" },
    );
  }

  /**
   * Every profile readable in a state (this session's by default). With the master password this
   * opens every record: prefer {@link summaries} and {@link find}.
   *
   * @param state The vault to read.
   * @returns The profiles with ids and TOTP setups.
   */
  /**
   * Refuses unless the master password opened this vault.
   *
   * @throws {HecateError} `no_credential` for an API key, an age identity or a token.
   */
  requireMasterPassword(): void {
    if (this.access.actor.kind === "password") return;
    this.unlocked(); // an API key's own message
    throw new HecateError(
      "no_credential",
      "This needs the master password: an age identity or a token cannot change keys, slots, API keys, TOTP, backup retention or the policy",
      {
        hint:
          "ask the vault owner, or run it without --identity / HECATE_IDENTITY / --pkcs11 / HECATE_PKCS11_MODULE",
      },
    );
  }

  async all(state: UnlockedVault | ScopedVault = this.#state): Promise<Found[]> {
    return (await state.records()).filter((r) => recordKindOf(r.value) === "profile")
      .map((r) => foundOf(r.id, r.value));
  }

  /**
   * The index of the profiles readable in a state, without opening records (with an API key its
   * few records are open already).
   *
   * @param state The vault to read (this session's by default).
   * @returns Record ids with their summaries (name, engine, host, ...; `totp: true` when the
   * profile requires its own code). Read-only: they may be the vault's own objects.
   */
  summaries(
    state: UnlockedVault | ScopedVault = this.#state,
  ): { id: string; summary: Readonly<JsonObject> }[] {
    // Stored secrets (`hecate secret`) are records too, but never profiles.
    if (state instanceof UnlockedVault) {
      return state.summaries().filter((r) => summaryKindOf(r.summary) === "profile");
    }
    return state.records().filter((r) => recordKindOf(r.value) === "profile")
      .map((r) => ({ id: r.id, summary: recordSummary(r.value) }));
  }

  /**
   * As {@link summaries}, the profiles' summaries alone (no ids), in file order: what a listing
   * reads.
   *
   * @param state The vault to read (this session's by default).
   * @returns Read-only: they may be the vault's own objects.
   */
  profileSummaries(state: UnlockedVault | ScopedVault = this.#state): Readonly<JsonObject>[] {
    if (state instanceof UnlockedVault) {
      return state.summaryValues("profile");
    }
    return this.summaries(state).map((r) => r.summary);
  }

  /**
   * A profile's engine, for preloading its driver, without reading the whole profile index: from
   * the summaries when at hand, else from its record (opened, not released: nothing leaves).
   *
   * @param name Profile name.
   * @returns The engine, or undefined when unknown (the caller's own lookup reports errors).
   */
  async engineOf(name: string): Promise<string | undefined> {
    const state = this.#state;
    if (!(state instanceof UnlockedVault)) {
      return this.summaries(state).find((r) =>
        r.summary.name === name && summaryKindOf(r.summary) === "profile"
      )?.summary.engine as
        | string
        | undefined;
    }
    const known = state.peekSummary(name);
    if (known) return known.engine as string | undefined;
    const id = state.recordIdByName(name);
    if (id === undefined) return undefined;
    try {
      return (await state.record(id)).engine as string | undefined;
    } catch {
      return undefined; // reported by the lookup that follows
    }
  }

  /**
   * One profile by name, opening only its record.
   *
   * @param name Profile name.
   * @param state The vault to read (this session's by default).
   * @returns The profile.
   * @throws {HecateError} `profile_not_found`.
   */
  async find(name: string, state: UnlockedVault | ScopedVault = this.#state): Promise<Found> {
    if (state instanceof UnlockedVault) {
      const id = state.recordIdByName(name);
      if (id !== undefined) return foundOf(id, await state.record(id));
    } else {
      const hit = state.records().find((r) =>
        r.value.name === name && recordKindOf(r.value) === "profile"
      );
      if (hit) return foundOf(hit.id, hit.value);
    }
    throw new HecateError("profile_not_found", `No profile named "${name}"`, {
      hint: this.access.actor.kind === "apikey"
        ? "this API key may use only the profiles in its scope"
        : "list profiles with 'hecate server list'",
    });
  }

  /**
   * Changes the vault under the write lock: `fn` gets the newest file's state, which is then
   * written as the next generation (recorded through `saveVault`) and becomes this session's.
   *
   * @param fn The change; throwing leaves the file as it was.
   */
  async mutate(fn: (state: UnlockedVault) => void | Promise<void>): Promise<void> {
    const current = this.unlocked();
    await this.store.withLock(async () => {
      // Apply the change to the newest file, not to what this process read earlier.
      const fresh = await current.reloadCurrent(this.store);
      await fn(fresh);
      await saveVault(this.store, fresh, this.audit, this.access.actor);
      this.#state = fresh;
    });
  }

  /**
   * Runs an operation that needs the master password and audits it: a failure is recorded (best
   * effort) and rethrown; success is recorded, and a success record that cannot be written fails
   * the call.
   *
   * @param event The audit event.
   * @param profile The profile concerned, if any.
   * @param fn The operation.
   * @param detail Detail for the record, computed after `fn` ran.
   */
  async audited(
    event: AuditEventName,
    profile: string | undefined,
    fn: () => Promise<void>,
    detail?: () => { [key: string]: DetailValue },
  ): Promise<void> {
    const base = { event, actor: this.access.actor, ...(profile ? { profile } : {}) };
    const extra = () => (detail ? { detail: detail() } : {});
    try {
      this.unlocked();
      if (MASTER_ONLY.has(event)) this.requireMasterPassword();
      await fn();
    } catch (e) {
      await this.audit.append({ ...base, outcome: "fail", reason: reasonOf(e), ...extra() })
        .catch(() => {});
      throw e;
    }
    await this.audit.append({ ...base, outcome: "ok", ...extra() });
  }

  /**
   * The side key of a record (for the offline secret cache), with the vault's id.
   *
   * @param id The record id.
   * @returns The key and vault id, or undefined when this session cannot open the record.
   */
  async sideKey(
    id: string,
  ): Promise<{ key: Uint8Array<ArrayBuffer>; vaultId: string } | undefined> {
    const state = this.#state;
    const held = this.#sideKeys.get(id);
    if (held?.state === state) return { key: held.key, vaultId: state.id };
    const key = await state.recordSideKey(id);
    if (!key) return undefined;
    if (held) this.#retiredSideKeys.push(held.key);
    this.#sideKeys.set(id, { state, key });
    return { key, vaultId: state.id };
  }

  /**
   * The gate every release of a profile's secrets goes through: the profile's own second factor
   * (if it has one), then the `profile.read` audit record. If that record cannot be written,
   * nothing is released.
   *
   * @param name Profile name.
   * @param beforeRecord Called with the profile once the second factor passed, just before the
   * `profile.read` record is written (a connect starts its sources' set-up there, so that it
   * overlaps the record's flush); it must not release anything.
   * @returns The profile (secrets included), the actor and the record id.
   */
  async released(
    name: string,
    beforeRecord?: (profile: Profile) => void,
  ): Promise<{ profile: Profile; actor: Actor; id: string }> {
    const { id, profile, totp } = await this.find(name);
    const actor = this.access.actor;
    if (!totp && this.policy().totpProfiles.includes(name)) {
      // The policy names this profile but it has no code of its own: nothing is released.
      await this.audit.append({
        event: "profile.read",
        actor,
        profile: name,
        outcome: "fail",
        reason: "totp_failed",
      });
      throw new HecateError(
        "totp_failed",
        `The vault's policy requires a one-time code for "${name}", which has no TOTP enabled`,
        { hint: `enable it: 'hecate totp setup --server ${name}'` },
      );
    }
    if (totp && !this.passed.has(`profile:${id}`)) {
      const password = this.#state instanceof UnlockedVault;
      const ok = await requireSecondFactor(
        this.access,
        totp,
        `profile:${id}`,
        `profile "${name}"`,
        "connect",
        password,
        name,
      );
      if (ok.kind === "recovery") {
        await this.mutate(async (state) => {
          const hit = await this.find(name, state);
          const value = { ...hit.profile, totp: spendRecoveryCode(hit.totp, ok.spent) };
          state.putRecord(value as unknown as Record<string, unknown>, hit.id);
        });
      }
      this.passed.add(`profile:${id}`);
      await this.access.lockout.succeeded(this.access.subject);
    }
    beforeRecord?.(profile);
    await this.audit.append({ event: "profile.read", actor, profile: name, outcome: "ok" });
    return { profile, actor, id };
  }
}

function foundOf(id: string, value: JsonObject): Found {
  const { totp, ...rest } = value;
  return { id, profile: profileFromRecord(rest), totp: totpConfigOf(totp) };
}
