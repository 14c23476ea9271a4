/**
 * What an importer produces and how it is applied: profiles to add, and a report of what could
 * not be brought over and why. Applying takes an automatic backup first and never replaces an
 * existing profile.
 *
 * @module
 */

import type { ProfileInput } from "../api/profiles.ts";
import type { Vault } from "../api/vault.ts";
import { TOTP_PERIOD, totpCode } from "../access/totp.ts";
import { describeMissing } from "../incomplete.ts";

/**
 * One line of an import report.
 *
 * @example
 * ```ts ignore
 * const report: ImportNote[] = await applyImport(vault, plan, { dryRun: true });
 * ```
 */
export interface ImportNote {
  /** The profile (source name) it concerns, if any. */
  profile?: string;
  /** `imported`, `skipped` (not brought over), or `note` (brought over with a caveat). */
  kind: "imported" | "skipped" | "note";
  /** What happened, one line, never a secret. */
  message: string;
}

/**
 * Profiles an importer found, and its notes so far.
 *
 * @example
 * ```ts ignore
 * const plan: ImportPlan = await planDotenvImport(".env", "app");
 * console.log(plan.profiles.length, plan.notes);
 * ```
 */
export interface ImportPlan {
  /** Where the data came from, for the report. */
  source: string;
  /** Profiles to add. */
  profiles: ProfileInput[];
  /** Notes and skipped entries. */
  notes: ImportNote[];
  /** TOTP secrets to carry over to profiles of this plan (as their per-profile TOTP). */
  totp?: PlannedTotp[];
}

/**
 * A TOTP secret an importer found for one of its profiles.
 *
 * @example
 * ```ts ignore
 * const planned: PlannedTotp = { profile: "billing", secret: "JBSWY3DPEHPK3PXPJBSWY3DP" };
 * ```
 */
export interface PlannedTotp {
  /** The Hecate profile name. */
  profile: string;
  /** The shared secret, base32. */
  secret: string;
}

/**
 * Options for {@link applyImport}.
 *
 * @example
 * ```ts ignore
 * await applyImport(vault, plan, {
 *   onRecoveryCodes: (profile, codes) => console.log(profile, codes.join(" ")),
 * });
 * ```
 */
export interface ApplyImportOptions {
  /** Report without changing anything. */
  dryRun?: boolean;
  /**
   * Receives the recovery codes made for each profile whose TOTP was carried over (show them
   * once: only their hashes are stored). Without it the codes are not shown anywhere.
   */
  onRecoveryCodes?: (profile: string, codes: string[]) => void | Promise<void>;
}

const NAME_OK = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Turns any text into a valid profile name (letters, digits, `.`, `_`, `-`; at most 64).
 *
 * @param raw The source's name.
 * @returns A valid name (never empty).
 */
export function profileNameFrom(raw: string): string {
  if (NAME_OK.test(raw)) return raw;
  let n = raw.normalize("NFKD").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  n = n.slice(0, 64).replace(/-+$/, "");
  return n || "imported";
}

/**
 * Adds the plan's profiles to the vault: an automatic backup first (when there is anything to
 * add), then every profile in one write of the vault; a name that exists already, or a profile the
 * vault refuses (e.g. an authentication method this build lacks), is skipped and reported.
 *
 * TOTP secrets in the plan become the per-profile TOTP of profiles added by this run (never of a
 * profile that existed already), so the authenticator entries people have keep working.
 *
 * @param vault The open vault.
 * @param plan The importer's plan.
 * @param options `dryRun` reports without changing anything; `onRecoveryCodes` shows the
 * recovery codes of carried-over TOTP secrets.
 * @returns The full report.
 *
 * @example
 * ```ts ignore
 * const plan = await planPgpassImport(`${Deno.env.get("HOME")}/.pgpass`);
 * for (const n of await applyImport(vault, plan)) console.log(n.kind, n.profile, n.message);
 * ```
 */
export async function applyImport(
  vault: Vault,
  plan: ImportPlan,
  options: ApplyImportOptions = {},
): Promise<ImportNote[]> {
  const report: ImportNote[] = [...plan.notes];
  const fresh = plan.profiles.filter((p) => {
    if (!vault.profiles.has(p.name)) return true;
    report.push({
      profile: p.name,
      kind: "skipped",
      message: "a profile of that name exists already (it was left as it is)",
    });
    return false;
  });
  if (fresh.length > 0 && !options.dryRun) await vault.backups.auto("import");
  const added = new Set<string>();
  if (options.dryRun) {
    for (const p of fresh) {
      report.push({ profile: p.name, kind: "imported", message: "would be imported (dry run)" });
    }
  } else if (fresh.length > 0) {
    // One write of the vault for the whole import (not one per profile).
    const results = await vault.profiles.addMany(fresh);
    for (const [i, r] of results.entries()) {
      const p = fresh[i]!;
      if (r.error) {
        if (!["invalid_profile", "already_exists"].includes(r.error.code)) throw r.error;
        report.push({ profile: p.name, kind: "skipped", message: r.error.message });
        continue;
      }
      report.push({
        profile: p.name,
        kind: "imported",
        message: `imported (${p.engine}, auth ${p.auth ?? "sql"})${
          p.incomplete ? `, INCOMPLETE: missing ${describeMissing(p.incomplete.missing)}` : ""
        }`,
      });
      added.add(p.name);
    }
  }
  for (const t of plan.totp ?? []) {
    if (options.dryRun && fresh.some((p) => p.name === t.profile)) {
      report.push({ profile: t.profile, kind: "note", message: "TOTP would be carried over" });
      continue;
    }
    if (!added.has(t.profile)) {
      report.push({
        profile: t.profile,
        kind: "skipped",
        message: "TOTP secret not carried over: the profile was not added by this import",
      });
      continue;
    }
    // Confirm with the previous step's code: the authenticator's current code stays usable.
    const code = await totpCode(t.secret, new Date(Date.now() - TOTP_PERIOD * 1000));
    const codes = await vault.totp.enable({ profile: t.profile, secret: t.secret, uri: "" }, code);
    await options.onRecoveryCodes?.(t.profile, codes);
    report.push({
      profile: t.profile,
      kind: "imported",
      message: "TOTP carried over: the authenticator's codes for it now guard this profile",
    });
  }
  return report;
}
