/**
 * What a verified trail says about the vault file: the highest generation its `vault.write`
 * records name for a vault id (a vault file below it was rolled back), and whether the chain was
 * started by a restore into a home whose trail was gone. Read after `audit verify` proved the
 * entries, and only within the verified sequence range.
 *
 * @module
 */

import { trailLines } from "./read.ts";

/** What {@link trailVaultFacts} found. */
export interface TrailVaultFacts {
  /** The highest generation a `vault.write` record names for the vault (0 when none). */
  highestGeneration: number;
  /** When a restore started this chain because the previous trail was missing, its time. */
  newChainByRestore: string | undefined;
}

/**
 * Scans the verified entries (seq `firstSeq`..`lastSeq`) for the vault's written generations.
 *
 * @param home The home directory.
 * @param vaultId The vault id (base64url).
 * @param firstSeq First verified sequence number.
 * @param lastSeq Last verified sequence number.
 * @returns The highest generation written and the restore that started the chain, if any.
 */
export async function trailVaultFacts(
  home: string,
  vaultId: string,
  firstSeq: number,
  lastSeq: number,
): Promise<TrailVaultFacts> {
  let highest = 0;
  let newChain: string | undefined;
  for await (const { entry } of trailLines(home)) {
    if (!entry || typeof entry.seq !== "number" || entry.seq < firstSeq || entry.seq > lastSeq) {
      continue;
    }
    const d = entry.detail;
    if (entry.event === "vault.write" && d?.vault === vaultId) {
      const g = d.generation;
      if (typeof g === "number" && Number.isSafeInteger(g) && g > highest) highest = g;
    } else if (entry.event === "backup.restore" && d?.new_chain === true) {
      newChain ??= entry.time;
    }
  }
  return { highestGeneration: highest, newChainByRestore: newChain };
}
