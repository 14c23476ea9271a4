/**
 * Who is asking and what they must pass: the actor recorded in audit lines, lockout counting,
 * and the one-time-code check shared by unlock (vault TOTP) and connect (profile TOTP).
 *
 * @module
 */

import type { Actor, AuditSink } from "../audit/log.ts";
import { LockedOut, type Lockout } from "../access/lockout.ts";
import { type SecondFactorResult, type TotpConfig, verifySecondFactor } from "../access/totp.ts";
import { HecateError } from "../errors.ts";
import { reasonOf } from "./util.ts";

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
}

/**
 * Starts an attempt for the context's subject (see {@link Lockout.begin}); a refusal is audited.
 *
 * @param ctx Access state.
 * @param event Audit event for a refusal.
 * @param profile The profile concerned, if any.
 * @returns The attempt token.
 * @throws {HecateError} `locked_out`.
 */
export async function beginAttempt(
  ctx: Pick<AccessContext, "actor" | "subject" | "lockout" | "audit">,
  event: string,
  profile?: string,
): Promise<string> {
  try {
    return await ctx.lockout.begin(ctx.subject);
  } catch (e) {
    const base = { actor: ctx.actor, ...(profile ? { profile } : {}) };
    await ctx.audit.append({ event, ...base, outcome: "fail", reason: reasonOf(e) })
      .catch(() => {});
    if (e instanceof LockedOut && e.started) {
      await ctx.audit.append({
        event: "lockout",
        ...base,
        outcome: "fail",
        reason: `locked_out until ${e.until}`,
      }).catch(() => {});
    }
    throw e;
  }
}

/**
 * Audits a failed attempt (already counted by {@link beginAttempt}) and the lockout it may start.
 * Audit failures here are swallowed: the original error is what the caller throws.
 *
 * @param ctx Access state.
 * @param event The audit event (`unlock`, `connect`, `totp.disable`, ...).
 * @param e The failure.
 * @param profile The profile concerned, if any.
 */
export async function recordFailure(
  ctx: Pick<AccessContext, "actor" | "subject" | "lockout" | "audit">,
  event: string,
  e: unknown,
  profile?: string,
): Promise<void> {
  const base = { actor: ctx.actor, ...(profile ? { profile } : {}) };
  await ctx.audit.append({ event, ...base, outcome: "fail", reason: reasonOf(e) }).catch(() => {});
  const until = await ctx.lockout.failed(ctx.subject).catch(() => undefined);
  if (until) {
    await ctx.audit.append({
      event: "lockout",
      ...base,
      outcome: "fail",
      reason: `locked_out until ${until.toISOString()}`,
    }).catch(() => {});
  }
}

/**
 * Requires and checks a one-time code (or, when allowed, a recovery code), with lockout.
 *
 * @param ctx Access state.
 * @param config The TOTP setup.
 * @param secretId `vault` or `profile:<record id>` (replay guard key).
 * @param what What the code is for, shown in a prompt and in the error.
 * @param event Audit event for a failure.
 * @param allowRecovery Whether a recovery code is accepted (the caller can spend it).
 * @param profile Profile name, if the code guards one.
 * @param token The attempt token when the caller already began the attempt (unlock: password
 * and code are one attempt); otherwise this call begins and ends its own.
 * @returns What was accepted.
 * @throws {HecateError} `locked_out`, `totp_failed`.
 */
export async function requireSecondFactor(
  ctx: AccessContext,
  config: TotpConfig,
  secretId: string,
  what: string,
  event: string,
  allowRecovery: boolean,
  profile?: string,
  token?: string,
): Promise<SecondFactorResult> {
  const own = token === undefined;
  const attempt = token ?? await beginAttempt(ctx, event, profile);
  const code = await ctx.code(what);
  if (code === undefined || code.trim() === "") {
    const e = new HecateError("totp_failed", `A one-time code is required for ${what}`, {
      hint: "give it with --totp CODE or HECATE_TOTP, or run on a terminal to be asked",
    });
    // No code is no guess: the attempt does not count toward lockout.
    await ctx.lockout.release(ctx.subject, attempt).catch(() => {});
    await ctx.audit.append({
      event,
      actor: ctx.actor,
      ...(profile ? { profile } : {}),
      outcome: "fail",
      reason: e.code,
    }).catch(() => {});
    throw e;
  }
  let result: SecondFactorResult;
  try {
    result = await verifySecondFactor(config, code, {
      home: ctx.home,
      secretId,
      now: ctx.now(),
      allowRecovery,
    });
  } catch (e) {
    await recordFailure(ctx, event, e, profile);
    throw e;
  }
  if (own) await ctx.lockout.succeeded(ctx.subject);
  return result;
}
