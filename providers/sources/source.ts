/**
 * The contract every secret source implements (env, file, HashiCorp Vault/OpenBao, cloud secret
 * managers, local stores). A profile stores references (`SCHEME:REST`), never the values behind
 * them; at connect time the framework resolves them through the source registered for the scheme,
 * with a per-source timeout, failover to the next reference, an optional offline cache and an
 * audit record of each resolution.
 *
 * A source parses its own references (so a malformed one is refused at `server add`, not at the
 * first connect), resolves them to secret fields, and, for dynamic credentials, renews and revokes
 * the lease it handed out.
 *
 * @module
 */

/** A reference after its source has validated it. */
export interface ParsedRef {
  /** The scheme without the colon, e.g. `vault`. */
  readonly scheme: string;
  /** The whole reference as the user wrote it (a location, never a secret). */
  readonly raw: string;
  /** The field picked with `#FIELD`, when the reference names one. */
  readonly field?: string;
  /** Source-specific parts (mount, path, version, ...), for the source's own use. */
  readonly parts: Readonly<Record<string, string>>;
}

/** A lease on dynamic credentials (e.g. Vault's database secrets engine). */
export interface Lease {
  /** The lease id (a secret of sorts: audit only a hash of it). */
  readonly id: string;
  /** Seconds from `obtainedAt` until the lease expires. */
  readonly durationSeconds: number;
  /** Whether the source can extend it. */
  readonly renewable: boolean;
  /** When it was obtained or last renewed (ms since the epoch). */
  readonly obtainedAt: number;
}

/** What a source returns for one reference. */
export interface Resolved {
  /**
   * The secret fields. A reference with `#FIELD` yields that field; a reference to a whole
   * secret yields all of its fields (e.g. `username` and `password` from a dynamic login, or
   * `engine`, `host`, `port`, `dbname`, `username`, `password` for `--from`).
   */
  readonly fields: Readonly<Record<string, string>>;
  /** The version the source served, when it has versions. */
  readonly version?: string;
  /** Set for dynamic credentials. */
  readonly lease?: Lease;
}

/** What the framework hands a source for one call. */
export interface SourceContext {
  /** Aborted when the per-source timeout passes or the caller gives up. */
  readonly signal: AbortSignal;
  /**
   * Credentials for the source itself (an AppRole secret id, a token), sealed in the profile's
   * record under `source.<scheme>.<name>` and so covered by an API key's scope; by `<name>`.
   */
  readonly credentials: Readonly<Record<string, string>>;
  /** Reads an environment variable (injectable in tests). */
  readonly env: (name: string) => string | undefined;
  /**
   * The profile's non-secret params: a source's own settings live there under its prefix (e.g.
   * `vault.addr`, `vault.auth`).
   */
  readonly params?: Readonly<Record<string, string>>;
}

/** The health of a source, for `hecate server test` and `hecate sources`. */
export interface SourceHealth {
  /** Whether the source answers and would serve the reference. */
  readonly ok: boolean;
  /** One line, no secret: e.g. `sealed`, `HTTP 503`, `v1.15.2 active`. */
  readonly detail: string;
  /** Milliseconds the check took. */
  readonly latencyMs: number;
}

/** One kind of secret source, registered by scheme. */
export interface SecretSource {
  /** The schemes it serves, without the colon (e.g. `["vault", "vault-db"]`). */
  readonly schemes: readonly string[];
  /** A short human name for messages and `hecate sources` (e.g. `HashiCorp Vault`). */
  readonly title: string;
  /**
   * The name its credentials are sealed under (`source.<name>.*`) when several schemes share
   * them (e.g. `vault` for both `vault:` and `vault-db:`). @default {the reference's scheme}
   */
  readonly credentialScope?: string;
  /** Whether its values are dynamic logins (the framework never caches those past the lease). */
  readonly dynamic?: boolean;
  /**
   * Validates a reference at add/edit time.
   *
   * @param scheme The scheme used.
   * @param rest The text after `scheme:`.
   * @throws {HecateError} `usage` (exit 2) for a malformed reference, naming what is wrong.
   */
  parse(scheme: string, rest: string): ParsedRef;
  /**
   * Resolves a reference.
   *
   * @throws {HecateError} `secret_unresolved` (exit 18) naming the source and its status
   * (unreachable, timed out, forbidden, not found, field missing, lease expired), with a hint
   * line, never a token or a value.
   */
  resolve(ref: ParsedRef, ctx: SourceContext): Promise<Resolved>;
  /** Extends a lease; returns the renewed lease. */
  renew?(lease: Lease, ctx: SourceContext): Promise<Lease>;
  /** Ends a lease now (the source drops the login). */
  revoke?(lease: Lease, ctx: SourceContext): Promise<void>;
  /** Checks that the source answers, for a reference of this profile. */
  health?(ref: ParsedRef, ctx: SourceContext): Promise<SourceHealth>;
  /**
   * Starts, without waiting, what a resolution of `ref` needs before its own request: loading
   * the client's modules and running the credential chain of the environment (whose result the
   * source caches per process, so the resolution that follows joins it). Called while the
   * `profile.read` record is written, before anything is released: it gets no credentials from
   * the vault, must send nothing that names the secret, and must not throw or reject (the
   * resolution reports every error itself).
   */
  prepare?(ref: ParsedRef, env: (name: string) => string | undefined): void;
}
