/**
 * Resolving a profile's secrets through the registered sources: each secret field's references in
 * priority order with a per-source timeout (the first that answers wins), the whole-connection
 * secrets of `sources.from`, the login a dynamic source supplies with the password, the offline
 * cache when every source fails, one audit record per attempt, and the leases handed back to the
 * caller (who renews and revokes them).
 *
 * @module
 */

import { HecateError } from "../../src/errors.ts";
import { type Profile, refsOf, type SecretValue } from "../../src/profile.ts";
import { toHex, utf8 } from "../../src/vault/encoding.ts";
import { sha256 } from "../../src/sha256.ts";
import { isSourceError, type SourceStatus, statusOf } from "./errors.ts";
import { parseRef, sourceFor } from "./registry.ts";
import type { Lease, ParsedRef, Resolved, SecretSource, SourceContext } from "./source.ts";

/** How long one source may take, unless the profile says otherwise. */
export const DEFAULT_SOURCE_TIMEOUT_MS = 5_000;

/** Prefix of the profile secrets that are credentials for a source, not database secrets. */
export const SOURCE_CREDENTIAL_PREFIX = "source.";

/** A lease obtained while resolving, with what its keeper needs to renew or revoke it. */
export interface HeldLease {
  /** The source that granted it. */
  readonly source: SecretSource;
  /** The reference it was obtained for. */
  readonly ref: ParsedRef;
  /** The lease. */
  readonly lease: Lease;
  /** The secret field (or `from`) it serves. */
  readonly field: string;
  /**
   * A context for `renew`/`revoke` calls: the source's credentials and environment, with the
   * given signal.
   */
  context(signal: AbortSignal): SourceContext;
}

/** One resolution attempt, as the audit trail records it (no value, no token, no lease id). */
export interface ResolutionRecord {
  /** The secret field (`password`, `ssh.0.password`, ...) or `from`. */
  field: string;
  /** The scheme of the reference. */
  scheme: string;
  /** The reference as stored (a location). */
  ref: string;
  /** `ok`, `fail`, or `cached` (a value from the offline cache was used). */
  outcome: "ok" | "fail" | "cached";
  /** Why it failed (or, for `cached`, why the sources did). */
  reason?: SourceStatus | "cache_expired" | "cache_unreadable" | "cache_missing";
  /** Milliseconds the attempt took. */
  latencyMs: number;
  /** The version the source served, if any. */
  version?: string;
  /** SHA-256 (hex) of the lease id, for a dynamic credential. */
  leaseSha256?: string;
  /** Seconds since a cached value was resolved. */
  cacheAgeSeconds?: number;
}

/** One cached field: what was resolved, when, and until when it may stand in. */
export interface CachedField {
  /** The resolved fields that the profile used (the value, a dynamic login's user). */
  fields: Record<string, string>;
  /** The reference that gave it. */
  ref: string;
  /** When it was resolved (ms since the epoch). */
  at: number;
  /** Not used from this time on (the TTL, or the lease's end if sooner). */
  until: number;
}

/** The offline cache of one profile (see ./cache.ts). */
export interface SecretCache {
  /** The profile's entry, by field; undefined when there is none. */
  load(): Promise<Record<string, CachedField> | undefined>;
  /** Replaces the profile's entry. */
  save(entry: Record<string, CachedField>): Promise<void>;
}

/** Options for {@link resolveProfile}. */
export interface ResolveOptions {
  /** Environment lookup for sources. @default {Deno.env.get} */
  env?: (name: string) => string | undefined;
  /** Receives each attempt (for the audit trail); awaited, so a failure to record stops the use. */
  onAttempt?: (record: ResolutionRecord) => void | Promise<void>;
  /** The profile's offline cache, when it has `sources.cacheTtlMs`. */
  cache?: SecretCache | undefined;
  /** Warnings for the user (a cached value used). @default {stderr} */
  onWarning?: (message: string) => void;
  /** The clock. @default {Date.now} */
  now?: () => number;
  /** Aborts every pending source call. */
  signal?: AbortSignal;
}

/** What {@link resolveProfile} found. */
export interface ResolvedProfile {
  /** Database and tunnel secrets by field, in clear (memory only). */
  secrets: Record<string, string>;
  /** A login user supplied by the password's source (a dynamic login), if any. */
  user?: string;
  /** Connection fields from `sources.from`, normalised, if the profile has it. */
  from?: FromFields;
  /** Leases obtained; the caller renews and revokes them. */
  leases: HeldLease[];
}

/** The common whole-connection shape (as AWS stores RDS secrets), normalised. */
export interface FromFields {
  engine?: string;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
}

function defaultWarning(message: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`hecate: warning: ${message}\n`));
  } catch {
    // stderr closed: nothing to do
  }
}

/**
 * The credentials a profile stores for a scheme's source (`source.<scheme>.<name>`).
 *
 * @param profile The profile.
 * @param scheme The scheme.
 * @returns Credentials by name.
 */
export function credentialsFor(profile: Profile, scheme: string): Record<string, string> {
  const out: Record<string, string> = {};
  const prefix = `${SOURCE_CREDENTIAL_PREFIX}${scheme}.`;
  for (const [k, s] of Object.entries(profile.secrets)) {
    if (k.startsWith(prefix) && "value" in s) out[k.slice(prefix.length)] = s.value;
  }
  return out;
}

/**
 * Lets the sources of a profile's first references start their set-up (modules, credential
 * chain; see {@link SecretSource.prepare}) while the caller writes the `profile.read` record, so
 * that it overlaps the record's disk flush. Only the first reference of each field: a failover
 * reference is used only if the first fails. Nothing is resolved or awaited here, and no error
 * escapes.
 *
 * @param profile The profile about to be resolved.
 * @param env Environment lookup, as the resolution will use it. @default {Deno.env.get}
 */
export function prepareProfile(
  profile: Profile,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): void {
  const firsts = [profile.sources?.from?.[0]];
  for (const [field, s] of Object.entries(profile.secrets)) {
    if (!isSourceCredential(field)) firsts.push(refsOf(s as SecretValue)?.[0]);
  }
  for (const raw of firsts) {
    if (raw === undefined) continue;
    try {
      const ref = parseRef(raw);
      sourceFor(ref.scheme)?.prepare?.(ref, env);
    } catch {
      // An unparsable reference or a source's mistake: the resolution reports it.
    }
  }
}

/** Whether a stored secret is a source credential rather than a database or tunnel secret. */
export function isSourceCredential(field: string): boolean {
  return field.startsWith(SOURCE_CREDENTIAL_PREFIX);
}

/**
 * Races a source call against the timeout: a source that ignores its signal still loses.
 *
 * @param work The call, given the signal to honour.
 * @param ms The timeout.
 * @param outer A caller's signal.
 * @returns What the call returned.
 * @throws {TimedOut} when the time ran out first.
 */
export function withTimeout<T>(
  work: (signal: AbortSignal) => Promise<T>,
  ms: number,
  outer?: AbortSignal,
): Promise<T> {
  const ctl = new AbortController();
  const signals = [ctl.signal, ...(outer ? [outer] : [])];
  const signal = AbortSignal.any(signals);
  // AbortSignal.timeout, not setTimeout: Deno 2.9's global setTimeout is the Node layer's
  // (node:timers and about 20 modules, 7-14 ms on a process's first call), which nothing else on
  // the cron path loads. The timer keeps the process alive only while it has a listener, so the
  // listener is removed when the race is decided.
  // Timers take at most 2^31-1 ms (about 24.8 days); a longer one would fire at once.
  const limit = AbortSignal.timeout(Math.min(ms, 2 ** 31 - 1));
  let onLimit: (() => void) | undefined;
  const timeout = new Promise<never>((_, reject) => {
    onLimit = () => {
      ctl.abort();
      reject(new TimedOut());
    };
    limit.addEventListener("abort", onLimit, { once: true });
    outer?.addEventListener("abort", () => reject(new TimedOut()), { once: true });
  });
  // The loser must never surface as an unhandled rejection.
  timeout.catch(() => {});
  // A source that throws instead of rejecting is a rejection like any other (and the timer is
  // still released).
  const call = (async () => await work(signal))();
  return Promise.race([call, timeout]).finally(() => limit.removeEventListener("abort", onLimit!));
}

/** What {@link withTimeout} throws when the time ran out. */
export class TimedOut extends Error {}

/** The lease id's hash, as audited. */
function leaseHash(lease: Lease): string {
  return toHex(sha256(utf8(lease.id)));
}

/** Checks a source's answer: string fields only (a source returning garbage is `malformed`). */
function checkAnswer(r: unknown): Resolved {
  const a = r as Resolved | undefined;
  if (!a || typeof a !== "object" || !a.fields || typeof a.fields !== "object") {
    throw new Malformed();
  }
  for (const v of Object.values(a.fields)) if (typeof v !== "string") throw new Malformed();
  if (a.version !== undefined && typeof a.version !== "string") throw new Malformed();
  if (a.lease !== undefined) {
    const l = a.lease;
    if (
      typeof l !== "object" || typeof l.id !== "string" || typeof l.durationSeconds !== "number" ||
      typeof l.obtainedAt !== "number"
    ) throw new Malformed();
  }
  return a;
}

class Malformed extends Error {}
class FieldMissing extends Error {}

/** The error for a failed attempt: the framework's own words, never a source's free text. */
function attemptError(title: string, raw: string, status: SourceStatus, e: unknown): HecateError {
  // A message made with sourceError was written for users, its specific hint included (also for
  // `failed`: a credential_process exit code, a refused endpoint); anything else may carry what a
  // source received (a body, a token), so only the status is named.
  if (isSourceError(e) && e.code === "secret_unresolved" && statusOf(e) === status) return e;
  const hints: Record<SourceStatus, string> = {
    unreachable: "check that the source is up and reachable",
    timed_out:
      "the source did not answer in time; raise it with 'hecate server edit --source-timeout'",
    forbidden: "check the source's credentials and their policy",
    not_found: "check the reference",
    field_missing: "check the #FIELD part of the reference",
    lease_expired: "the credentials' lease ended; connect again for new ones",
    malformed: "the source's answer is not what Hecate expects",
    failed: "check the source",
  };
  return new HecateError(
    "secret_unresolved",
    `Secret source ${title}: "${raw}": ${status.replace("_", " ")}`,
    { hint: hints[status] },
  );
}

/** Picks the value for `field` from a source's fields. */
function pick(field: string, ref: ParsedRef, fields: Readonly<Record<string, string>>) {
  if (ref.field !== undefined) return fields[ref.field];
  const leaf = field.slice(field.lastIndexOf(".") + 1);
  if (fields[leaf] !== undefined) return fields[leaf];
  if (fields.value !== undefined) return fields.value;
  const keys = Object.keys(fields);
  return keys.length === 1 ? fields[keys[0]!] : undefined;
}

interface Attempted {
  fields: Record<string, string>;
  ref: ParsedRef;
  lease?: HeldLease;
}

/** The resolution of one field's references: the first that answers, each attempt recorded. */
async function resolveRefs(
  profile: Profile,
  field: string,
  refs: readonly string[],
  accept: (ref: ParsedRef, fields: Readonly<Record<string, string>>) => Record<string, string>,
  opts: ResolveOptions,
  errors: HecateError[],
): Promise<Attempted | undefined> {
  const timeoutMs = profile.sources?.timeoutMs ?? DEFAULT_SOURCE_TIMEOUT_MS;
  const env = opts.env ?? ((n: string) => Deno.env.get(n));
  for (const raw of refs) {
    const t0 = performance.now();
    let ref: ParsedRef | undefined;
    let source: SecretSource | undefined;
    let status: SourceStatus = "failed";
    let err: unknown;
    const scheme = raw.slice(0, Math.max(0, raw.indexOf(":")));
    try {
      try {
        ref = parseRef(raw);
      } catch {
        // A stored reference whose source is not registered here (or no longer parses).
        status = "malformed";
        throw new Malformed();
      }
      source = sourceFor(ref.scheme)!;
      const credentials = credentialsFor(profile, source.credentialScope ?? ref.scheme);
      const params = profile.params ?? {};
      const ctxFor = (signal: AbortSignal): SourceContext => ({ signal, credentials, env, params });
      const answer = checkAnswer(
        await withTimeout(
          (signal) => source!.resolve(ref!, ctxFor(signal)),
          timeoutMs,
          opts.signal,
        ),
      );
      let fields: Record<string, string>;
      try {
        fields = accept(ref, answer.fields);
      } catch (e) {
        status = e instanceof FieldMissing ? "field_missing" : "malformed";
        // A login made for an answer that cannot be used is given back at once.
        if (answer.lease) {
          await releaseLeases([{ source, ref, lease: answer.lease, field, context: ctxFor }]);
        }
        throw new Malformed();
      }
      const now = (opts.now ?? Date.now)();
      if (answer.lease && answer.lease.obtainedAt + answer.lease.durationSeconds * 1000 <= now) {
        status = "lease_expired";
        throw new Malformed();
      }
      await opts.onAttempt?.({
        field,
        scheme: ref.scheme,
        ref: raw,
        outcome: "ok",
        latencyMs: performance.now() - t0,
        ...(answer.version !== undefined ? { version: answer.version } : {}),
        ...(answer.lease ? { leaseSha256: leaseHash(answer.lease) } : {}),
      });
      const held: HeldLease | undefined = answer.lease
        ? { source, ref, lease: answer.lease, field, context: ctxFor }
        : undefined;
      return { fields, ref, ...(held ? { lease: held } : {}) };
    } catch (e) {
      if (e instanceof HecateError && e.code === "audit_failed") throw e;
      if (e instanceof TimedOut) status = "timed_out";
      else if (!(e instanceof Malformed)) status = statusOf(e);
      if (e instanceof Malformed && status === "failed") status = "malformed";
      err = e;
    }
    await opts.onAttempt?.({
      field,
      scheme,
      ref: raw,
      outcome: "fail",
      reason: status,
      latencyMs: performance.now() - t0,
    });
    errors.push(attemptError(source?.title ?? scheme, raw, status, err));
  }
  return undefined;
}

/**
 * Revokes leases that will not be handed to a caller (best effort, each within the default source
 * timeout): a resolution that failed after some of its fields got dynamic logins must not leave
 * them alive.
 *
 * @param leases The leases.
 */
export async function releaseLeases(leases: readonly HeldLease[]): Promise<void> {
  await Promise.all(leases.map(async (h) => {
    if (!h.source.revoke) return;
    await withTimeout(
      (signal) => h.source.revoke!(h.lease, h.context(signal)),
      DEFAULT_SOURCE_TIMEOUT_MS,
    ).catch(() => {});
  }));
}

/** The error when every reference of a field failed (and no cache stood in). */
function allFailed(profile: Profile, field: string, errors: HecateError[]): HecateError {
  if (errors.length === 1) return errors[0]!;
  const list = errors.map((e) => e.message.replace(/^Secret source /, "")).join("; ");
  return new HecateError(
    "secret_unresolved",
    `Every source of '${field}' for profile "${profile.name}" failed: ${list}`,
    { hint: errors.at(-1)!.hint ?? "check the sources with 'hecate server test'" },
  );
}

/** Normalises the common whole-connection shape; a lone JSON `value` is read as that shape. */
export function fromFieldsOf(fields: Readonly<Record<string, string>>): FromFields {
  let f: Record<string, unknown> = fields;
  if (Object.keys(fields).length === 1 && fields.value !== undefined) {
    const parsed = JSON.parse(fields.value);
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Malformed();
    f = parsed as Record<string, unknown>;
  }
  const str = (k: string) => {
    const v = f[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" && typeof v !== "number") throw new Malformed();
    return String(v);
  };
  const port = str("port");
  const out: FromFields = {};
  const set = <K extends keyof FromFields>(k: K, v: FromFields[K] | undefined) => {
    if (v !== undefined && v !== "") out[k] = v;
  };
  set("engine", str("engine"));
  set("host", str("host"));
  if (port !== undefined) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Malformed();
    out.port = n;
  }
  set("database", str("dbname") ?? str("database"));
  set("user", str("username") ?? str("user"));
  set("password", str("password"));
  if (Object.keys(out).length === 0) throw new Malformed();
  return out;
}

function fromRecord(f: FromFields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) if (v !== undefined) out[k] = String(v);
  return out;
}

/**
 * Resolves every secret of a profile (database and tunnel secrets, `sources.from`) through the
 * registered sources.
 *
 * @param profile The profile.
 * @param opts Environment, audit hook, cache, clock.
 * @returns The secrets in clear, a source-supplied login, the `from` fields, the leases held.
 * @throws {HecateError} `secret_unresolved` (exit 18) when every source of a field failed and no
 * cached value may stand in; `audit_failed` when an attempt cannot be recorded.
 */
export async function resolveProfile(
  profile: Profile,
  opts: ResolveOptions = {},
): Promise<ResolvedProfile> {
  const out: ResolvedProfile = { secrets: {}, leases: [] };
  const fresh: Record<string, CachedField> = {};
  let cached: Record<string, CachedField> | undefined | "unreadable";
  const now = () => (opts.now ?? Date.now)();
  const ttl = profile.sources?.cacheTtlMs;
  const loadCache = async () => {
    if (cached === undefined && opts.cache) {
      cached = await opts.cache.load().catch(() => "unreadable" as const) ?? {};
    }
    return cached;
  };
  const fallBack = async (field: string, refs: readonly string[], errors: HecateError[]) => {
    if (!opts.cache || !ttl) throw allFailed(profile, field, errors);
    const c = await loadCache();
    const entry = c === "unreadable" ? undefined : c?.[field];
    const reason = c === "unreadable"
      ? "cache_unreadable"
      : !entry
      ? "cache_missing"
      : entry.until <= now() || !refs.includes(entry.ref)
      ? "cache_expired"
      : undefined;
    const record: ResolutionRecord = {
      field,
      scheme: (entry?.ref ?? refs[0] ?? "").split(":")[0]!,
      ref: entry?.ref ?? refs[0] ?? "",
      outcome: reason ? "fail" : "cached",
      reason: reason ?? statusOf(errors.at(-1)),
      latencyMs: 0,
      ...(entry ? { cacheAgeSeconds: Math.max(0, Math.round((now() - entry.at) / 1000)) } : {}),
    };
    await opts.onAttempt?.(record);
    if (reason || !entry) throw allFailed(profile, field, errors);
    (opts.onWarning ?? defaultWarning)(
      `profile "${profile.name}": every source of '${field}' failed; using the value cached ${record.cacheAgeSeconds}s ago`,
    );
    fresh[field] = entry;
    return entry.fields;
  };
  const remember = (field: string, got: Attempted) => {
    if (!ttl) return;
    const at = now();
    const leaseEnd = got.lease
      ? got.lease.lease.obtainedAt + got.lease.lease.durationSeconds * 1000
      : Infinity;
    fresh[field] = {
      fields: got.fields,
      ref: got.ref.raw,
      at,
      until: Math.min(at + ttl, leaseEnd),
    };
  };

  try {
    await resolveAll();
  } catch (e) {
    await releaseLeases(out.leases);
    throw e;
  }
  if (ttl && opts.cache && Object.keys(fresh).length) {
    // Only what was freshly resolved replaces an entry; a field served from the cache keeps its
    // original time, so the TTL counts from the last real resolution.
    const base = await loadCache();
    const merged = { ...(base === "unreadable" ? {} : base), ...fresh };
    await opts.cache.save(merged).catch(() => {});
  }
  return out;

  async function resolveAll(): Promise<void> {
    const from = profile.sources?.from;
    if (from?.length) {
      const errors: HecateError[] = [];
      const got = await resolveRefs(
        profile,
        "from",
        from,
        (_ref, fields) => fromRecord(fromFieldsOf(fields)),
        opts,
        errors,
      );
      let fields: Record<string, string>;
      if (got) {
        fields = got.fields;
        remember("from", got);
        if (got.lease) out.leases.push(got.lease);
      } else {
        fields = await fallBack("from", from, errors);
      }
      out.from = {
        ...fields,
        ...(fields.port !== undefined ? { port: Number(fields.port) } : {}),
      } as FromFields;
    }

    for (const [field, s] of Object.entries(profile.secrets)) {
      if (isSourceCredential(field)) continue;
      const refs = refsOf(s as SecretValue);
      if (!refs) {
        out.secrets[field] = (s as { value: string }).value;
        continue;
      }
      const errors: HecateError[] = [];
      const accept = (ref: ParsedRef, fields: Readonly<Record<string, string>>) => {
        const value = pick(field, ref, fields);
        if (value === undefined) throw new FieldMissing();
        // A whole login (no #FIELD) gives the password field its user as well: a dynamic login
        // works only under the name the source made for it.
        const user = field === "password" && ref.field === undefined
          ? fields.username ?? fields.user
          : undefined;
        return { value, ...(user !== undefined ? { user } : {}) };
      };
      const got = await resolveRefs(profile, field, refs, accept, opts, errors);
      let fields: Record<string, string>;
      if (got) {
        fields = got.fields;
        remember(field, got);
        if (got.lease) out.leases.push(got.lease);
      } else {
        fields = await fallBack(field, refs, errors);
      }
      out.secrets[field] = fields.value!;
      if (fields.user !== undefined) out.user = fields.user;
    }
  }
}

/**
 * Resolves one stored secret without audit or cache (the tunnel's fallback and tools).
 *
 * @param secret The stored secret.
 * @param env Environment lookup.
 * @returns The value.
 * @throws {HecateError} `secret_unresolved`.
 */
export async function resolveSecretValue(
  secret: SecretValue,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): Promise<string> {
  if ("value" in secret) return secret.value;
  const profile = {
    name: "",
    engine: "sqlite",
    auth: "none",
    tls: { mode: "verify" },
    secrets: { value: secret },
    created: "",
    updated: "",
  } as unknown as Profile;
  return (await resolveProfile(profile, { env })).secrets.value!;
}
