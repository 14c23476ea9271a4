/**
 * Writes the stored-secret test vectors ONCE (see README.md): `v3-secret`, a version-3 vault with
 * a profile, a stored secret (two versions) and an API key whose scope is the secret, and
 * `v3-secret-relabelled`, the same file with the secret's record line re-labelled `"profile"`
 * and every hash, the MAC and the signature made again with the real keys: only the record's
 * associated data (which binds its kind) can refuse it.
 *
 * ```text
 * scripts/deno.sh run -A tests/vectors/make_v3_secret.ts [--force]
 * ```
 *
 * @module
 */

import { initVault, openVault } from "../../src/hecate.ts";
import type { AuditSink } from "../../src/audit/log.ts";
import { fromBase64Url, toBase64Url } from "../../src/vault/encoding.ts";
import { signEd25519 } from "../../src/vault/asymmetric.ts";
import {
  deriveKeys,
  macBody,
  openMeta,
  signedBodyMessage,
  unwrapRootWithPassword,
} from "../../src/vault/keyring.ts";
import { sha256 } from "../../src/vault/primitives.ts";
import { UnlockedVault } from "../../src/vault/vault.ts";

const HERE = new URL(".", import.meta.url).pathname;
const PASSWORD = "hecate-v3-secret-test-vector (not a secret)";
const noAudit: AuditSink = { append: () => Promise.resolve() };
const enc = new TextEncoder();
const dec = new TextDecoder();

if (!Deno.args.includes("--force")) {
  try {
    await Deno.stat(`${HERE}v3-secret/vault.hecate`);
    console.error("tests/vectors/v3-secret exists; vectors are fixed. Pass --force to remake them.");
    Deno.exit(1);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

const home = await Deno.makeTempDir({ prefix: "hecate-vectors-" });
await initVault({ home, password: PASSWORD, kdfIterations: 600_000, audit: noAudit });
const vault = await openVault({ home, password: PASSWORD, audit: noAudit, lockout: "off" });
await vault.profiles.add({ name: "cache", engine: "sqlite", database: "/var/lib/app/cache.db" });
await vault.secrets.set("token", "v3-secret-value-1");
await vault.secrets.set("token", "v3-secret-value-2 ✓");
const apiKey = await vault.apiKeys.create({
  name: "app",
  profiles: [],
  secrets: ["token"],
  expires: null,
});
await vault.close();
const file = await Deno.readFile(`${home}/vault.hecate`);
await Deno.remove(home, { recursive: true });
const state = await UnlockedVault.unlock(file, PASSWORD);

const text = dec.decode(file);
const [headerText, , ...rest] = text.split("\n");
const lines = rest.slice(0, -1);
const header = JSON.parse(headerText!);
const slot = header.slots.find((s: { kind: string }) => s.kind === "password");
const vaultId = fromBase64Url(header.vault_id);
const root = await unwrapRootWithPassword(
  fromBase64Url(slot.wrapped),
  PASSWORD,
  fromBase64Url(slot.kdf.salt),
  slot.kdf.iterations,
  vaultId,
  fromBase64Url(slot.id),
);
const keys = await deriveKeys(root, vaultId);
const meta = JSON.parse(dec.decode(await openMeta(keys.meta, fromBase64Url(header.meta), vaultId)));
const seed = fromBase64Url(meta.signer.seed);
const tokenId = state.recordIdByName("token", "secret")!;
const at = header.records.findIndex((r: { id: string }) => r.id === tokenId);

/** The token line re-labelled; table entry, lines hash, checksum, MAC and signature remade. */
async function relabelled(): Promise<Uint8Array> {
  const edited = [...lines];
  edited[at] = edited[at]!.replace('"kind":"secret"', '"kind":"profile"');
  if (edited[at] === lines[at]) throw new Error("the token line has no secret kind");
  const line = enc.encode(edited[at]!);
  const h = { ...header, records: [...header.records] };
  h.records[at] = { id: tokenId, size: line.length, sha256: toBase64Url(await sha256(line)) };
  h.lines_sha256 = toBase64Url(await sha256(enc.encode(edited.map((l) => l + "\n").join(""))));
  const headerLine = JSON.stringify(h);
  const b = enc.encode(headerLine);
  const s = {
    sha256: toBase64Url(await sha256(b)),
    mac: toBase64Url(await macBody(keys.mac, b)),
    sig: toBase64Url(await signEd25519(seed, signedBodyMessage(b))),
  };
  return enc.encode([headerLine, JSON.stringify(s), ...edited, ""].join("\n"));
}

// The stored fields the vectors pin (as make_v3.ts; the times are not part of the format).
const PROFILE_FIELDS = ["name", "engine", "host", "port", "database", "user", "auth", "tls", "tags"]
  .concat(["connectTimeoutMs", "secrets"]);

async function vector(name: string, bytes: Uint8Array, expected: Record<string, unknown>) {
  const dir = `${HERE}${name}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(`${dir}/vault.hecate`, bytes, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/password.txt`, PASSWORD);
  await Deno.writeTextFile(`${dir}/expected.json`, JSON.stringify(expected, null, 2) + "\n");
  await Deno.writeTextFile(`${dir}/apikey.txt`, apiKey);
}

await vector("v3-secret", file, {
  outcome: "ok",
  description: "A version-3 vault with a profile, a stored secret of two versions (a record of " +
    "kind secret) and an API key whose scope is the secret (apikey.txt).",
  format_version: 3,
  vault_id: state.id,
  generation: state.generation,
  kdf_iterations: state.passwordIterations,
  apikey_profiles: [],
  apikey_secrets: ["token"],
  profiles: (await state.records()).map(({ value }) => value).filter((v) => v.kind !== "secret")
    .map((value) =>
      Object.fromEntries(PROFILE_FIELDS.filter((f) => value[f] !== undefined).map((f) => [f, value[f]]))
    ),
  secrets: [{ name: "token", value: "v3-secret-value-2 ✓", version: 2 }],
});
await vector("v3-secret-relabelled", await relabelled(), {
  outcome: "error",
  code: "vault_integrity",
  apikey_code: "vault_integrity",
  description: "v3-secret with the secret's record line re-labelled kind profile, and its table " +
    "entry, lines_sha256, checksum, MAC and signature made again with the real keys: the " +
    "record's associated data binds its kind, so it does not open.",
});
console.log("wrote v3-secret, v3-secret-relabelled");
