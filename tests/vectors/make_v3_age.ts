/**
 * Writes the age-slot test vectors ONCE (see README.md): `v3-age`, a version-3 vault with an age
 * slot, which opens with the password and with the (non-secret, test-only) age identity in
 * `identity.txt`; and `v3-age-moved-slot`, the same file with the age slot's `wrapped` taken from
 * a slot of another vault sealed for the same identity (checksum, MAC and signature made with the
 * real keys): the identity must not open it. tests/vectors_test.ts checks both.
 *
 * ```text
 * scripts/deno.sh run -A tests/vectors/make_v3_age.ts [--force]
 * ```
 *
 * @module
 */

import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { initVault, openVault } from "../../src/hecate.ts";
import type { AuditSink } from "../../src/audit/log.ts";
import { sealAgeSlot } from "../../src/vault/age_slot.ts";
import { fromBase64Url, toBase64Url } from "../../src/vault/encoding.ts";
import { signEd25519 } from "../../src/vault/asymmetric.ts";
import {
  deriveKeys,
  macBody,
  openMeta,
  signedBodyMessage,
  unwrapRootWithPassword,
} from "../../src/vault/keyring.ts";
import { randomBytes, sha256 } from "../../src/vault/primitives.ts";
import { UnlockedVault } from "../../src/vault/vault.ts";

const HERE = new URL(".", import.meta.url).pathname;
const PASSWORD = "hecate-v3-age-test-vector (not a secret)";
const noAudit: AuditSink = { append: () => Promise.resolve() };
const enc = new TextEncoder();
const dec = new TextDecoder();

if (!Deno.args.includes("--force")) {
  try {
    await Deno.stat(`${HERE}v3-age/vault.hecate`);
    console.error("tests/vectors/v3-age exists; vectors are fixed. Pass --force to remake them.");
    Deno.exit(1);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

const identity = await generateX25519Identity();
const recipient = await identityToRecipient(identity);
const home = await Deno.makeTempDir({ prefix: "hecate-vectors-" });
await initVault({ home, password: PASSWORD, kdfIterations: 600_000, audit: noAudit });
const vault = await openVault({ home, password: PASSWORD, audit: noAudit, lockout: "off" });
await vault.profiles.add({
  name: "reporting",
  engine: "postgres",
  host: "db.example",
  user: "report",
  secrets: { password: { value: "v3-age-s3cret" } },
});
await vault.slots.addAge(recipient, { label: "teammate" });
const basic = await Deno.readFile(`${home}/vault.hecate`);
await Deno.remove(home, { recursive: true });
const state = await UnlockedVault.unlock(basic, PASSWORD);

// The moved slot: the same header, the age slot's `wrapped` from another vault's slot for the
// same recipient (so the age file still decrypts), sealed with the real keys.
const text = dec.decode(basic);
const [headerText, _seal, ...rest] = text.split("\n");
const header = JSON.parse(headerText!);
const pw = header.slots.find((s: { kind: string }) => s.kind === "password");
const vaultId = fromBase64Url(header.vault_id);
const root = await unwrapRootWithPassword(
  fromBase64Url(pw.wrapped),
  PASSWORD,
  fromBase64Url(pw.kdf.salt),
  pw.kdf.iterations,
  vaultId,
  fromBase64Url(pw.id),
);
const keys = await deriveKeys(root, vaultId);
const meta = JSON.parse(dec.decode(await openMeta(keys.meta, fromBase64Url(header.meta), vaultId)));
const ageAt = header.slots.findIndex((s: { kind: string }) => s.kind === "age");
const foreign = await sealAgeSlot(randomBytes(32), recipient, randomBytes(16), fromBase64Url(header.slots[ageAt].id));
header.slots[ageAt] = { ...header.slots[ageAt], age: toBase64Url(foreign.age), wrapped: toBase64Url(foreign.wrapped) };
const headerLine = enc.encode(JSON.stringify(header));
const seal = {
  sha256: toBase64Url(await sha256(headerLine)),
  mac: toBase64Url(await macBody(keys.mac, headerLine)),
  sig: toBase64Url(await signEd25519(fromBase64Url(meta.signer.seed), signedBodyMessage(headerLine))),
};
const moved = enc.encode([dec.decode(headerLine), JSON.stringify(seal), ...rest].join("\n"));

const PROFILE_FIELDS = ["name", "engine", "host", "port", "database", "user", "auth", "tls", "tags"]
  .concat(["connectTimeoutMs", "secrets"]);

async function vector(name: string, bytes: Uint8Array, expected: Record<string, unknown>) {
  const dir = `${HERE}${name}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(`${dir}/vault.hecate`, bytes, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/password.txt`, PASSWORD);
  await Deno.writeTextFile(`${dir}/identity.txt`, `# test-only identity, not a secret\n${identity}\n`);
  await Deno.writeTextFile(`${dir}/expected.json`, JSON.stringify(expected, null, 2) + "\n");
}

await vector("v3-age", basic, {
  outcome: "ok",
  description: "A version-3 vault with one profile and an age slot (label teammate); opens with " +
    "the password and with the age identity in identity.txt.",
  format_version: 3,
  vault_id: state.id,
  generation: state.generation,
  kdf_iterations: state.passwordIterations,
  identity_profiles: ["reporting"],
  profiles: (await state.records()).map(({ value }) =>
    Object.fromEntries(PROFILE_FIELDS.filter((f) => value[f] !== undefined).map((f) => [f, value[f]]))
  ),
});
await vector("v3-age-moved-slot", moved, {
  outcome: "ok",
  description: "v3-age with the age slot's age file and wrapped key taken from a slot for the " +
    "same identity in another vault (checksum, MAC, signature made with the real keys): the " +
    "password opens it; the identity does not (auth_failed).",
  format_version: 3,
  vault_id: state.id,
  generation: state.generation,
  kdf_iterations: state.passwordIterations,
  identity_code: "auth_failed",
  profiles: (await state.records()).map(({ value }) =>
    Object.fromEntries(PROFILE_FIELDS.filter((f) => value[f] !== undefined).map((f) => [f, value[f]]))
  ),
});
console.log("wrote v3-age and v3-age-moved-slot");
