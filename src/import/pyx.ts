/**
 * Import from Hecate Pyx, the older Python tool. Its directory (`~/.hecate_pyx/`) holds
 * `credentials.enc`, `totp_secrets.enc` and `api_keys.enc`, in one of two documented layouts:
 *
 * ```
 * legacy: salt (32) || iv (16) || AES-256-CBC ciphertext (PKCS#7)
 * 3.0:    salt (32) || iv (16) || AES-256-CBC ciphertext (PKCS#7) || HMAC-SHA256 (32)
 * key = PBKDF2-HMAC-SHA256(utf8(password), salt, 100000 iterations)
 * plaintext = UTF-8 JSON; in 3.0 a document {version, encryption, kdf, iterations, timestamp,
 *             servers: {...}}
 * ```
 *
 * The 3.0 README does not say how the HMAC key is derived or what it covers, so the plausible
 * derivations are tried ({@link PYX_MAC_SCHEMES}): a match proves the password and the file; a
 * file that matches none is reported as "unverifiable" and checked as a legacy file is (the CBC
 * padding, then UTF-8 JSON of the documented structure). Once one file of a directory verifies,
 * the others must verify with the same derivation, or they count as damaged.
 *
 * WebCrypto's AES-CBC rejects bad padding, which means a wrong password or a damaged file; a
 * plaintext that is not UTF-8 JSON means a damaged file. This is the only CBC code in Hecate; the
 * source files are only read, never written.
 *
 * @module
 */

import type { ProfileInput } from "../api/profiles.ts";
import { HecateError } from "../errors.ts";
import { completionCommand, describeMissing } from "../incomplete.ts";
import type { Profile, SecretValue } from "../profile.ts";
import { missingFor } from "../../providers/mod.ts";
import { concatBytes, timingSafeEqual } from "../vault/encoding.ts";
import { hmacSha256, sha256 } from "../vault/primitives.ts";
import { type ImportNote, type ImportPlan, profileNameFrom } from "./plan.ts";

/** PBKDF2 iterations Hecate Pyx used. */
export const PYX_ITERATIONS = 100_000;
const SALT = 32;
const IV = 16;
const BLOCK = 16;
const MAC = 32;

/**
 * Why a Pyx file did not decrypt. A wrong password yields random plaintext, whose padding still
 * looks valid about once in 256 tries: such plaintext (not even starting like JSON) counts as
 * `bad_padding`, so a wrong password is not reported as a damaged file. `mac_mismatch`: the
 * file's HMAC fails the derivation another file of the same directory verified with (damaged).
 */
export type PyxFailure = "bad_padding" | "not_json" | "bad_length" | "mac_mismatch";

/** A Pyx file that could not be read, with the reason. */
export class PyxDecryptError extends Error {
  /** The reason. */
  readonly reason: PyxFailure;
  /**
   * Creates the error.
   *
   * @param reason The reason.
   */
  constructor(reason: PyxFailure) {
    super(reason);
    this.name = "PyxDecryptError";
    this.reason = reason;
  }
}

/** Key material for one file: the AES key, and the 64-byte PBKDF2 output on demand. */
interface Keys {
  salt: Uint8Array<ArrayBuffer>;
  iv: Uint8Array<ArrayBuffer>;
  aes: CryptoKey;
  /** PBKDF2 asked for 64 bytes (its first 32 are the AES key); derived only for HMAC checks. */
  derived(): Promise<Uint8Array<ArrayBuffer>>;
}

/** What an HMAC may cover. */
interface MacInput {
  salt: Uint8Array<ArrayBuffer>;
  iv: Uint8Array<ArrayBuffer>;
  ct: Uint8Array<ArrayBuffer>;
  plain: Uint8Array<ArrayBuffer> | undefined;
}

/** One guess at how the 3.0 layout derives its HMAC key and what the HMAC covers. */
export interface PyxMacScheme {
  /** A name for reports, e.g. `pbkdf2-64-split/iv+ciphertext`. */
  name: string;
  /** The HMAC key from the 64 derived bytes. */
  key(derived: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>>;
  /** The bytes authenticated, or undefined when they are not available (no plaintext). */
  data(m: MacInput): Uint8Array<ArrayBuffer> | undefined;
}

const KEYS: [string, (d: Uint8Array<ArrayBuffer>) => Promise<Uint8Array<ArrayBuffer>>][] = [
  // PBKDF2 asked for 64 bytes, split into an encryption half and a MAC half.
  ["pbkdf2-64-split", (d) => Promise.resolve(d.slice(32, 64))],
  // The encryption key used for the MAC as well.
  ["same-key", (d) => Promise.resolve(d.slice(0, 32))],
  // A MAC key hashed from the encryption key.
  ["sha256-of-key", (d) => sha256(d.slice(0, 32))],
];
const COVERS: [string, (m: MacInput) => Uint8Array<ArrayBuffer> | undefined][] = [
  ["iv+ciphertext", (m) => concatBytes(m.iv, m.ct)],
  ["salt+iv+ciphertext", (m) => concatBytes(m.salt, m.iv, m.ct)],
  ["ciphertext", (m) => m.ct],
  ["plaintext", (m) => m.plain],
];

/** The derivations tried for the 3.0 layout's HMAC, in order. */
export const PYX_MAC_SCHEMES: readonly PyxMacScheme[] = KEYS.flatMap(([k, key]) =>
  COVERS.map(([c, data]) => ({ name: `${k}/${c}`, key, data }))
);

/** How one Pyx file was read. */
export interface PyxOpened {
  /** The parsed JSON. */
  value: unknown;
  /** `legacy` (no MAC) or `3.0` (a trailing HMAC). */
  layout: "legacy" | "3.0";
  /** `none` (legacy), `verified` (an HMAC derivation matched) or `unverifiable` (none did). */
  mac: "none" | "verified" | "unverifiable";
  /** The derivation that matched, when `verified`. */
  scheme?: string;
}

async function deriveKeys(bytes: Uint8Array<ArrayBuffer>, password: string): Promise<Keys> {
  const salt = bytes.slice(0, SALT);
  const iv = bytes.slice(SALT, SALT + IV);
  const base = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const pbkdf2 = async (bits: number) =>
    new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: "PBKDF2", hash: "SHA-256", salt, iterations: PYX_ITERATIONS },
        base,
        bits,
      ),
    );
  const aes = await crypto.subtle.importKey("raw", await pbkdf2(256), "AES-CBC", false, [
    "decrypt",
  ]);
  // PBKDF2's first 32 bytes do not depend on the length asked for, so the 64-byte output (for
  // the split-key guess) is only paid for once a file decrypts: a wrong password costs one.
  let derived: Promise<Uint8Array<ArrayBuffer>> | undefined;
  return { salt, iv, aes, derived: () => derived ??= pbkdf2(512) };
}

async function cbc(
  keys: Keys,
  ct: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt({ name: "AES-CBC", iv: keys.iv }, keys.aes, ct),
    );
  } catch {
    return undefined;
  }
}

/** Whether the bytes are UTF-8, allowing a sequence cut at their end. */
function utf8Prefix(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}

type Parsed = { ok: true; value: unknown } | { ok: false; reason: "bad_padding" | "not_json" };

function parseJson(plain: Uint8Array<ArrayBuffer> | undefined): Parsed {
  if (!plain) return { ok: false, reason: "bad_padding" };
  const first = plain.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  // Random plaintext (a wrong key) that happens to end in valid padding: not even { or [.
  if (first !== 0x7b && first !== 0x5b) return { ok: false, reason: "bad_padding" };
  // ... or that also starts with one (about 1 wrong key in 30,000): its first block is still
  // random bytes, almost never UTF-8. Damage past the first block leaves that block readable.
  if (!utf8Prefix(plain.subarray(0, 16))) return { ok: false, reason: "bad_padding" };
  try {
    return { ok: true, value: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain)) };
  } catch {
    return { ok: false, reason: "not_json" };
  }
}

/** The first scheme whose HMAC equals the tag, or undefined. */
async function matchScheme(
  keys: Keys,
  m: MacInput,
  tag: Uint8Array,
): Promise<string | undefined> {
  for (const s of PYX_MAC_SCHEMES) {
    const data = s.data(m);
    if (!data) continue;
    if (timingSafeEqual(await hmacSha256(await s.key(await keys.derived()), data), tag)) {
      return s.name;
    }
  }
  return undefined;
}

/**
 * Opens one Pyx file in either layout.
 *
 * @param bytes The file.
 * @param password The old master password.
 * @param verifiedWith An HMAC derivation another file of the directory verified with: this file
 * must then verify with it too (or be a legacy file).
 * @returns The JSON and how the file was read.
 * @throws {PyxDecryptError} `bad_length` (not salt + iv + whole blocks), `bad_padding` (wrong
 * password or damaged), `not_json` (decrypted, but not UTF-8 JSON: damaged), `mac_mismatch`.
 */
export async function openPyxFile(
  bytes: Uint8Array<ArrayBuffer>,
  password: string,
  verifiedWith?: string,
): Promise<PyxOpened> {
  const body = bytes.length - SALT - IV;
  if (body < BLOCK || body % BLOCK !== 0) throw new PyxDecryptError("bad_length");
  const keys = await deriveKeys(bytes, password);
  let three: Parsed | undefined;
  if (body >= BLOCK + MAC) {
    const ct = bytes.slice(SALT + IV, bytes.length - MAC);
    const plain = await cbc(keys, ct);
    three = parseJson(plain);
    // The HMAC is checked only for a file that decrypts: a wrong password never gets here.
    if (three.ok) {
      const m = { salt: keys.salt, iv: keys.iv, ct, plain };
      const scheme = await matchScheme(keys, m, bytes.slice(bytes.length - MAC));
      if (scheme) return { value: three.value, layout: "3.0", mac: "verified", scheme };
    }
  }
  const legacy = parseJson(await cbc(keys, bytes.slice(SALT + IV)));
  if (legacy.ok) return { value: legacy.value, layout: "legacy", mac: "none" };
  if (three?.ok) {
    if (verifiedWith) throw new PyxDecryptError("mac_mismatch");
    return { value: three.value, layout: "3.0", mac: "unverifiable" };
  }
  const damaged = legacy.reason === "not_json" ||
    three?.ok === false && three.reason === "not_json";
  throw new PyxDecryptError(damaged ? "not_json" : "bad_padding");
}

/**
 * Decrypts one Pyx file (either layout).
 *
 * @param bytes The file.
 * @param password The old master password.
 * @returns The parsed JSON.
 * @throws {PyxDecryptError} `bad_length` (not salt + iv + whole blocks), `bad_padding` (wrong
 * password or damaged), `not_json` (decrypted, but not UTF-8 JSON: damaged).
 */
export async function decryptPyxFile(
  bytes: Uint8Array<ArrayBuffer>,
  password: string,
): Promise<unknown> {
  return (await openPyxFile(bytes, password)).value;
}

/** The files of a Pyx directory. */
export const PYX_FILES = ["credentials.enc", "totp_secrets.enc", "api_keys.enc"] as const;

type Entry = Record<string, unknown>;

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function portOf(v: unknown): number | undefined {
  const n = typeof v === "number"
    ? v
    : typeof v === "string" && /^\s*\d+\s*$/.test(v)
    ? Number(v)
    : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

function secret(field: string, v: string | undefined): Record<string, SecretValue> {
  return v === undefined ? {} : { [field]: { value: v } };
}

/** What {@link mapPyxProfile} made of one credentials entry. */
export interface MappedProfile {
  /** The profile to add, or undefined when it cannot be brought over. */
  input?: ProfileInput;
  /** Caveats and reasons. */
  notes: ImportNote[];
}

/**
 * Marks a mapped profile incomplete when its method lacks something (see src/incomplete.ts),
 * with the reason the source gives, and notes the command that completes it.
 */
function markIncomplete(
  input: ProfileInput,
  reason: string,
  note: (kind: ImportNote["kind"], message: string) => void,
  extra: string[] = [],
): ProfileInput {
  const probe = {
    ...input,
    auth: input.auth ?? "sql",
    tls: { mode: "verify" },
    secrets: input.secrets ?? {},
    created: "",
    updated: "",
  } as Profile;
  const missing = [...missingFor(probe), ...extra];
  if (missing.length === 0) return input;
  note(
    "note",
    `imported as INCOMPLETE (missing ${describeMissing(missing)}: ${reason}); it is refused ` +
      `until completed with '${completionCommand(input.name, missing)}'`,
  );
  return { ...input, incomplete: { source: "hecate-pyx", reason, missing } };
}

/**
 * Maps one `credentials.enc` entry to a profile (engine `mssql`). One function, one case per
 * `auth_type`, so that a build with more providers extends it in one place. Nothing Pyx had is
 * dropped: an entry whose login Hecate cannot complete on its own is imported *incomplete*
 * (src/incomplete.ts), refused at use with the `hecate server edit` command that completes it.
 *
 * - `sql_auth`: auth `sql`, `username` / `password`.
 * - `windows_auth`: auth `windows` (NTLM), `DOMAIN\user` split into `params.domain` and the user.
 *   Without a user name Pyx logged in as the current Windows user (integrated login), which
 *   Hecate cannot do: incomplete, missing the user, domain and password.
 * - `jwt_auth`: auth `token`, `params.tokenMode = "stored"`, secret `token` = `access_token`.
 * - `certificate_auth`: for SQL Server a certificate login is the Entra ID client-certificate
 *   token flow: auth `token`, `tokenMode = "client-certificate"`, `certFile` =
 *   `certificate_path`, secret `keyPassphrase` = `certificate_password`; incomplete, missing the
 *   tenant and client id and the key file, which the old entry lacks.
 * - `ssh_tunnel`: auth `sql` (`sql_username` / `sql_password`) behind a one-hop SSH tunnel
 *   (`ssh_host`, `ssh_port`, `ssh_username`, secret `ssh.0.password` = `ssh_password`). The
 *   bastion's host key is not known yet: the first connection is refused with its fingerprint and
 *   the command that pins it. Without an SSH host or user: incomplete, missing the tunnel.
 * - no `server`: incomplete, missing the host.
 *
 * @param sourceName The name in the Pyx file.
 * @param e The entry.
 * @returns The profile and notes.
 */
export function mapPyxProfile(sourceName: string, e: Entry): MappedProfile {
  const name = profileNameFrom(sourceName);
  const notes: ImportNote[] = [];
  const note = (kind: ImportNote["kind"], message: string) =>
    notes.push({ profile: sourceName, kind, message });
  if (name !== sourceName) {
    note("note", `renamed to "${name}" (profile names allow letters, digits, '.', '_', '-')`);
  }
  const host = str(e.server);
  const port = portOf(e.port);
  if (e.port !== undefined && e.port !== null && e.port !== "" && port === undefined) {
    note("note", "the port was not a number between 1 and 65535; the default 1433 is used");
  }
  const base: ProfileInput = {
    name,
    engine: "mssql",
    ...(host ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(str(e.database) ? { database: str(e.database)! } : {}),
    tags: ["hecate-pyx"],
  };
  const noHost = "the Pyx entry names no server";
  const auth = str(e.auth_type) ?? "sql_auth";
  switch (auth) {
    case "sql_auth": {
      const input: ProfileInput = {
        ...base,
        user: str(e.username),
        auth: "sql",
        secrets: secret("password", str(e.password)),
      };
      return {
        input: markIncomplete(input, host ? "the Pyx entry lacks it" : noHost, note),
        notes,
      };
    }
    case "windows_auth": {
      const raw = str(e.username) ?? "";
      const at = raw.indexOf("\\");
      const domain = at > 0 ? raw.slice(0, at) : undefined;
      const user = at > 0 ? raw.slice(at + 1) : raw;
      const input: ProfileInput = {
        ...base,
        user: user || undefined,
        auth: "windows",
        ...(domain ? { params: { domain } } : {}),
        secrets: secret("password", str(e.password)),
      };
      const reason = !raw
        ? "Hecate Pyx logged in as the current Windows user; Hecate's windows login is NTLM " +
          "with a domain, user and password"
        : !domain
        ? "the user name has no DOMAIN\\user form"
        : host
        ? "the Pyx entry lacks it"
        : noHost;
      return { input: markIncomplete(input, reason, note), notes };
    }
    case "jwt_auth": {
      const token = str(e.access_token);
      if (token) note("note", "the stored access token is imported as is; it may have expired");
      const input: ProfileInput = {
        ...base,
        auth: "token",
        params: { tokenMode: "stored" },
        secrets: secret("token", token),
      };
      return {
        input: markIncomplete(input, token ? noHost : "the Pyx entry has no access_token", note),
        notes,
      };
    }
    case "certificate_auth": {
      const certFile = str(e.certificate_path);
      const input: ProfileInput = {
        ...base,
        auth: "token",
        params: { tokenMode: "client-certificate", ...(certFile ? { certFile } : {}) },
        secrets: secret("keyPassphrase", str(e.certificate_password)),
      };
      return {
        input: markIncomplete(
          input,
          "a certificate login to SQL Server is an Entra ID client-certificate token, which " +
            "needs a tenant, a client id and a PEM key file the Pyx entry does not have",
          note,
        ),
        notes,
      };
    }
    case "ssh_tunnel": {
      const sshHost = str(e.ssh_host);
      const sshUser = str(e.ssh_username);
      const sshPort = portOf(e.ssh_port) ?? 22;
      const sshPassword = str(e.ssh_password);
      const complete = sshHost && sshUser;
      if (complete) {
        note(
          "note",
          `through the SSH bastion ${sshUser}@${sshHost}:${sshPort}; its host key is not pinned ` +
            "yet: the first connection prints the fingerprint and the command that pins it",
        );
      }
      const input: ProfileInput = {
        ...base,
        user: str(e.sql_username),
        auth: "sql",
        ...(complete
          ? { ssh: { hops: [{ host: sshHost, port: sshPort, user: sshUser, auth: "password" }] } }
          : {}),
        secrets: {
          ...secret("password", str(e.sql_password)),
          ...secret("ssh.0.password", sshPassword),
        },
      };
      if (complete && !sshPassword) {
        // A password hop needs its secret: without one, the tunnel is what is missing.
        delete input.ssh;
      }
      return {
        input: markIncomplete(
          input,
          complete && sshPassword ? (host ? "the Pyx entry lacks it" : noHost) : "the Pyx " +
            "entry names no complete SSH tunnel (host, user and password)",
          note,
          input.ssh ? [] : ["ssh"],
        ),
        notes,
      };
    }
    default:
      note("skipped", `unknown auth_type "${auth.slice(0, 40)}"`);
      return { notes };
  }
}

/** Reads a file if it exists. */
async function readIfExists(path: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new HecateError("usage", `Cannot read "${path}"`, { cause: e });
  }
}

function failure(file: string, reason: PyxFailure, first: boolean): HecateError {
  if (reason === "bad_padding" && first) {
    return new HecateError(
      "auth_failed",
      `Cannot decrypt ${file}: wrong Hecate Pyx password, or the file is damaged`,
      { hint: "the padding check failed: check the old master password" },
    );
  }
  return new HecateError(
    "vault_integrity",
    reason === "not_json"
      ? `${file} is damaged: it decrypts, but not to UTF-8 JSON`
      : reason === "bad_length"
      ? `${file} is damaged: its length is not salt + IV + whole AES blocks`
      : reason === "mac_mismatch"
      ? `${file} is damaged: its HMAC does not match, although another file verified with ` +
        "this password"
      : `${file} is damaged: its padding is invalid although another file opened with this password`,
  );
}

/**
 * The profiles of a credentials document: the legacy map `{name: entry}`, or the 3.0 document
 * whose `servers` is such a map or a list of entries with a `name`.
 */
function serversOf(file: string, doc: unknown, opened: PyxOpened): [string, unknown][] {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new HecateError("vault_integrity", `${file} is damaged: not a JSON object`);
  }
  const d = doc as Entry;
  const wrapped = typeof d.servers === "object" && d.servers !== null &&
    (opened.layout === "3.0" || "version" in d);
  if (!wrapped) {
    if (opened.layout === "3.0") {
      throw new HecateError(
        "vault_integrity",
        `${file} is damaged: a 3.0 document without its 'servers'`,
      );
    }
    return Object.entries(d);
  }
  if (!Array.isArray(d.servers)) return Object.entries(d.servers as Entry);
  return d.servers.map((e, i): [string, unknown] => {
    const n = typeof e === "object" && e !== null ? str((e as Entry).name) : undefined;
    return [n ?? `server-${i + 1}`, e];
  });
}

/** A note on how a file was read (layout and HMAC). */
function layoutNote(file: string, o: PyxOpened): ImportNote | undefined {
  if (o.layout === "legacy") return undefined;
  return {
    kind: "note",
    message: o.mac === "verified"
      ? `${file}: layout 3.0, HMAC verified (${o.scheme})`
      : `${file}: layout 3.0, HMAC unverifiable (no known key derivation matches); the CBC ` +
        "padding and the JSON structure were checked instead",
  };
}

/** Reads `{secret, enabled}` entries (a map by server name, maybe inside `servers`). */
function totpEntries(doc: unknown): [string, unknown][] {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return [];
  const d = doc as Entry;
  if (typeof d.servers === "object" && d.servers !== null && !Array.isArray(d.servers)) {
    return Object.entries(d.servers as Entry);
  }
  return Object.entries(d);
}

/** A base32 secret (RFC 4648, spaces and padding ignored) of at least 80 bits, upper-cased. */
function base32Secret(v: unknown): string | undefined {
  if (typeof v !== "string") return undefined;
  const s = v.replace(/[\s=]/g, "").toUpperCase();
  return /^[A-Z2-7]{16,}$/.test(s) ? s : undefined;
}

/**
 * Reads a Hecate Pyx directory and plans the import. Files are opened read-only.
 *
 * @param dir The directory (e.g. `~/.hecate_pyx`).
 * @param password The old master password.
 * @returns The plan: profiles (some possibly incomplete), TOTP secrets to carry over, notes on
 * API keys, and what was skipped.
 * @throws {HecateError} `auth_failed` for a wrong password, `vault_integrity` for a damaged file,
 * `usage` when `credentials.enc` is missing.
 *
 * @example
 * ```ts ignore
 * const plan = await planPyxImport(`${Deno.env.get("HOME")}/.hecate_pyx`, oldPassword);
 * await applyImport(vault, plan);
 * ```
 */
export async function planPyxImport(dir: string, password: string): Promise<ImportPlan> {
  const plan: ImportPlan = { source: dir, profiles: [], notes: [], totp: [] };
  const credBytes = await readIfExists(`${dir}/credentials.enc`);
  if (!credBytes) {
    throw new HecateError("usage", `No credentials.enc in "${dir}"`, {
      hint: "give the Hecate Pyx directory (default ~/.hecate_pyx)",
    });
  }
  let creds: PyxOpened;
  try {
    creds = await openPyxFile(credBytes, password);
  } catch (e) {
    if (e instanceof PyxDecryptError) throw failure("credentials.enc", e.reason, true);
    throw e;
  }
  const verifiedWith = creds.scheme;
  const layout = layoutNote("credentials.enc", creds);
  if (layout) plan.notes.push(layout);
  const names = new Map<string, string>();
  const inlineTotp: [string, unknown][] = [];
  for (const [name, entry] of serversOf("credentials.enc", creds.value, creds)) {
    if (typeof entry !== "object" || entry === null) {
      plan.notes.push({ profile: name, kind: "skipped", message: "the entry is not an object" });
      continue;
    }
    const m = mapPyxProfile(name, entry as Entry);
    plan.notes.push(...m.notes);
    if (m.input) {
      plan.profiles.push(m.input);
      names.set(name, m.input.name);
    }
    if ((entry as Entry).totp !== undefined) inlineTotp.push([name, (entry as Entry).totp]);
  }
  const decryptOther = async (file: string): Promise<unknown> => {
    const bytes = await readIfExists(`${dir}/${file}`);
    if (!bytes) return undefined;
    try {
      const o = await openPyxFile(bytes, password, verifiedWith);
      const n = layoutNote(file, o);
      if (n) plan.notes.push(n);
      return o.value;
    } catch (e) {
      if (e instanceof PyxDecryptError) throw failure(file, e.reason, false);
      throw e;
    }
  };
  const totp = await decryptOther("totp_secrets.enc");
  for (const [source, v] of [...inlineTotp, ...totpEntries(totp)]) {
    const enabled = typeof v === "object" && v !== null && (v as Entry).enabled === true;
    const profile = names.get(source);
    const say = (kind: ImportNote["kind"], message: string) =>
      plan.notes.push({ profile: source, kind, message });
    if (!enabled) say("skipped", "TOTP secret disabled in Hecate Pyx: not carried over");
    else if (!profile) say("skipped", "TOTP secret for a server that was not imported");
    else if (plan.totp!.some((t) => t.profile === profile)) continue;
    else {
      const s = base32Secret((v as Entry).secret);
      if (!s) say("skipped", "TOTP secret is not base32 of at least 80 bits: not carried over");
      else plan.totp!.push({ profile, secret: s });
    }
  }
  const keys = await decryptOther("api_keys.enc");
  if (keys !== undefined) {
    const count = Array.isArray(keys)
      ? keys.length
      : typeof keys === "object" && keys !== null
      ? Object.keys(keys).length
      : 0;
    plan.notes.push({
      kind: "skipped",
      // Only the count: the file's keys may be the hashes themselves.
      message: `${count} API key(s) found as unsalted SHA-256 hashes: the keys cannot be ` +
        "recovered from them; create new API keys",
    });
  }
  return plan;
}
