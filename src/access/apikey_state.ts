/**
 * When each API key was last used, kept in `apikeys.state.json` in the home so that a key holder
 * (who cannot write the vault) can record it. Informational only: it is not authenticated, and
 * anyone who can write the home can change it. Written without fsync (losing the newest time on a
 * power cut is harmless) but atomically, under a lock; and only when the recorded time is more
 * than {@link LAST_USED_RESOLUTION_MS} old, so a key used every few seconds costs a read, not a
 * locked rewrite, per use. The audit trail has every use to the millisecond.
 *
 * @module
 */

import { readState, type State, updateState } from "./state_file.ts";

/** File name in the home directory. */
export const APIKEY_STATE_FILE = "apikeys.state.json";

/**
 * Records that a key was used now (unless a use less than a minute ago is already recorded).
 *
 * @param home The home directory.
 * @param keyId The key's slot id.
 * @param now The time.
 */
export async function recordApiKeyUse(home: string, keyId: string, now: Date): Promise<void> {
  // Lock-free look first: most uses of a busy key find a fresh enough time and stop here.
  if (isFresh(await readState(home, APIKEY_STATE_FILE), keyId, now)) return;
  await updateState(home, APIKEY_STATE_FILE, (state) => {
    if (isFresh(state, keyId, now)) return { write: false, result: undefined };
    state[keyId] = { lastUsed: now.toISOString() };
    return { write: true, result: undefined };
  }, { sync: false });
}

/** Last-used times are kept to this resolution (one minute). */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** Whether the recorded time is at most one resolution step before `now` (and not after it). */
function isFresh(state: State, keyId: string, now: Date): boolean {
  const t = (state[keyId] as { lastUsed?: unknown } | null | undefined)?.lastUsed;
  if (typeof t !== "string") return false;
  const age = now.getTime() - Date.parse(t);
  return age >= 0 && age < LAST_USED_RESOLUTION_MS;
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
