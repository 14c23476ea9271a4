/**
 * `vault.totp`: one-time codes (TOTP) for the vault and for single profiles.
 *
 * @module
 */

import {
  hashRecoveryCode,
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  spendRecoveryCode,
  TOTP_STATE_FILE,
  type TotpConfig,
  totpConfigOf,
  totpUri,
  verifySecondFactor,
} from "../access/totp.ts";
import { updateState } from "../access/state_file.ts";
import { HecateError } from "../errors.ts";
import type { VaultCore } from "./_core.ts";
import { failureOf, guarded } from "./access.ts";
import { reasonOf } from "./util.ts";

/** A TOTP setup in progress: show `uri` (or its QR code), then call {@link VaultTotp.enable}. */
export interface TotpSetup {
  /** Profile name, or undefined for the vault. */
  profile: string | undefined;
  /** The new secret, base32 (show it once). */
  secret: string;
  /** The `otpauth://` URI (contains the secret). */
  uri: string;
}

/**
 * Spends a vault recovery code used at unlock: checked and removed in one locked write of the
 * newest vault, so two processes cannot both spend it (the second gets `totp_failed`). Audited as
 * `totp.recovery`. Used by `openVault`; not part of the library API.
 *
 * @param core The vault just unlocked.
 * @param spent The recovery code given.
 */
export async function spendVaultRecoveryCode(core: VaultCore, spent: string): Promise<void> {
  let left = 0;
  try {
    await core.mutate((state) => {
      const totp = spendRecoveryCode(totpConfigOf(state.meta.totp), spent);
      state.meta = { ...state.meta, totp };
      left = totp.recovery.length;
    });
  } catch (e) {
    await core.audit.append({
      event: "totp.recovery",
      actor: core.actor,
      outcome: "fail",
      reason: reasonOf(e),
    }).catch(() => {});
    throw e;
  }
  await core.audit.append({
    event: "totp.recovery",
    actor: core.actor,
    outcome: "ok",
    reason: `${left} recovery codes left`,
  });
}

/**
 * TOTP of an open vault (`vault.totp`); all need the master password. Enabling and disabling are
 * audited as `totp.enable` and `totp.disable`.
 *
 * @example
 * ```ts ignore
 * const setup = await vault.totp.beginSetup("billing"); // show setup.uri as a QR code
 * const recovery = await vault.totp.enable(setup, codeFromTheApp); // show these once
 * console.log(vault.totp.status()); // { vault: false, profiles: ["billing"] }
 * ```
 */
export class VaultTotp {
  readonly #core: VaultCore;

  /** @internal Reached as `vault.totp`. */
  constructor(core: VaultCore) {
    this.#core = core;
  }

  /**
   * Whether TOTP is on for the vault and which profiles require it.
   *
   * @returns The vault flag and profile names.
   */
  status(): { vault: boolean; profiles: string[] } {
    const state = this.#core.unlocked();
    return {
      vault: totpConfigOf(state.meta.totp) !== undefined,
      profiles: this.#core.summaries().filter((r) => r.summary.totp === true).map((r) =>
        String(r.summary.name)
      ).sort(),
    };
  }

  /**
   * Starts a TOTP setup: makes a secret. Nothing is stored until {@link VaultTotp.enable} gets a
   * valid code for it.
   *
   * @param profile A profile name, or undefined for the whole vault.
   * @param issuer Issuer shown in authenticator apps.
   * @returns The secret and its URI.
   */
  async beginSetup(profile?: string, issuer = "Hecate"): Promise<TotpSetup> {
    const state = this.#core.unlocked();
    if (profile !== undefined && (await this.#core.find(profile, state)).totp) {
      throw new HecateError("already_exists", `TOTP is already on for profile "${profile}"`);
    }
    if (profile === undefined && totpConfigOf(state.meta.totp)) {
      throw new HecateError("already_exists", "TOTP is already on for the vault");
    }
    const secret = await newTotpSecret();
    return { profile, secret, uri: await totpUri(secret, profile ?? "vault", issuer) };
  }

  /**
   * Enables TOTP once a code from the new secret checks out, and returns one-time recovery codes
   * (only their hashes are stored).
   *
   * @param setup What {@link VaultTotp.beginSetup} returned.
   * @param code A current code from the authenticator.
   * @returns Ten recovery codes: show them once.
   * @throws {HecateError} `totp_failed` for a wrong code.
   */
  async enable(setup: TotpSetup, code: string): Promise<string[]> {
    const core = this.#core;
    const codes = newRecoveryCodes();
    await core.audited("totp.enable", setup.profile, async () => {
      const step = await matchTotp(setup.secret, code.trim(), core.access.now());
      if (step === null) {
        throw new HecateError("totp_failed", "The one-time code does not match the new secret", {
          hint: "check the authenticator's clock and try again with the next code",
        });
      }
      const config: TotpConfig = {
        secret: setup.secret,
        recovery: await Promise.all(codes.map(hashRecoveryCode)),
        created: core.access.now().toISOString(),
      };
      await core.mutate(async (state) => {
        if (setup.profile === undefined) {
          state.meta = { ...state.meta, totp: config };
          return;
        }
        const hit = await core.find(setup.profile, state);
        state.putRecord(
          { ...hit.profile, totp: config } as unknown as Record<string, unknown>,
          hit.id,
        );
      });
      // The confirming code is spent: it cannot be replayed at the next unlock.
      const secretId = setup.profile === undefined
        ? "vault"
        : `profile:${(await core.find(setup.profile)).id}`;
      await updateState(core.home, TOTP_STATE_FILE, (s) => {
        s[secretId] = step;
        return { write: true, result: undefined };
      });
    });
    return codes;
  }

  /**
   * Checks a one-time code and spends it: the same replay guard as unlock and connect, so a code
   * accepted here is refused afterwards (here, at unlock, or at connect). Recovery codes are not
   * accepted. A wrong or replayed code counts toward lockout; every check is audited as
   * `totp.verify` (never the code).
   *
   * @param profile A profile name, or undefined for the vault.
   * @param code The 6-digit code.
   * @throws {HecateError} `totp_failed` for a wrong or replayed code, or when TOTP is not on;
   * `locked_out`; `profile_not_found`.
   */
  async verify(profile: string | undefined, code: string): Promise<void> {
    const core = this.#core;
    const base = { event: "totp.verify" as const, actor: core.access.actor };
    const where = profile ? { profile } : {};
    let secretId = "vault";
    let config: TotpConfig | undefined;
    try {
      const state = core.unlocked();
      const hit = profile === undefined ? undefined : await core.find(profile, state);
      config = hit ? hit.totp : totpConfigOf(state.meta.totp);
      if (hit) secretId = `profile:${hit.id}`;
      if (!config) {
        throw new HecateError(
          "totp_failed",
          `TOTP is not on for ${profile ? `profile "${profile}"` : "the vault"}`,
          { hint: "enable it with `hecate totp setup`" },
        );
      }
      await core.access.lockout.check(core.access.subject);
    } catch (e) {
      await core.audit.append({ ...base, ...where, outcome: "fail", reason: reasonOf(e) })
        .catch(() => {});
      throw e;
    }
    const setup = config;
    const given = code.trim();
    await guarded(
      core.access,
      "totp.verify",
      async () => {
        // Only a one-time code: a recovery code is spent by disable/unlock, never by a check.
        if (!/^\d{6}$/.test(given)) {
          throw new HecateError("totp_failed", "The one-time code is not 6 digits", {
            hint: "give the current code from your authenticator",
          });
        }
        return await verifySecondFactor(setup, given, {
          home: core.home,
          secretId,
          now: core.access.now(),
          allowRecovery: false,
        });
      },
      failureOf("totp_failed"),
      profile,
    );
    await core.access.lockout.succeeded(core.access.subject);
    await core.audit.append({ ...base, ...where, outcome: "ok" });
  }

  /**
   * Turns TOTP off for the vault or a profile. Needs a current code or an unused recovery code
   * (the master password is already held by whoever opened this vault).
   *
   * @param profile A profile name, or undefined for the vault.
   * @param code A one-time code or a recovery code (not needed for the vault when this session
   * already passed the vault's code at unlock).
   * @throws {HecateError} `totp_failed` for a wrong code, `usage` when TOTP is off.
   */
  async disable(profile: string | undefined, code: string | undefined): Promise<void> {
    const core = this.#core;
    await core.audited("totp.disable", profile, async () => {
      const state = core.unlocked();
      const hit = profile === undefined ? undefined : await core.find(profile, state);
      const config = hit ? hit.totp : totpConfigOf(state.meta.totp);
      if (!config) {
        throw new HecateError(
          "usage",
          `TOTP is not on for ${profile ? `profile "${profile}"` : "the vault"}`,
        );
      }
      refuseWhileRequired(core, profile);
      const secretId = hit ? `profile:${hit.id}` : "vault";
      // The vault's own code was just checked at unlock (and is spent); do not ask twice.
      if (!core.passed.has(secretId)) {
        await core.access.lockout.check(core.access.subject);
        await guarded(
          core.access,
          "totp.disable",
          () =>
            verifySecondFactor(config, code ?? "", {
              home: core.home,
              secretId,
              now: core.access.now(),
              allowRecovery: true,
            }),
          failureOf("totp_failed"),
          profile,
        );
      }
      await core.mutate(async (s) => {
        if (profile === undefined) {
          const { totp: _off, ...rest } = s.meta;
          s.meta = rest;
          return;
        }
        const fresh = await core.find(profile, s);
        s.putRecord(fresh.profile as unknown as Record<string, unknown>, fresh.id);
      });
    });
  }
}

/** Turning off a code the vault's policy requires is refused: change the policy first. */
function refuseWhileRequired(core: VaultCore, profile: string | undefined): void {
  const policy = core.policy();
  const required = profile === undefined
    ? policy.totpUnlock
    : policy.totpProfiles.includes(profile);
  if (!required) return;
  throw new HecateError(
    "usage",
    `The vault's policy requires TOTP for ${profile ? `profile "${profile}"` : "unlock"}`,
    {
      hint: profile
        ? "take it out of totp.profiles first ('hecate policy set totp.profiles ...')"
        : "'hecate policy set totp.unlock off' first",
    },
  );
}
