/**
 * The floor under writing a vault file once: a fresh Deno process that writes
 * `WRITE_FLOOR_BYTES` bytes the way src/vault/store.ts replaces the vault (a new temporary file,
 * written, synced, renamed over `floor.hecate` in `WRITE_FLOOR_DIR`, the directory synced), with
 * nothing of Hecate. The `vaultsize` benchmark section runs it beside `server add` for each vault
 * size: issue 13's goal for a write at 10,000 profiles is 1.3x its 10-profile time plus writing
 * the file once, and the difference between this floor at the two sizes is that allowance.
 *
 * @module
 */

const dir = Deno.env.get("WRITE_FLOOR_DIR");
const size = Number(Deno.env.get("WRITE_FLOOR_BYTES"));
if (!dir || !Number.isSafeInteger(size) || size < 0) {
  throw new Error("set WRITE_FLOOR_DIR and WRITE_FLOOR_BYTES");
}
const temp = `${dir}/floor.${crypto.randomUUID()}.tmp`;
const bytes = new Uint8Array(size);
const file = await Deno.open(temp, { createNew: true, write: true, mode: 0o600 });
try {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
  await file.sync();
} finally {
  file.close();
}
await Deno.rename(temp, `${dir}/floor.hecate`);
const d = await Deno.open(dir, { read: true });
try {
  await d.sync();
} finally {
  d.close();
}
