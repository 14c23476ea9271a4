/**
 * Reading a vault file for a listing (`server list` with a root-key credential): by position,
 * the header and seal lines, the record table and the sealed index line, never the record lines
 * (docs/FORMAT.md, "Reading", "Reading for a listing"). The state unlocked from it lists the
 * profiles from the index and refuses to open a record or to be written (an internal error):
 * a write re-reads the whole file under the lock, as it does after any other writer.
 *
 * @module
 */

import { fromUtf8 } from "./encoding.ts";
import {
  hasIndexLine,
  loadTable,
  type PositionedFile,
  readSplitHead,
  type SplitVaultFile,
} from "./format.ts";

/**
 * A format-4 vault file read for a listing: the split head with the table and index line
 * loaded. Nothing in it is checked yet: the unlock checks it as it checks a whole file.
 */
export class ListingFile {
  /** The split head; `recordBytes` holds the table and index line, zeros after them. */
  readonly split: SplitVaultFile;

  /** @param split The split head, its table and index line loaded. */
  constructor(split: SplitVaultFile) {
    this.split = split;
  }
}

/** Stands in for the file once read: a listing's state reads no record line. */
const NO_RECORD_LINES: PositionedFile = {
  size: 0,
  readAt: () => Promise.reject(new Error("a vault read for a listing reads no record line")),
};

/**
 * Reads what a listing needs of a vault file: for formats 4 and 5 the header, seal, table and index
 * lines by position (two or three reads); a file of another version (no index line) whole, as
 * the unlock then opens its records.
 *
 * @param file The file, open for positioned reads (it may be closed once this returns).
 * @returns The listing head, or the whole file's bytes.
 * @throws {HecateError} `vault_integrity` when the layout, the seal or the sizes are malformed.
 */
export async function readListingFile(
  file: PositionedFile,
): Promise<ListingFile | Uint8Array<ArrayBuffer>> {
  const split = await readSplitHead(file);
  let version: unknown;
  try {
    version = (split.headerJson ??= JSON.parse(fromUtf8(split.bodyBytes)))?.version;
  } catch {
    version = undefined; // reported, with the checksum first, by the whole file's unlock
  }
  // Formats 1 to 3 have no index line (and an old file may have no index at all): read whole.
  if (!hasIndexLine(version)) return await file.readAt(0, file.size);
  await loadTable(split, true);
  // The lines read are in `recordBytes`; nothing more is read from the file.
  split.partial = { ...split.partial!, source: NO_RECORD_LINES };
  return new ListingFile(split);
}
