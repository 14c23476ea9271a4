/**
 * The PKCS#11 slot in the header (docs/FORMAT.md, "PKCS#11 slot"), without a token: a valid slot
 * survives a write and a read unchanged; a version-2 body with one, or a malformed one, is
 * "damaged"; and hostile slot objects (property test) are refused only as `vault_integrity`, never
 * a crash, and without their text in the message.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { HecateError } from "../src/errors.ts";
import { toBase64Url, utf8 } from "../src/vault/encoding.ts";
import {
  parseBody,
  type Pkcs11Slot,
  serializeBody,
  validPkcs11Label,
} from "../src/vault/format.ts";

const CANARY = "slot-canary-d41f";
const EMPTY_SHA256 = toBase64Url(
  new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array())),
);

const PASSWORD_SLOT = {
  id: toBase64Url(new Uint8Array(8)),
  kind: "password",
  kdf: { alg: "pbkdf2-sha256", iterations: 600000, salt: toBase64Url(new Uint8Array(16)) },
  wrapped: toBase64Url(new Uint8Array(60)),
};

function header(slot: unknown, version = 3): Uint8Array<ArrayBuffer> {
  return utf8(JSON.stringify({
    format: "hecate-vault",
    version,
    vault_id: toBase64Url(new Uint8Array(16).fill(1)),
    generation: 1,
    slots: [PASSWORD_SLOT, slot],
    records: [],
    ...(version >= 3 ? { lines_sha256: EMPTY_SHA256 } : {}),
    meta: "",
  }));
}

function goodSlot(): Record<string, unknown> {
  return {
    id: toBase64Url(new Uint8Array(8).fill(7)),
    kind: "pkcs11",
    token: "hecate-t1",
    key: "hecate",
    iv: toBase64Url(new Uint8Array(12).fill(3)),
    wrapped: toBase64Url(new Uint8Array(48).fill(9)),
  };
}

function assertDamaged(fn: () => unknown, what: string): void {
  assert.throws(fn, (e: unknown) => e instanceof HecateError && e.code === "vault_integrity", what);
}

Deno.test("a PKCS#11 slot is written and read back unchanged", async () => {
  const body = parseBody(header(goodSlot()));
  const slot = body.slots[1] as Pkcs11Slot;
  assert.equal(slot.kind, "pkcs11");
  assert.equal(slot.token, "hecate-t1");
  // Written as the current format (5): no records, so no name tags and an empty index line.
  const out = await serializeBody({ ...body, indexLine: { bytes: utf8("index") } }, []);
  const again = parseBody(out.bodyBytes, out.lines[0] as Uint8Array<ArrayBuffer>);
  assert.equal(again.version, 5);
  assert.deepEqual(again.slots, body.slots);
});

Deno.test("a PKCS#11 slot in a version-2 body, or a malformed one, is damaged", () => {
  assertDamaged(() => parseBody(header(goodSlot(), 2)), "version 2");
  const bad: [string, unknown][] = [
    ["iv", toBase64Url(new Uint8Array(16))],
    ["wrapped", toBase64Url(new Uint8Array(32))],
    ["token", ""],
    ["token", "x".repeat(33)],
    ["token", " padded"],
    ["token", "a\u0000b"],
    ["key", "k".repeat(65)],
    ["key", 7],
    ["id", toBase64Url(new Uint8Array(9))],
    ["extra", "field"],
  ];
  for (const [field, value] of bad) {
    assertDamaged(() => parseBody(header({ ...goodSlot(), [field]: value })), field);
  }
  const { iv: _iv, ...missing } = goodSlot();
  assertDamaged(() => parseBody(header(missing)), "missing iv");
});

Deno.test("labels: 1-32 (token) or 1-64 (key) bytes of UTF-8, no control character or outer space", () => {
  assert.ok(validPkcs11Label("SoftHSM token", 32));
  assert.ok(validPkcs11Label("é".repeat(16), 32)); // 32 bytes
  assert.ok(!validPkcs11Label("é".repeat(17), 32)); // 34 bytes
  assert.ok(!validPkcs11Label("tab\there", 64));
  assert.ok(!validPkcs11Label("trailing ", 64));
});

Deno.test("hostile PKCS#11 slot objects: read or refused as vault_integrity, no crash, no echo", () => {
  const value = fc.oneof(
    fc.string({ maxLength: 40 }).map((s) => `${CANARY}${s}`),
    fc.uint8Array({ maxLength: 60 }).map((b) => toBase64Url(b)),
    fc.integer(),
    fc.constant(null),
    fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
  );
  const slot = fc.record({
    id: fc.oneof(value, fc.constant(goodSlot().id)),
    kind: fc.constant("pkcs11"),
    token: fc.oneof(value, fc.string({ minLength: 1, maxLength: 40 })),
    key: fc.oneof(value, fc.string({ minLength: 1, maxLength: 70 })),
    iv: fc.oneof(value, fc.constant(goodSlot().iv)),
    wrapped: fc.oneof(value, fc.constant(goodSlot().wrapped)),
  }, { requiredKeys: [] });
  fc.assert(
    fc.property(slot, (s) => {
      try {
        const body = parseBody(header(s));
        const read = body.slots[1] as Pkcs11Slot;
        assert.ok(validPkcs11Label(read.token, 32) && validPkcs11Label(read.key, 64));
        assert.equal(read.iv.length, 12);
        assert.equal(read.wrapped.length, 48);
      } catch (e) {
        assert.ok(e instanceof HecateError && e.code === "vault_integrity", String(e));
        assert.ok(!e.message.includes(CANARY), e.message);
      }
    }),
    { numRuns: 400 },
  );
});
