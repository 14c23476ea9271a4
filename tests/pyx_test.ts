/** The Hecate Pyx decryptor on its own: what a wrong password and damage look like. */

import assert from "node:assert/strict";
import { decryptPyxFile, mapPyxProfile, openPyxFile, PyxDecryptError } from "../src/import/pyx.ts";
import type { ProfileInput } from "../src/api/profiles.ts";
import type { Profile } from "../src/profile.ts";
import { connectSettings, settleIncomplete } from "../providers/mod.ts";
import { pyx30File } from "./support/pyx_files.ts";

async function encrypt(text: string, password: string): Promise<Uint8Array<ArrayBuffer>> {
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(16));
  const base = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveKey"],
  );
  const key = await crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: 100_000 },
    base,
    { name: "AES-CBC", length: 256 },
    false,
    ["encrypt"],
  );
  const ct = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-CBC", iv }, key, new TextEncoder().encode(text)),
  );
  const out = new Uint8Array(48 + ct.length);
  out.set(salt);
  out.set(iv, 32);
  out.set(ct, 48);
  return out;
}

/**
 * A legacy-layout file (salt, iv, one block) that decrypts under `password` to exactly `plain`
 * (16 bytes, its own padding included): the block is E(plain XOR iv), taken from an AES-CBC
 * encryption with a zero iv.
 */
async function forgeLegacy(
  password: string,
  salt: Uint8Array<ArrayBuffer>,
  iv: Uint8Array<ArrayBuffer>,
  plain: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  const base = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveKey"],
  );
  const key = await crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: 100_000 },
    base,
    { name: "AES-CBC", length: 256 },
    false,
    ["encrypt"],
  );
  const x = plain.map((b, i) => b ^ iv[i]!);
  const ct = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-CBC", iv: new Uint8Array(16) }, key, x),
  );
  const out = new Uint8Array(48 + 16);
  out.set(salt);
  out.set(iv, 32);
  out.set(ct.subarray(0, 16), 48);
  return out;
}

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "opened";
  } catch (e) {
    assert.ok(e instanceof PyxDecryptError);
    return e.reason;
  }
}

Deno.test("decryptPyxFile opens what Hecate Pyx wrote", async () => {
  const file = await encrypt('{"a": {"server": "x"}}', "pw");
  assert.deepEqual(await decryptPyxFile(file, "pw"), { a: { server: "x" } });
});

Deno.test("decryptPyxFile never calls a wrong password a damaged file", async () => {
  // About 1 in 256 wrong keys leaves valid-looking padding; the result must still read as a
  // password (or padding) failure, never as damage.
  const file = await encrypt('{"a": 1}', "right");
  for (let i = 0; i < 300; i++) {
    assert.equal(await reason(decryptPyxFile(file, `wrong-${i}`)), "bad_padding");
  }
});

Deno.test("decryptPyxFile tells damage from a wrong password", async () => {
  const file = await encrypt(`{"k": "${"v".repeat(64)}"}`, "pw");
  assert.equal(await reason(decryptPyxFile(file.slice(0, -1), "pw")), "bad_length");
  assert.equal(await reason(decryptPyxFile(file.slice(0, 48), "pw")), "bad_length");
  // A changed byte in a middle block garbles that block: valid padding, JSON broken.
  const mid = file.slice();
  mid[48 + 16 + 3]! ^= 0x10;
  assert.equal(await reason(decryptPyxFile(mid, "pw")), "not_json");
});

const DOC = JSON.stringify({ version: "3.0", servers: { a: { server: "x" } } });

Deno.test("openPyxFile reads the 3.0 layout and verifies its HMAC under each plausible derivation", async () => {
  for (const key of ["second-half", "aes-key"] as const) {
    for (const covers of ["iv+ct", "salt+iv+ct", "ct"] as const) {
      const o = await openPyxFile(await pyx30File(DOC, "pw", { mac: { key, covers } }), "pw");
      assert.equal(o.layout, "3.0", `${key} ${covers}`);
      assert.equal(o.mac, "verified", `${key} ${covers}`);
      assert.deepEqual(o.value, JSON.parse(DOC));
    }
  }
  const legacy = await openPyxFile(await encrypt(DOC, "pw"), "pw");
  assert.deepEqual([legacy.layout, legacy.mac], ["legacy", "none"]);
});

Deno.test("openPyxFile: an unknown HMAC derivation is 'unverifiable', unless a sibling verified", async () => {
  const file = await pyx30File(DOC, "pw", { mac: { key: "random", covers: "iv+ct" } });
  const o = await openPyxFile(file, "pw");
  assert.deepEqual([o.layout, o.mac], ["3.0", "unverifiable"]);
  // Another file of the directory verified: this one must too, so a bad tag is damage.
  assert.equal(
    await reason(openPyxFile(file, "pw", "pbkdf2-64-split/iv+ciphertext")),
    "mac_mismatch",
  );
});

Deno.test("openPyxFile: 3.0 wrong password vs damage", async () => {
  const file = await pyx30File(`{"k": "${"v".repeat(64)}"}`, "pw", {
    mac: {
      key: "second-half",
      covers: "iv+ct",
    },
  });
  for (let i = 0; i < 40; i++) {
    assert.equal(await reason(openPyxFile(file, `wrong-${i}`)), "bad_padding");
  }
  const mid = file.slice();
  mid[48 + 16 + 3]! ^= 0x10;
  assert.equal(await reason(openPyxFile(mid, "pw")), "not_json");
  assert.equal(await reason(openPyxFile(file.slice(0, -1), "pw")), "bad_length");
});

function asStored(input: ProfileInput): Profile {
  return {
    ...input,
    auth: input.auth ?? "sql",
    tls: { mode: "verify" },
    secrets: input.secrets ?? {},
    created: "",
    updated: "",
  } as Profile;
}

Deno.test("an incomplete tunnel profile stays refused until the tunnel is given, whatever else is edited", async () => {
  const m = mapPyxProfile("t", {
    server: "10.0.0.5",
    auth_type: "ssh_tunnel",
    ssh_host: "bastion.example",
    sql_username: "sa",
    sql_password: "pw",
  });
  const p = asStored(m.input!);
  assert.equal(p.ssh, undefined);
  assert.deepEqual(p.incomplete?.missing, ["ssh"]);
  // Editing other fields never clears it: the database host is only reachable through the tunnel.
  settleIncomplete(p);
  assert.deepEqual(p.incomplete?.missing, ["ssh"]);
  await assert.rejects(connectSettings(p), /is incomplete: missing SSH tunnel host and user/);
  p.ssh = { hops: [{ host: "bastion.example", user: "jump", auth: "agent" }] };
  settleIncomplete(p);
  assert.equal(p.incomplete, undefined);
});

Deno.test("an incomplete profile's marker follows its method: changing the method re-evaluates it", () => {
  const p = asStored(mapPyxProfile("w", { server: "db", auth_type: "windows_auth" }).input!);
  assert.deepEqual(p.incomplete?.missing, ["user", "params.domain", "secrets.password"]);
  p.user = "alice";
  settleIncomplete(p);
  assert.deepEqual(p.incomplete?.missing, ["params.domain", "secrets.password"]);
  // Switching to a SQL login: the domain is no longer needed, the password still is.
  p.auth = "sql";
  settleIncomplete(p);
  assert.deepEqual(p.incomplete?.missing, ["secrets.password"]);
  p.secrets = { password: { value: "pw" } };
  settleIncomplete(p);
  assert.equal(p.incomplete, undefined);
});

Deno.test("decryptPyxFile: a wrong key whose garbage starts with '{' and ends in valid padding is still a password failure", async () => {
  // What 1 wrong key in about 30,000 gives: the legacy layout's plaintext is random bytes, here
  // made to start with "{" and end in one byte of padding. Built by decrypting chosen bytes: a
  // one-block file whose ciphertext decrypts, under the wrong key, to exactly that block.
  const wrong = "wrong-password";
  const salt = new Uint8Array(32);
  const iv = new Uint8Array(16);
  const garbage = crypto.getRandomValues(new Uint8Array(16));
  garbage[0] = 0x7b;
  garbage[1] = 0xff; // never UTF-8
  garbage[15] = 0x01;
  const file = await forgeLegacy(wrong, salt, iv, garbage);
  assert.equal(await reason(decryptPyxFile(file, wrong)), "bad_padding");
});
