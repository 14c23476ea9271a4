/**
 * The highest vault generation written in a home, per vault id, in `generation.state.json`: the
 * fast rollback gate at unlock. Every vault write records its generation here (under the file's
 * lock) and in the audit trail (`vault.write`); an unlock of a vault whose generation is lower than
 * the recorded one is refused with `vault_rolled_back` (a kept generation or an old copy was put
 * back over the vault file).
 *
 * This file is a gate, not the proof: whoever can write the home can edit or delete it (as with the
 * lockout counters). The MAC-chained trail is the proof: `audit verify` compares the vault's
 * generation with the highest one its verified `vault.write` records name.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { readState, updateState } from "./state_file.ts";

/** File name of the highest written generations in the home directory. */
export const GENERATION_FILE = "generation.state.json";

/** The state file's shape: `{ "vaults": { "<vault id>": highest }, "last": "<vault id>" }`. */
interface GenerationState {
  vaults?: Record<string, unknown>;
  last?: unknown;
}

function highestIn(state: GenerationState, vaultId: string): number {
  const v = state.vaults?.[vaultId];
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : 0;
}

/**
 * Records that the vault file of `vaultId` was written with `generation` (call under the vault
 * lock, after the file was replaced). Never lowers what is recorded.
 *
 * @param home The home directory.
 * @param vaultId The vault id (base64url).
 * @param generation The generation just written.
 */
export async function recordVaultWrite(
  home: string,
  vaultId: string,
  generation: number,
): Promise<void> {
  await updateState(home, GENERATION_FILE, (s) => {
    const state = s as GenerationState;
    const vaults = { ...(state.vaults ?? {}) };
    vaults[vaultId] = Math.max(highestIn(state, vaultId), generation);
    s.vaults = vaults;
    s.last = vaultId;
    return { write: true, result: undefined };
  });
}

/**
 * The highest generation recorded for a vault (0 when none).
 *
 * @param home The home directory.
 * @param vaultId The vault id (base64url).
 * @returns The generation.
 */
export async function highestWritten(home: string, vaultId: string): Promise<number> {
  return highestIn(await readState(home, GENERATION_FILE) as GenerationState, vaultId);
}

/**
 * The id of the vault written last in this home, if any was recorded (to tell a foreign bundle
 * when the vault file itself is gone).
 *
 * @param home The home directory.
 * @returns The vault id, or undefined.
 */
export async function lastVaultId(home: string): Promise<string | undefined> {
  const last = (await readState(home, GENERATION_FILE) as GenerationState).last;
  return typeof last === "string" && last !== "" ? last : undefined;
}

/**
 * The error for a vault older than one this home already wrote.
 *
 * @param generation The vault's generation.
 * @param highest The highest one written.
 * @param source Where the higher generation is known from.
 * @returns `vault_rolled_back`.
 */
export function rolledBack(generation: number, highest: number, source: string): HecateError {
  return new HecateError(
    "vault_rolled_back",
    `The vault file is generation ${generation}, but generation ${highest} was already written here (${source})`,
    {
      hint: "an older copy was put back over vault.hecate; put the newest one back " +
        "(generations/, or move vault.hecate aside and run 'hecate backup restore')",
    },
  );
}

/** The recorded generations at one instant; see {@link readGenerationGate}. */
export interface GenerationGate {
  /**
   * Refuses a vault whose generation is lower than the highest recorded for its id.
   *
   * @param vaultId The vault id (base64url).
   * @param generation The generation of the file that was read.
   * @throws {HecateError} `vault_rolled_back`.
   */
  check(vaultId: string, generation: number): void;
}

/**
 * Reads the recorded generations. Call it BEFORE reading the vault file: writers record a
 * generation only after its file replaced the vault, so a file read after this snapshot is never
 * below it, even while other processes write (read in the other order, a concurrent write would
 * look like a rollback).
 *
 * @param home The home directory.
 * @returns The gate.
 */
export async function readGenerationGate(home: string): Promise<GenerationGate> {
  const state = await readState(home, GENERATION_FILE) as GenerationState;
  return {
    check(vaultId, generation) {
      const highest = highestIn(state, vaultId);
      if (generation < highest) throw rolledBack(generation, highest, GENERATION_FILE);
    },
  };
}
