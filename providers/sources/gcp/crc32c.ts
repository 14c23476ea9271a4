/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum Secret Manager gives with a
 * payload. Written here rather than taken from `@aws-crypto/crc32c` because that package pulls
 * Node's buffer layer into every `gcp-sm:` resolution, which measured as most of the source's
 * start-up cost on the cron path (docs/PERFORMANCE.md); tests/gcp_source_test.ts checks this
 * table against that package and the standard check value.
 *
 * @module
 */

let table: Uint32Array | undefined;

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/**
 * The CRC32C of some bytes.
 *
 * @param bytes The data.
 * @returns The checksum, an unsigned 32-bit number.
 */
export function crc32c(bytes: Uint8Array): number {
  const t = (table ??= makeTable());
  let c = 0xffffffff;
  for (const b of bytes) c = t[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
