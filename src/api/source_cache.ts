/**
 * The offline cache of resolved secrets (opt-in per profile, `sources.cacheTtlMs`): one file per
 * profile record, `cache/<record id>` in the vault home (directory 0700, file 0600), sealed with
 * AES-256-GCM under the record's side key (derived from its data key), with the vault and record
 * ids as associated data. So only a holder of the record's data key (the master password, an API
 * key with the profile in scope) opens it, an entry moved to another record's name does not open,
 * and a changed byte is refused. See docs/SOURCES.md, "Offline cache".
 *
 * @module
 */

import { fromBase64Url, fromUtf8, utf8 } from "../vault/encoding.ts";
import { open, seal } from "../vault/primitives.ts";
import { associatedDataV2 } from "../vault/keyring.ts";
import type { CachedField, SecretCache } from "../../providers/sources/resolve.ts";

/** The cache directory under the vault home. */
export const CACHE_DIR = "cache";

/** Options for {@link fileSecretCache}. */
export interface FileSecretCacheOptions {
  /** The vault home. */
  home: string;
  /** The vault id (base64url), bound into each entry. */
  vaultId: string;
  /** The record id (base64url): the file name. */
  recordId: string;
  /** The record's side key. */
  key: Uint8Array<ArrayBuffer>;
}

function aad(o: FileSecretCacheOptions): Uint8Array<ArrayBuffer> {
  return associatedDataV2("secret-cache", fromBase64Url(o.vaultId), fromBase64Url(o.recordId));
}

/** The file of a record's entry (record ids are base64url, so safe as a name). */
export function cachePath(home: string, recordId: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(recordId)) throw new RangeError("bad record id");
  return `${home}/${CACHE_DIR}/${recordId}`;
}

/**
 * The offline cache of one profile record, in a file.
 *
 * @param o Home, vault id, record id, side key.
 * @returns The cache; `load` throws for an entry that does not open (tampered, moved, old key).
 */
export function fileSecretCache(o: FileSecretCacheOptions): SecretCache {
  const path = cachePath(o.home, o.recordId);
  return {
    async load() {
      let bytes: Uint8Array<ArrayBuffer>;
      try {
        bytes = await Deno.readFile(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return undefined;
        throw e;
      }
      const plain = await open(o.key, bytes, aad(o));
      const parsed = JSON.parse(fromUtf8(plain)) as Record<string, CachedField>;
      if (!parsed || typeof parsed !== "object") {
        throw new TypeError("cache entry is not an object");
      }
      return parsed;
    },
    async save(entry) {
      const dir = `${o.home}/${CACHE_DIR}`;
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const sealed = await seal(o.key, utf8(JSON.stringify(entry)), aad(o));
      // A temporary file renamed into place: a reader sees the old entry or the new one.
      const temp = `${path}.${crypto.randomUUID()}.tmp`;
      const f = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
      try {
        let n = 0;
        while (n < sealed.length) n += await f.write(sealed.subarray(n));
        await f.sync();
      } finally {
        f.close();
      }
      try {
        await Deno.rename(temp, path);
      } catch (e) {
        await Deno.remove(temp).catch(() => {});
        throw e;
      }
    },
  };
}

/**
 * Removes a record's cache entry (the profile was removed or its sources changed).
 *
 * @param home The vault home.
 * @param recordId The record id.
 */
export async function dropCache(home: string, recordId: string): Promise<void> {
  await Deno.remove(cachePath(home, recordId)).catch(() => {});
}
