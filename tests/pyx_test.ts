/** The Hecate Pyx decryptor on its own: what a wrong password and damage look like. */

import assert from "node:assert/strict";
import { decryptPyxFile, PyxDecryptError } from "../src/import/pyx.ts";

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
