/**
 * When each API key was last used, kept in `apikeys.state.json` in the home so that a key holder
 * (who cannot write the vault) can record it. Informational only: it is not authenticated, and
 * anyone who can write the home can change it. Written without fsync (losing the newest time on a
 * power cut is harmless) but atomically, under a lock.
 *
 * @module
 */

import { readState, updateState } from "./state_file.ts";

/** File name in the home directory. */
export const APIKEY_STATE_FILE = "apikeys.state.json";

/**
 * Records that a key was used now.
 *
 * @param home The home directory.
 * @param keyId The key's slot id.
 * @param now The time.
 */
export async function recordApiKeyUse(home: string, keyId: string, now: Date): Promise<void> {
  await updateState(home, APIKEY_STATE_FILE, (state) => {
    state[keyId] = { lastUsed: now.toISOString() };
    return { write: true, result: undefined };
  }, { sync: false });
}

/**
 * Reads the last-used times.
 *
 * @param home The home directory.
 * @returns Key id to ISO time.
 */
export async function apiKeyLastUsed(home: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [id, v] of Object.entries(await readState(home, APIKEY_STATE_FILE))) {
    const t = (v as { lastUsed?: unknown } | null)?.lastUsed;
    if (typeof t === "string") out[id] = t;
  }
  return out;
}

/**
 * Forgets a removed key.
 *
 * @param home The home directory.
 * @param keyId The key's slot id.
 */
export async function forgetApiKey(home: string, keyId: string): Promise<void> {
  await updateState(home, APIKEY_STATE_FILE, (state) => {
    if (!(keyId in state)) return { write: false, result: undefined };
    delete state[keyId];
    return { write: true, result: undefined };
  }, { sync: false });
}
