/**
 * Who is asking and what they must pass: the actor recorded in audit lines, lockout counting,
 * and the one-time-code check shared by unlock (vault TOTP) and connect (profile TOTP).
 *
 * @module
 */

import type { StoredPolicy } from "../policy/policy.ts";
import type { Actor, AuditSink } from "../audit/log.ts";
import type { Lockout } from "../access/lockout.ts";
import { type SecondFactorResult, type TotpConfig, verifySecondFactor } from "../access/totp.ts";
import { HecateError } from "../errors.ts";
import { reasonOf } from "./util.ts";
import type { AuditEventName } from "../audit/events.ts";

/**
 * Supplies a one-time code when one is required (a prompt, `--totp`, `HECATE_TOTP`), or
 * undefined when there is none. Called only when a code is needed.
 */
export type CodeSource = (what: string) => Promise<string | undefined>;

/** The access state of one open vault. */
export interface AccessContext {
  /** Who is acting. */
  actor: Actor;
  /** The lockout subject: `password` or `apikey:<id>`. */
  subject: string;
  /** Lockout counters. */
  lockout: Lockout;
  /** Audit sink. */
  audit: AuditSink;
  /** Home directory. */
  home: string;
  /** Clock. */
  now: () => Date;
  /** One-time code source. */
  code: CodeSource;
  /**
   * The home's copy of the stored policy, read before the unlock: what an API-key session (which
   * cannot open the sealed meta) enforces.
   */
  policyCopy?: StoredPolicy | undefined;
}

/** What {@link guarded} needs of the access state. */
export type GuardContext = Pick<AccessContext, "actor" | "subject" | "lockout" | "audit">;

/**
 * Runs a credential check under lockout (see {@link Lockout.guard}) and audits its failure:
 * a counted failure as `event` with its reason (plus a `lockout` event when it started one), a
 * refusal as `event` with `locked_out`, any other error as `event` with its code.
 *
 * @param ctx Actor, subject, lockout, audit.
 * @param event The audit event.
 * @param fn The check.
 * @param isFailure Whether an error means a wrong credential (counted toward lockout).
 * @param profile The profile concerned, if any.
 * @returns What `fn` returned.
 */
export async function guarded<T>(
  ctx: GuardContext,
  event: AuditEventName,
  fn: () => Promise<T>,
  isFailure: (e: unknown) => boolean,
  profile?: string,
): Promise<T> {
  const base = { event, actor: ctx.actor, ...(profile ? { profile } : {}) };
  let audited = false;
  try {
    return await ctx.lockout.guard(ctx.subject, fn, isFailure, async (e, until) => {
      audited = true;
      await ctx.audit.append({ ...base, outcome: "fail", reason: reasonOf(e) }).catch(() => {});
      if (until) {
        await ctx.audit.append({
          ...base,
          event: "lockout",
          outcome: "fail",
          reason: `locked_out until ${until.toISOString()}`,
        }).catch(() => {});
      }
    });
  } catch (e) {
    // The original error matters more than a failed failure record.
    if (!audited) {
      await ctx.audit.append({ ...base, outcome: "fail", reason: reasonOf(e) }).catch(() => {});
    }
    throw e;
  }
}

/**
 * Whether an error is a wrong credential of one of the given codes.
 *
 * @param codes Error codes that count as failures.
 * @returns A predicate for {@link guarded}.
 */
export function failureOf(...codes: string[]): (e: unknown) => boolean {
  return (e) => e instanceof HecateError && codes.includes(e.code);
}

/**
 * Requires and checks a one-time code (or, when allowed, a recovery code), with lockout. The code
 * is asked for outside the attempt lock; a missing code is refused without counting (no guess
 * was made). The caller clears the subject's failures once the whole attempt succeeded.
 *
 * @param ctx Access state.
 * @param config The TOTP setup.
 * @param secretId `vault` or `profile:<record id>` (replay guard key).
 * @param what What the code is for, shown in a prompt and in the error.
 * @param event Audit event for a failure.
 * @param allowRecovery Whether a recovery code is accepted (the caller can spend it).
 * @param profile Profile name, if the code guards one.
 * @returns What was accepted.
 * @throws {HecateError} `locked_out`, `totp_failed`.
 */
export async function requireSecondFactor(
  ctx: AccessContext,
  config: TotpConfig,
  secretId: string,
  what: string,
  event: AuditEventName,
  allowRecovery: boolean,
  profile?: string,
): Promise<SecondFactorResult> {
  const base = { event, actor: ctx.actor, ...(profile ? { profile } : {}) };
  try {
    await ctx.lockout.check(ctx.subject);
  } catch (e) {
    await ctx.audit.append({ ...base, outcome: "fail", reason: reasonOf(e) }).catch(() => {});
    throw e;
  }
  const code = await ctx.code(what);
  if (code === undefined || code.trim() === "") {
    const e = new HecateError("totp_failed", `A one-time code is required for ${what}`, {
      hint: "give it with --totp CODE or HECATE_TOTP, or run on a terminal to be asked",
    });
    await ctx.audit.append({ ...base, outcome: "fail", reason: e.code }).catch(() => {});
    throw e;
  }
  return await guarded(
    ctx,
    event,
    () =>
      verifySecondFactor(config, code, { home: ctx.home, secretId, now: ctx.now(), allowRecovery }),
    failureOf("totp_failed"),
    profile,
  );
}
