/**
 * Key-slot ids are shown by `slot list` and typed back into `slot remove ID`: an id whose text
 * started with `-` would be read as an option there (1 draw in 64 before this test's fix).
 */
import assert from "node:assert/strict";
import { toBase64Url } from "../src/vault/encoding.ts";
import { randomSlotId } from "../src/vault/primitives.ts";

Deno.test("slot ids never start with '-' and stay 8 random bytes", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 4096; i++) {
    const id = randomSlotId();
    assert.equal(id.length, 8);
    const text = toBase64Url(id);
    assert.ok(!text.startsWith("-"), text);
    seen.add(text);
  }
  assert.equal(seen.size, 4096);
});
