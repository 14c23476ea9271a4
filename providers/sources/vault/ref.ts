/**
 * The grammar of Vault references:
 *
 * - `vault:MOUNT/PATH[#FIELD][?version=N][&kv=1|2][&mount=A/B]`: a KV secret (v2 by default,
 *   v1 detected from the mount or stated with `kv=1`); without `#FIELD` the whole secret (for
 *   `--from`).
 * - `vault-db:MOUNT/ROLE` or `vault-db:MOUNT/creds/ROLE`: dynamic database credentials
 *   (`username` and `password`) under a lease.
 *
 * `#FIELD` and `?QUERY` may come in either order. Malformed references are usage errors (exit 2)
 * at `server add`, not at the first connect.
 *
 * @module
 */

import { HecateError } from "../../../src/errors.ts";
import type { ParsedRef } from "../source.ts";

const SEGMENT = /^[A-Za-z0-9._@=+-]+$/;
const FIELD = /^[A-Za-z0-9._-]{1,128}$/;

function usage(raw: string, what: string): HecateError {
  return new HecateError("usage", `Invalid reference "${raw.slice(0, 200)}": ${what}`);
}

function segments(raw: string, path: string): string[] {
  const segs = path.split("/");
  for (const s of segs) {
    if (!s) throw usage(raw, "empty path segment (use MOUNT/PATH)");
    if (s === "." || s === "..") throw usage(raw, "'.' and '..' are not allowed in the path");
    if (!SEGMENT.test(s)) {
      throw usage(raw, `path segment "${s.slice(0, 40)}" has characters Vault paths do not use`);
    }
  }
  return segs;
}

function split(
  raw: string,
  rest: string,
): { path: string; field?: string; query: URLSearchParams } {
  let path = rest, field: string | undefined, query = "";
  const h = path.indexOf("#"), q = path.indexOf("?");
  if (h >= 0 && (q < 0 || h < q)) {
    field = path.slice(h + 1);
    path = path.slice(0, h);
    const q2 = field.indexOf("?");
    if (q2 >= 0) [field, query] = [field.slice(0, q2), field.slice(q2 + 1)];
  } else if (q >= 0) {
    query = path.slice(q + 1);
    path = path.slice(0, q);
    const h2 = query.indexOf("#");
    if (h2 >= 0) [query, field] = [query.slice(0, h2), query.slice(h2 + 1)];
  }
  if (field !== undefined && !FIELD.test(field)) {
    throw usage(raw, "the #FIELD is empty or malformed");
  }
  return { path, ...(field !== undefined ? { field } : {}), query: new URLSearchParams(query) };
}

/**
 * Parses a `vault:` or `vault-db:` reference.
 *
 * @param scheme `vault` or `vault-db`.
 * @param rest The text after the colon.
 * @returns The parsed reference; `parts` holds `mount`, `path` (KV) or `role` (database),
 * `version`, `kv`.
 * @throws {HecateError} `usage` naming what is wrong.
 */
export function parseVaultRef(scheme: string, rest: string): ParsedRef {
  const raw = `${scheme}:${rest}`;
  const { path, field, query } = split(raw, rest);
  if (path.startsWith("/")) throw usage(raw, "the path starts with the mount, not with '/'");
  const segs = segments(raw, path.replace(/\/+$/, ""));
  const parts: Record<string, string> = {};
  const allowed = scheme === "vault" ? ["version", "kv", "mount"] : ["mount"];
  for (const k of query.keys()) {
    if (!allowed.includes(k)) {
      throw usage(raw, `unknown option "${k.slice(0, 40)}" (known: ${allowed.join(", ")})`);
    }
  }
  const mountOpt = query.get("mount");
  let mountLen = 1;
  if (mountOpt !== null) {
    const m = segments(raw, mountOpt.replace(/\/+$/, ""));
    if (m.join("/") !== segs.slice(0, m.length).join("/")) {
      throw usage(raw, "mount= must be the start of the path");
    }
    mountLen = m.length;
  }
  parts.mount = segs.slice(0, mountLen).join("/");
  const inner = segs.slice(mountLen);
  if (scheme === "vault-db") {
    if (field !== undefined) {
      throw usage(raw, "vault-db references take no #FIELD (they yield username and password)");
    }
    const role = inner.length === 2 && inner[0] === "creds"
      ? inner[1]
      : inner.length === 1
      ? inner[0]
      : undefined;
    if (!role) throw usage(raw, "use vault-db:MOUNT/ROLE or vault-db:MOUNT/creds/ROLE");
    parts.role = role;
    return { scheme, raw, parts };
  }
  if (scheme !== "vault") throw usage(raw, `unknown scheme "${scheme}"`);
  if (inner.length === 0) throw usage(raw, "missing the secret path after the mount (MOUNT/PATH)");
  parts.path = inner.join("/");
  const version = query.get("version");
  if (version !== null) {
    if (!/^[1-9][0-9]{0,9}$/.test(version)) {
      throw usage(raw, "version= must be a positive whole number");
    }
    parts.version = version;
  }
  const kv = query.get("kv");
  if (kv !== null) {
    if (kv !== "1" && kv !== "2") throw usage(raw, "kv= must be 1 or 2");
    if (kv === "1" && version !== null) throw usage(raw, "KV v1 has no versions");
    parts.kv = kv;
  }
  return { scheme, raw, ...(field !== undefined ? { field } : {}), parts };
}
