/**
 * Reading KV secrets. A reference is tried as KV v2 first (`MOUNT/data/PATH`, one round trip for
 * the common case); when that is refused or absent, the mount's version is asked the way the
 * `vault` CLI asks (`sys/internal/ui/mounts/PATH`) and a v1 mount is read at `MOUNT/PATH`. A
 * reference may state the version (`kv=1`) to skip the detection.
 *
 * @module
 */

import type { ParsedRef, Resolved } from "../source.ts";
import { answerError, type VaultAnswer, vaultRequest } from "./client.ts";
import { vaultError } from "./errors.ts";
import type { VaultSettings } from "./settings.ts";

/** Detected KV versions by endpoint and mount, for this process. */
const mountVersions = new Map<string, 1 | 2>();

function asFields(ref: ParsedRef, data: unknown): Record<string, string> {
  if (!data || typeof data !== "object" || Array.isArray(data)) {
    throw vaultError(ref.raw, "malformed answer", "no data object");
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) {
    if (typeof v === "string") out[k] = v;
    else if (typeof v === "number" || typeof v === "boolean") out[k] = String(v);
  }
  return out;
}

function pick(ref: ParsedRef, fields: Record<string, string>): Record<string, string> {
  if (ref.field === undefined) return fields;
  const v = fields[ref.field];
  if (v === undefined) throw vaultError(ref.raw, "field missing", `no field "${ref.field}"`);
  return { [ref.field]: v };
}

async function detect(
  s: VaultSettings,
  ref: ParsedRef,
  token: string,
  signal: AbortSignal,
): Promise<1 | 2 | undefined> {
  const k = `${s.endpoint.addr}|${s.endpoint.namespace ?? ""}|${ref.parts.mount}`;
  const known = mountVersions.get(k);
  if (known) return known;
  const a = await vaultRequest(
    s.endpoint,
    "GET",
    `sys/internal/ui/mounts/${ref.parts.mount}/${ref.parts.path}`,
    { token, signal, ref: ref.raw },
  );
  if (a.status !== 200) return undefined;
  const data = a.body?.data as Record<string, unknown> | undefined;
  const opts = data?.options as Record<string, unknown> | undefined;
  if (data?.type !== "kv" && data?.type !== "generic") return undefined;
  const v = opts?.version === "2" ? 2 : 1;
  mountVersions.set(k, v);
  return v;
}

function fromV2(ref: ParsedRef, a: VaultAnswer): Resolved {
  const data = a.body?.data as Record<string, unknown> | undefined;
  const meta = data?.metadata as Record<string, unknown> | undefined;
  if (!data || !meta || typeof data.data !== "object" || data.data === null) {
    // A deleted or destroyed version answers 404 with metadata and null data.
    if (meta && data?.data === null) throw vaultError(ref.raw, "not found", "version deleted");
    throw vaultError(ref.raw, "malformed answer", "no data.data / data.metadata");
  }
  return {
    fields: pick(ref, asFields(ref, data.data)),
    ...(meta.version !== undefined ? { version: String(meta.version) } : {}),
  };
}

/**
 * Reads one KV reference.
 *
 * @param s The settings.
 * @param ref The parsed `vault:` reference.
 * @param token The Vault token.
 * @param signal Aborted at the source timeout.
 * @returns The fields (one with `#FIELD`, else all) and the version served (v2).
 * @throws {HecateError} `secret_unresolved` (forbidden, not found, field missing, malformed).
 */
export async function readKv(
  s: VaultSettings,
  ref: ParsedRef,
  token: string,
  signal: AbortSignal,
): Promise<Resolved> {
  const { mount, path, version, kv } = ref.parts;
  const v2path = `${mount}/data/${path}${version ? `?version=${version}` : ""}`;
  const v1 = async () => {
    const a = await vaultRequest(s.endpoint, "GET", `${mount}/${path}`, {
      token,
      signal,
      ref: ref.raw,
    });
    if (a.status !== 200) throw answerError(ref.raw, a);
    return { fields: pick(ref, asFields(ref, a.body?.data)) };
  };
  if (kv === "1") return await v1();
  const a = await vaultRequest(s.endpoint, "GET", v2path, { token, signal, ref: ref.raw });
  if (a.status === 200 && (a.body?.data as Record<string, unknown> | undefined)?.metadata) {
    return fromV2(ref, a);
  }
  if (kv === "2") {
    throw a.status === 200 ? vaultError(ref.raw, "malformed answer") : answerError(ref.raw, a);
  }
  // Not a v2 answer: ask the mount's version (a KV v1 mount, or a real refusal).
  const ver = await detect(s, ref, token, signal);
  if (ver === 1) {
    if (version) throw vaultError(ref.raw, "not found", "KV v1 mount has no versions");
    return await v1();
  }
  if (a.status === 200) throw vaultError(ref.raw, "malformed answer", "no data.metadata");
  throw answerError(ref.raw, a);
}
