/**
 * The audit event names, one list for every layer (documented in docs/SECURITY.md). `append`
 * accepts any string so that a new layer can add a name, but each should be listed here first.
 *
 * @module
 */

/** Event names and what each records. */
export const AUDIT_EVENTS = {
  "init": "a vault was created (the chain's first entry)",
  "unlock": "an unlock attempt with the master password (ok or fail, reason = error code)",
  "profile.read": "a profile's secrets were read to connect (written before anything is released)",
  "connect": "a connection attempt failed after the profile was read",
  "query": "a statement ran: rows, duration_ms, sql_sha256 (never the SQL text or parameters)",
  "profile.add": "a profile was added",
  "profile.edit": "a profile was changed",
  "profile.remove": "a profile was removed",
  "password.change": "the master password was changed",
  "apikey.create": "an API key was created (detail: its id, name and scope; never the key)",
  "apikey.use": "an API key unlocked the vault (actor: the key's id and name)",
  "apikey.revoke": "an API key was revoked",
  "apikey.expired": "an expired or revoked API key was presented",
  "totp.setup": "a TOTP second factor was set up (never the secret or a code)",
  "totp.use": "a TOTP code was accepted",
  "totp.fail": "a TOTP code was missing, wrong or replayed",
  "totp.recovery": "a recovery code was used",
  "lockout": "repeated failures locked further attempts out for a while",
  "vault.rotate": "the root key and data keys were rotated",
  "backup.create": "a backup of the vault was written",
  "backup.restore": "the vault was restored from a backup (detail: vault, generation, bundle's)",
  "backup.verify": "a backup bundle was opened to check it (ok or fail; counts toward lockout)",
  "vault.write": "the vault file was written (detail: vault id and generation)",
  "audit.verify": "the trail was verified (outcome = the verdict)",
  "audit.export": "the trail was exported (detail: first and last seq)",
  "audit.retention":
    "closed segments were removed (detail: each one's name, seq range, last MAC, and the proof)",
  "audit.start": "a chain was started for a vault made before the trail (the chain's first entry)",
} as const;

/** A listed event name. */
export type AuditEventName = keyof typeof AUDIT_EVENTS;
