/**
 * Editing a vault file as an attacker with write access would, independently of the code under
 * test: a format-3 file (header, seal, one line per record) is read as one "logical" body JSON
 * with the records inline, as format 2 had them, and written back with every unkeyed value an
 * attacker can compute recomputed (each record line's SHA-256 and size in the header's table, the
 * SHA-256 of all record lines, the header's checksum), keeping the seal's MAC and signature. Format-1 and -2 files (two lines) are
 * read and written as they are.
 *
 * @module
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The seal line's members. */
export interface SealJson {
  sha256: string;
  mac: string;
  sig?: string;
}

/** A vault file as one body with its records inline. */
export interface LogicalFile {
  /** The body (format 3: the header with `records` holding the record objects of the lines). */
  body: Record<string, unknown> & { records: unknown[] };
  seal: SealJson;
}

function b64u(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/**
 * The lines of a vault file: the first (body or header), the seal, and the record lines.
 *
 * @param file The file.
 * @returns The first line's bytes, the parsed seal, and the record lines (format 3) as text.
 */
export function fileLines(
  file: Uint8Array,
): { body: Uint8Array<ArrayBuffer>; seal: SealJson; records: string[] } {
  const lines = dec.decode(file).split("\n");
  if (lines.length < 3 || lines.at(-1) !== "") throw new Error("fixture is not a vault file");
  const nl = file.indexOf(0x0a);
  return {
    body: file.slice(0, nl),
    seal: JSON.parse(lines[1]!),
    records: lines.slice(2, -1),
  };
}

/**
 * Reads a file as a logical body.
 *
 * @param file The file.
 * @returns Body (records inline) and seal.
 */
export function readLogical(file: Uint8Array): LogicalFile {
  const { body, seal, records } = fileLines(file);
  const json = JSON.parse(dec.decode(body));
  if (json.version >= 3) {
    // Recomputed by writeLogical from the lines, so the logical body has format 2's fields.
    delete json.lines_sha256;
    json.records = records.map((l) => JSON.parse(l));
  }
  return { body: json, seal };
}

/**
 * Builds a file from a header or body text, its seal members and record lines, with the unkeyed
 * checksum recomputed over the first line.
 *
 * @param body The first line.
 * @param seal MAC and optional signature (the checksum is recomputed).
 * @param records Record lines (format 3).
 * @returns The file.
 */
export async function assemble(
  body: Uint8Array<ArrayBuffer>,
  seal: { mac: string; sig?: string | undefined },
  records: string[] = [],
): Promise<Uint8Array<ArrayBuffer>> {
  const sealLine = JSON.stringify({
    sha256: b64u(await sha256(body)),
    mac: seal.mac,
    ...seal.sig ? { sig: seal.sig } : {},
  });
  const tail = enc.encode(["", sealLine, ...records, ""].join("\n"));
  const out = new Uint8Array(body.length + tail.length);
  out.set(body, 0);
  out.set(tail, body.length);
  return out;
}

/**
 * Writes a logical body back as a file of its version: format 3 gets one line per record and a
 * record table with each line's size and SHA-256; every unkeyed value is recomputed, the MAC and
 * signature kept.
 *
 * @param logical Body and seal.
 * @returns The file.
 */
export async function writeLogical(logical: LogicalFile): Promise<Uint8Array<ArrayBuffer>> {
  const { body, seal } = logical;
  if (typeof body.version !== "number" || body.version < 3 || !Array.isArray(body.records)) {
    return await assemble(enc.encode(JSON.stringify(body)), seal);
  }
  const lines = body.records.map((r) => JSON.stringify(r));
  const table = [];
  for (const [i, line] of lines.entries()) {
    const bytes = enc.encode(line);
    const id = (body.records[i] as { id?: unknown } | null)?.id;
    table.push({ id, size: bytes.length, sha256: b64u(await sha256(bytes)) });
  }
  const region = enc.encode(lines.map((l) => l + "\n").join(""));
  // The header's members in the body's order, the checksum of the lines right after the table.
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    header[k] = k === "records" ? table : v;
    if (k === "records") header.lines_sha256 = b64u(await sha256(region));
  }
  return await assemble(enc.encode(JSON.stringify(header)), seal, lines);
}

/**
 * Edits the logical body of a file and writes it back ({@link readLogical}, {@link writeLogical}).
 *
 * @param file The file.
 * @param edit Changes the body in place.
 * @returns The edited file.
 */
export async function editLogical(
  file: Uint8Array,
  edit: (body: Record<string, unknown>) => void,
): Promise<Uint8Array<ArrayBuffer>> {
  const logical = readLogical(file);
  edit(logical.body);
  return await writeLogical(logical);
}

/**
 * A file in memory read by position, as `VaultStore.openPositioned` reads one on disk; it notes
 * every range read, so a test can check what a reader looked at.
 */
export class MemoryPositionedFile {
  /** The file's size. */
  readonly size: number;
  /** Every read, as [offset, bytes returned]. */
  readonly reads: [number, number][] = [];
  readonly #bytes: Uint8Array<ArrayBuffer>;

  constructor(bytes: Uint8Array<ArrayBuffer>) {
    this.#bytes = bytes;
    this.size = bytes.length;
  }

  /** Reads up to `length` bytes at `offset`. */
  readAt(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
    const out = this.#bytes.slice(offset, offset + length);
    this.reads.push([offset, out.length]);
    return Promise.resolve(out);
  }

  /** How many bytes were read in all. */
  get bytesRead(): number {
    return this.reads.reduce((n, [, len]) => n + len, 0);
  }
}
