/**
 * Import from Hecate Pyx, the older Python tool. Its directory (`~/.hecate_pyx/`) holds
 * `credentials.enc`, `totp_secrets.enc` and `api_keys.enc`, each laid out as:
 *
 * ```
 * salt (32 bytes) || iv (16 bytes) || AES-256-CBC ciphertext with PKCS#7 padding
 * key = PBKDF2-HMAC-SHA256(utf8(password), salt, 100000 iterations, 32 bytes)
 * plaintext = UTF-8 JSON
 * ```
 *
 * There is no MAC, version or magic. The padding is checked here (that tool never checked it):
 * WebCrypto's AES-CBC rejects bad padding, which means a wrong password or a damaged file; a
 * plaintext that is not UTF-8 JSON means a damaged file. This is the only CBC code in Hecate; the
 * source files are only read, never written.
 *
 * @module
 */

import type { ProfileInput } from "../api/profiles.ts";
import { HecateError } from "../errors.ts";
import type { SecretValue } from "../profile.ts";
import { type ImportNote, type ImportPlan, profileNameFrom } from "./plan.ts";

/** PBKDF2 iterations Hecate Pyx used. */
export const PYX_ITERATIONS = 100_000;
const SALT = 32;
const IV = 16;
const BLOCK = 16;

/**
 * Why a Pyx file did not decrypt. A wrong password yields random plaintext, whose padding still
 * looks valid about once in 256 tries: such plaintext (not even starting like JSON) counts as
 * `bad_padding`, so a wrong password is not reported as a damaged file.
 */
export type PyxFailure = "bad_padding" | "not_json" | "bad_length";

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

/**
 * Decrypts one Pyx file.
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
  const body = bytes.length - SALT - IV;
  if (body < BLOCK || body % BLOCK !== 0) throw new PyxDecryptError("bad_length");
  const salt = bytes.slice(0, SALT);
  const iv = bytes.slice(SALT, SALT + IV);
  const base = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveKey"],
  );
  const key = await crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: PYX_ITERATIONS },
    base,
    { name: "AES-CBC", length: 256 },
    false,
    ["decrypt"],
  );
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, bytes.slice(SALT + IV));
  } catch {
    throw new PyxDecryptError("bad_padding");
  }
  const bytesOut = new Uint8Array(plain);
  const first = bytesOut.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  if (first !== 0x7b && first !== 0x5b) throw new PyxDecryptError("bad_padding"); // not { or [
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytesOut));
  } catch {
    throw new PyxDecryptError("not_json");
  }
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

function secret(v: string | undefined): Record<string, SecretValue> {
  return v === undefined ? {} : { password: { value: v } };
}

/** What {@link mapPyxProfile} made of one credentials entry. */
export interface MappedProfile {
  /** The profile to add, or undefined when it cannot be brought over. */
  input?: ProfileInput;
  /** Caveats and reasons. */
  notes: ImportNote[];
}

/**
 * Maps one `credentials.enc` entry to a profile (engine `mssql`). One function, one case per
 * `auth_type`, so that a build with more providers extends it in one place.
 *
 * - `sql_auth`: auth `sql`, `username` / `password`.
 * - `windows_auth`: auth `windows`, `DOMAIN\user` split into `params.domain` and the user.
 * - `jwt_auth`: auth `token`, `params.tokenMode = "stored"`, secret `token` = `access_token`.
 * - `certificate_auth`: not brought over: for SQL Server a certificate login is the Entra ID
 *   client-certificate token flow, which needs a tenant and client id the old entry lacks; reported
 *   with the command that adds it.
 * - `ssh_tunnel`: auth `sql` (`sql_username` / `sql_password`) behind a one-hop SSH tunnel
 *   (`ssh_host`, `ssh_port`, `ssh_username`, secret `ssh.0.password` = `ssh_password`). The
 *   bastion's host key is not known yet: the first connection is refused with its fingerprint and
 *   the command that pins it.
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
  if (!host) {
    note("skipped", "no server in the entry");
    return { notes };
  }
  const port = portOf(e.port);
  if (e.port !== undefined && e.port !== null && e.port !== "" && port === undefined) {
    note("note", "the port was not a number between 1 and 65535; the default 1433 is used");
  }
  const base: ProfileInput = {
    name,
    engine: "mssql",
    host,
    ...(port !== undefined ? { port } : {}),
    ...(str(e.database) ? { database: str(e.database)! } : {}),
    tags: ["hecate-pyx"],
  };
  const auth = str(e.auth_type) ?? "sql_auth";
  switch (auth) {
    case "sql_auth":
      return {
        input: { ...base, user: str(e.username), auth: "sql", secrets: secret(str(e.password)) },
        notes,
      };
    case "windows_auth": {
      const raw = str(e.username) ?? "";
      const at = raw.indexOf("\\");
      const domain = at > 0 ? raw.slice(0, at) : undefined;
      const user = at > 0 ? raw.slice(at + 1) : raw;
      if (!domain) {
        note(
          "note",
          "no DOMAIN\\user form in the user name: set the domain with 'hecate server edit'",
        );
      }
      return {
        input: {
          ...base,
          user: user || undefined,
          auth: "windows",
          ...(domain ? { params: { domain } } : {}),
          secrets: secret(str(e.password)),
        },
        notes,
      };
    }
    case "jwt_auth": {
      const token = str(e.access_token);
      if (!token) {
        note("skipped", "jwt_auth without an access_token");
        return { notes };
      }
      note("note", "the stored access token is imported as is; it may have expired");
      return {
        input: {
          ...base,
          auth: "token",
          params: { tokenMode: "stored" },
          secrets: { token: { value: token } },
        },
        notes,
      };
    }
    case "certificate_auth": {
      const certFile = str(e.certificate_path);
      note(
        "skipped",
        `a certificate login to SQL Server is an Entra ID client-certificate token, which needs a ` +
          `tenant and client id the old entry does not have: add it with 'hecate server add ` +
          `${name} --engine mssql --host ${host} --auth token --token-mode client-certificate ` +
          `--tenant-id T --client-id C --cert-file ${certFile ?? "CERT"} --key-file KEY'`,
      );
      return { notes };
    }
    case "ssh_tunnel": {
      const sshHost = str(e.ssh_host);
      const sshUser = str(e.ssh_username);
      if (!sshHost || !sshUser) {
        note("skipped", "ssh_tunnel without an ssh_host or ssh_username");
        return { notes };
      }
      const sshPort = portOf(e.ssh_port) ?? 22;
      note(
        "note",
        `through the SSH bastion ${sshUser}@${sshHost}:${sshPort}; its host key is not pinned yet: ` +
          "the first connection prints the fingerprint and the command that pins it",
      );
      const sshPassword = str(e.ssh_password);
      return {
        input: {
          ...base,
          user: str(e.sql_username),
          auth: "sql",
          ssh: { hops: [{ host: sshHost, port: sshPort, user: sshUser, auth: "password" }] },
          secrets: {
            ...secret(str(e.sql_password)),
            ...(sshPassword ? { "ssh.0.password": { value: sshPassword } } : {}),
          },
        },
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
      : `${file} is damaged: its padding is invalid although another file opened with this password`,
  );
}

/**
 * Reads a Hecate Pyx directory and plans the import. Files are opened read-only.
 *
 * @param dir The directory (e.g. `~/.hecate_pyx`).
 * @param password The old master password.
 * @returns The plan: profiles, notes on TOTP secrets and API keys, and what was skipped.
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
  const plan: ImportPlan = { source: dir, profiles: [], notes: [] };
  const credBytes = await readIfExists(`${dir}/credentials.enc`);
  if (!credBytes) {
    throw new HecateError("usage", `No credentials.enc in "${dir}"`, {
      hint: "give the Hecate Pyx directory (default ~/.hecate_pyx)",
    });
  }
  let creds: unknown;
  try {
    creds = await decryptPyxFile(credBytes, password);
  } catch (e) {
    if (e instanceof PyxDecryptError) throw failure("credentials.enc", e.reason, true);
    throw e;
  }
  if (typeof creds !== "object" || creds === null || Array.isArray(creds)) {
    throw new HecateError("vault_integrity", "credentials.enc is damaged: not a JSON object");
  }
  for (const [name, entry] of Object.entries(creds as Record<string, unknown>)) {
    if (typeof entry !== "object" || entry === null) {
      plan.notes.push({ profile: name, kind: "skipped", message: "the entry is not an object" });
      continue;
    }
    const m = mapPyxProfile(name, entry as Entry);
    plan.notes.push(...m.notes);
    if (m.input) plan.profiles.push(m.input);
  }
  const decryptOther = async (file: string): Promise<unknown> => {
    const bytes = await readIfExists(`${dir}/${file}`);
    if (!bytes) return undefined;
    try {
      return await decryptPyxFile(bytes, password);
    } catch (e) {
      if (e instanceof PyxDecryptError) throw failure(file, e.reason, false);
      throw e;
    }
  };
  const totp = await decryptOther("totp_secrets.enc");
  if (totp && typeof totp === "object") {
    for (const [name, v] of Object.entries(totp as Record<string, unknown>)) {
      const enabled = typeof v === "object" && v !== null && (v as Entry).enabled === true;
      plan.notes.push({
        profile: name,
        kind: "skipped",
        message: `TOTP secret (${
          enabled ? "enabled" : "disabled"
        }) not imported: set up a one-time code anew`,
      });
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
