/**
 * The audit event names, one list for every layer. `AuditEvent.event` has this list's type, so the
 * compiler refuses a name that is not here, and tests/audit_events_test.ts keeps the table in
 * docs/SECURITY.md equal to it.
 *
 * @module
 */

/** Event names and what each records. */
export const AUDIT_EVENTS = {
  "init": "a vault was created (the chain's first entry)",
  "audit.start": "a chain was started for a vault made before the trail (the chain's first entry)",
  "unlock":
    "an unlock attempt with the master password, an API key, an age identity or a PKCS#11 token slot (actor says which), ok or fail, including its second factor (reason = error code)",
  "agent.start":
    "an unlock agent started after an unlock (password, age identity or token: the actor; detail: its pid, time limit and idle limit)",
  "agent.use":
    "a command was served by the unlock agent (detail: the operation and the agent's pid)",
  "agent.end":
    "the unlock agent ended (reason: lock, limit, idle, vault_changed, signal, replaced, socket_gone, error; killed: by `lock` or a newer `unlock`, which writes it)",
  "lockout": "repeated failures locked further attempts out for a while",
  "profile.read": "a profile's secrets were read to connect (written before anything is released)",
  "connect": "a connection attempt failed after the profile was read",
  "query": "a statement ran: rows, duration_ms, sql_sha256 (never the SQL text or parameters)",
  "secret.resolve":
    "a secret source was asked for a profile's secret: detail scheme, ref, field, latency_ms, version or lease_sha256 (never a value or token); fail reason = its status",
  "secret.cache":
    "every source of a field failed and the offline cache was tried: ok when a cached value was used (detail age_s), fail with why not (expired, unreadable, missing)",
  "lease.renew":
    "a lease on dynamic credentials was renewed while in use: detail scheme, lease_sha256, duration_s (fail reason = the source's status)",
  "lease.revoke":
    "a lease on dynamic credentials was revoked when its connection, pool or program ended: detail scheme, lease_sha256",
  "env": "a profile's credentials were handed out as environment variables (`hecate env`)",
  "run": "a program was started with a profile's credentials in its environment",
  "profile.add": "a profile was added",
  "profile.edit": "a profile was changed",
  "profile.remove": "a profile was removed",
  "profile.history":
    "a profile's secret versions were listed (version, time, actor, reason; never a value)",
  "profile.rollback":
    "a kept previous version of a profile's secrets was made current (detail: from, restored, to version numbers)",
  "rotation.start":
    "a server password rotation stored its new password as the profile's pending secret (never the value)",
  "rotation.server":
    "the login's password was changed on the database server (or the change failed)",
  "rotation.verify": "a fresh login with the new password was tried after the server change",
  "rotation.commit": "the rotated password became the profile's current version",
  "rotation.settle":
    "a rotation left pending by a crash was settled at the next use (detail kept: new or old, saved; fail: neither logs in)",
  "secret.set":
    "a stored secret (`hecate secret set`) got a new version (detail: secret name, version; never the value)",
  "secret.read":
    "a stored secret's value was read (`secret get`, `run --secret`, `secret run`, the library; written before the value is released)",
  "secret.history":
    "a stored secret's versions were listed (version, time, actor, reason; never a value)",
  "secret.remove": "a stored secret and its kept versions were removed (detail: secret name)",
  "profile.pin_host_key": "SSH host keys learned under accept-new were pinned in the profile",
  "password.change": "the master password was changed",
  "kdf.upgrade": "the password slot was re-wrapped at a higher PBKDF2 cost",
  "rotate": "the root key, data keys and signing key were rotated",
  "vault.write": "the vault file was written (detail: vault id and generation)",
  "apikey.create": "an API key was created (detail: its id, name and scope; never the key)",
  "apikey.revoke": "an API key was revoked",
  "slot.add":
    "a key slot was added (detail: slot id, kind, label and, for age, the recipient, for pkcs11, the token and key labels; never key material or a PIN)",
  "slot.remove": "a key slot was removed (detail: slot id and kind)",
  "totp.enable": "a TOTP second factor was enabled (never the secret or a code)",
  "totp.disable": "a TOTP second factor was disabled",
  "totp.recovery": "a recovery code was used",
  "totp.verify": "a one-time code was checked and spent (`totp verify`; never the code)",
  "policy.set":
    "a key of the vault's security policy was changed (detail: key, old and new value; policy values are not secrets)",
  "backup.create": "a backup of the vault was written",
  "backup.retention": "the number of automatic backups to keep was changed",
  "backup.verify": "a backup bundle was opened to check it (ok or fail; counts toward lockout)",
  "backup.restore": "the vault was restored from a backup (detail: vault, generation, bundle's)",
  "audit.verify": "the trail was verified (outcome = the verdict)",
  "audit.export": "the trail was exported (detail: first and last seq)",
  "audit.retention":
    "closed segments were removed (detail: each one's name, seq range, last MAC, and the proof)",
  "console.start": "the web console started listening (detail: its address)",
  "console.stop": "the web console stopped (every session's vault closed)",
  "console.session":
    "a console session began (one-time login URL spent) or ended (detail: state, why: lock, idle, limit, stop)",
  "console.refused":
    "a console request was refused by a check (reason = bad_host, bad_origin, csrf or no_session)",
  "gateway.start": "the HTTP gateway started listening (detail: its address, tls)",
  "gateway.stop": "the HTTP gateway stopped",
  "gateway.refused":
    "a gateway request was refused by a check (reason = the check's code, e.g. no_key, bad_origin)",
  "gateway.request":
    "a gateway request passed the API key's checks (detail: key id, level, request id, client, user agent)",
} as const;

/** A listed event name. */
export type AuditEventName = keyof typeof AUDIT_EVENTS;
