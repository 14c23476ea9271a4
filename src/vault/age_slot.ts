/**
 * The age slot (docs/FORMAT.md, "Age slot"): the root key wrapped for a teammate's age X25519
 * identity. A random slot key is encrypted to the `age1...` recipient as an ordinary age v1 file
 * (through npm `age-encryption`, interoperable with the `age` program), and the root key is sealed
 * under that slot key with associated data binding the vault id and the slot id, so a slot copied
 * into another vault, or under another id, opens nothing.
 *
 * @module
 */

import { HecateError } from "../errors.ts";
import { AGE_RECIPIENT, type AgeSlot } from "./format.ts";
import { associatedDataV2 } from "./keyring.ts";
import { AuthenticationFailure, KEY_BYTES, open, randomBytes, seal } from "./primitives.ts";

/**
 * The age implementation, loaded on first use: the cron path (`hecate query` with the password)
 * imports this module through the vault but never needs age (tests/startup_imports_test.ts).
 */
function ageLib(): Promise<typeof import("age-encryption")> {
  return import("age-encryption");
}

/** The associated data of an age slot's sealed root key. */
function slotAad(vaultId: Uint8Array, slotId: Uint8Array): Uint8Array<ArrayBuffer> {
  return associatedDataV2("age-slot", vaultId, slotId);
}

/**
 * Checks an age recipient: an X25519 `age1...` string whose Bech32 checksum holds.
 *
 * @param recipient The recipient text.
 * @returns The recipient, trimmed.
 * @throws {HecateError} `usage` for anything else (post-quantum, tag, plugin or SSH recipients
 * included: this slot kind is X25519 only).
 */
export async function checkAgeRecipient(recipient: string): Promise<string> {
  const r = recipient.trim();
  const bad = () =>
    new HecateError("usage", "Not an age X25519 recipient (age1... as age-keygen prints it)", {
      hint: "ask your teammate for the 'Public key' line age-keygen wrote",
    });
  if (!AGE_RECIPIENT.test(r)) throw bad();
  try {
    new (await ageLib()).Encrypter().addRecipient(r); // checks the Bech32 checksum and the key length
  } catch {
    throw bad();
  }
  return r;
}

/**
 * Wraps a root key to an age recipient.
 *
 * @param root The 32-byte root key.
 * @param recipient A checked `age1...` recipient ({@link checkAgeRecipient}).
 * @param vaultId The vault id.
 * @param slotId The slot id (8 bytes).
 * @returns The slot.
 */
export async function sealAgeSlot(
  root: Uint8Array<ArrayBuffer>,
  recipient: string,
  vaultId: Uint8Array<ArrayBuffer>,
  slotId: Uint8Array<ArrayBuffer>,
): Promise<AgeSlot> {
  const slotKey = randomBytes(KEY_BYTES);
  try {
    const e = new (await ageLib()).Encrypter();
    e.addRecipient(recipient);
    const age = new Uint8Array(await e.encrypt(slotKey));
    const wrapped = await seal(slotKey, root, slotAad(vaultId, slotId));
    return { id: slotId, kind: "age", recipient, age, wrapped };
  } finally {
    slotKey.fill(0);
  }
}

/**
 * The identities of an age identity file: every `AGE-SECRET-KEY-1...` line (comments and blank
 * lines skipped, as age-keygen writes them), each with its recipient.
 *
 * @param text The file's text.
 * @returns The identities.
 * @throws {HecateError} `usage` when a line is neither a comment nor an X25519 identity, or when
 * there is none. The message never quotes the line.
 */
export async function parseAgeIdentities(
  text: string,
): Promise<{ identity: string; recipient: string }[]> {
  const out: { identity: string; recipient: string }[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (!line.startsWith("AGE-SECRET-KEY-1")) {
      throw new HecateError("usage", `Identity file line ${i + 1} is not an age X25519 identity`);
    }
    try {
      out.push({ identity: line, recipient: await (await ageLib()).identityToRecipient(line) });
    } catch {
      throw new HecateError("usage", `Identity file line ${i + 1} is not a valid age identity`);
    }
  }
  if (out.length === 0) throw new HecateError("usage", "The identity file holds no age identity");
  return out;
}

/**
 * Recovers the root key from an age slot with an identity.
 *
 * @param slot The slot.
 * @param identity The `AGE-SECRET-KEY-1...` text.
 * @param vaultId The vault id.
 * @returns The root key.
 * @throws {AuthenticationFailure} when the identity does not open the age file or the sealed root
 * key does not open under the slot key (another identity, or an altered or moved slot).
 */
export async function openAgeSlot(
  slot: AgeSlot,
  identity: string,
  vaultId: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  let slotKey: Uint8Array<ArrayBuffer>;
  try {
    const d = new (await ageLib()).Decrypter();
    d.addIdentity(identity);
    slotKey = new Uint8Array(await d.decrypt(slot.age));
  } catch {
    throw new AuthenticationFailure();
  }
  try {
    if (slotKey.length !== KEY_BYTES) throw new AuthenticationFailure();
    const root = await open(slotKey, slot.wrapped, slotAad(vaultId, slot.id));
    if (root.length !== KEY_BYTES) {
      root.fill(0);
      throw new AuthenticationFailure();
    }
    return root;
  } finally {
    slotKey.fill(0);
  }
}
