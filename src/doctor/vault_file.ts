/**
 * Doctor check: the vault file as it can be judged without the master password. The body is
 * plain JSON (docs/FORMAT.md), so its layout, unkeyed checksum, format version, generation and
 * password-slot KDF cost are readable; its generation is compared with the highest one recorded
 * in `generation.state.json` (a lower one is the rollback that unlock refuses with exit 25).
 *
 * @module
 */

import { highestWritten } from "../access/vault_generation.ts";
import { HecateError } from "../errors.ts";
import { toBase64Url } from "../vault/encoding.ts";
import { checkRecordLines, FORMAT_VERSION, parseSplit, splitVaultFile } from "../vault/format.ts";
import { VAULT_FILE, VaultStore } from "../vault/store.ts";
import { checkChecksum } from "../vault/vault.ts";
import type { Finding } from "./finding.ts";

/** What the body says, when it could be read. */
export interface VaultFacts {
  /** The vault id (base64url). */
  id: string;
  /** The generation of the file. */
  generation: number;
  /** The format version of the body. */
  version: number;
  /** PBKDF2 iterations of the password slot. */
  iterations: number;
}

/** The result of {@link checkVaultFile}. */
export interface VaultFileCheck {
  /** Findings. */
  findings: Finding[];
  /** The body's facts; undefined when there is no readable vault file. */
  facts: VaultFacts | undefined;
  /** Whether an unlock can be expected to get past the file (no damage, no rollback). */
  unlockable: boolean;
}

function fromError(e: HecateError): Finding {
  return {
    check: "vault",
    severity: "error",
    message: e.message,
    ...(e.hint ? { fix: e.hint } : {}),
  };
}

/**
 * Reads the vault file without the password and checks what can be checked.
 *
 * @param home The home directory (it exists).
 * @returns Findings, the body's facts and whether unlocking makes sense.
 */
export async function checkVaultFile(home: string): Promise<VaultFileCheck> {
  const store = new VaultStore(home);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await store.read();
  } catch (e) {
    if (!(e instanceof HecateError)) throw e;
    if (e.code === "vault_not_found") {
      return {
        findings: [{
          check: "vault",
          severity: "error",
          message: `No vault file "${home}/${VAULT_FILE}"`,
          fix:
            "hecate init (or put back a kept generation or a backup: hecate backup restore FILE)",
        }],
        facts: undefined,
        unlockable: false,
      };
    }
    // Unsafe permissions are the permissions check's finding; unlock would refuse the file.
    if (e.code === "insecure_home") return { findings: [], facts: undefined, unlockable: false };
    return { findings: [fromError(e)], facts: undefined, unlockable: false };
  }
  let facts: VaultFacts;
  const findings: Finding[] = [];
  try {
    const split = splitVaultFile(bytes);
    await checkChecksum(split);
    const { body } = parseSplit(split);
    // The checksum covers a format-3 header only; its record lines are covered by their hashes.
    await checkRecordLines(body);
    const slot = body.slots.find((s) => s.kind === "password");
    if (!slot || slot.kind !== "password") {
      throw new HecateError("vault_integrity", "Vault file is damaged: no password slot");
    }
    facts = {
      id: toBase64Url(body.vaultId),
      generation: body.generation,
      version: body.version,
      iterations: slot.kdf.iterations,
    };
    if (body.version < FORMAT_VERSION) {
      findings.push({
        check: "vault",
        severity: "info",
        message: `The vault is in format ${body.version}: its next change with the master ` +
          `password writes format ${FORMAT_VERSION}`,
      });
    }
    // A format-1 API-key slot: its slot key sits in the meta, readable with any older root key.
    const legacy = body.slots.filter((s) =>
      s.kind === "apikey-legacy" || (body.version === 1 && s.kind !== "password")
    ).length;
    if (legacy > 0) {
      findings.push({
        check: "vault",
        severity: "warn",
        message: `${legacy} API key(s) still use format-1 slots, which anyone holding an older ` +
          `root key can open; 'hecate rotate' is refused until they are revoked`,
        fix:
          "hecate apikey list; replace each older key: hecate apikey create NAME2 --server ..., " +
          "then hecate apikey revoke NAME",
      });
    }
  } catch (e) {
    if (!(e instanceof HecateError)) throw e;
    return { findings: [fromError(e)], facts: undefined, unlockable: false };
  }
  const highest = await highestWritten(home, facts.id);
  if (facts.generation < highest) {
    findings.push({
      check: "vault",
      severity: "error",
      message: `The vault file is generation ${facts.generation}, but generation ${highest} was ` +
        `already written here (generation.state.json): an older copy was put back`,
      fix: "put the newest copy back (generations/, or move vault.hecate aside and run " +
        "'hecate backup restore FILE')",
    });
    return { findings, facts, unlockable: false };
  }
  return { findings, facts, unlockable: true };
}
