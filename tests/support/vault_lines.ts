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
): {
  body: Uint8Array<ArrayBuffer>;
  seal: SealJson;
  records: string[];
  prefix?: Uint8Array<ArrayBuffer>;
} {
  const nl = file.indexOf(0x0a);
  const sealEnd = file.indexOf(0x0a, nl + 1);
  const header = JSON.parse(dec.decode(file.subarray(0, nl)));
  if (header.version >= 4) {
    // Format 4: the binary table and the index line come first, located by the header's sizes.
    const start = sealEnd + 1 + header.records * TABLE_ENTRY + 1 + header.index_size + 1;
    const rest = dec.decode(file.subarray(start)).split("\n");
    return {
      body: file.slice(0, nl),
      seal: JSON.parse(dec.decode(file.subarray(nl + 1, sealEnd))),
      records: rest.slice(0, -1),
      prefix: file.slice(sealEnd + 1, start),
    };
  }
  const lines = dec.decode(file).split("\n");
  if (lines.length < 3 || lines.at(-1) !== "") throw new Error("fixture is not a vault file");
  return {
    body: file.slice(0, nl),
    seal: JSON.parse(lines[1]!),
    records: lines.slice(2, -1),
  };
}

/** Bytes in a format-4 record table entry (id, size, SHA-256, name tag). */
export const TABLE_ENTRY = 68;

/** The parts of a format-4 file after the seal line, as an attacker reads them. */
export interface V4Parts {
  /** Per record: id, line size, line SHA-256, name tag (raw bytes, as in the table). */
  table: { id: Uint8Array; size: number; sha256: Uint8Array; tag: Uint8Array }[];
  /** The sealed index line. */
  index: Uint8Array<ArrayBuffer>;
  /** The record lines, as text. */
  records: string[];
}

/**
 * Splits a format-4 file into header JSON, seal and the parts after the seal.
 *
 * @param file The file.
 * @returns The parts.
 */
export function readV4(
  file: Uint8Array,
): { header: Record<string, unknown>; seal: SealJson; parts: V4Parts } {
  const nl = file.indexOf(0x0a);
  const sealEnd = file.indexOf(0x0a, nl + 1);
  const header = JSON.parse(dec.decode(file.subarray(0, nl)));
  // Format 5 keeps format 4's layout (only the index line's plaintext differs).
  if (header.version !== 4 && header.version !== 5) throw new Error("not a format-4 file");
  const at = sealEnd + 1;
  const n = header.records as number;
  const tableBytes = file.slice(at, at + n * TABLE_ENTRY);
  const view = new DataView(tableBytes.buffer);
  const table = Array.from({ length: n }, (_, i) => {
    const o = i * TABLE_ENTRY;
    return {
      id: tableBytes.slice(o, o + 16),
      size: view.getUint32(o + 16),
      sha256: tableBytes.slice(o + 20, o + 52),
      tag: tableBytes.slice(o + 52, o + 68),
    };
  });
  const indexAt = at + n * TABLE_ENTRY + 1;
  const index = file.slice(indexAt, indexAt + (header.index_size as number));
  const records = dec.decode(file.subarray(indexAt + index.length + 1)).split("\n").slice(0, -1);
  return {
    header,
    seal: JSON.parse(dec.decode(file.subarray(nl + 1, sealEnd))),
    parts: { table, index, records },
  };
}

/**
 * Writes a format-4 file from its header members and parts with every unkeyed value recomputed
 * (the three SHA-256 values and the index size in the header, the header checksum), the MAC and
 * signature kept. `table` entries are written as given (sizes and hashes are NOT recomputed from
 * the lines: call {@link rehashTable} for that).
 *
 * @param header The header members (records, table_sha256, index_size, index_sha256 and
 * lines_sha256 are recomputed).
 * @param seal MAC and signature.
 * @param parts Table, index line and record lines.
 * @returns The file.
 */
export async function writeV4(
  header: Record<string, unknown>,
  seal: { mac: string; sig?: string | undefined },
  parts: V4Parts,
): Promise<Uint8Array<ArrayBuffer>> {
  const table = new Uint8Array(parts.table.length * TABLE_ENTRY);
  const view = new DataView(table.buffer);
  parts.table.forEach((e, i) => {
    const o = i * TABLE_ENTRY;
    table.set(e.id, o);
    view.setUint32(o + 16, e.size);
    table.set(e.sha256, o + 20);
    table.set(e.tag, o + 52);
  });
  const region = enc.encode(parts.records.map((l) => l + "\n").join(""));
  const h = {
    format: header.format,
    version: header.version,
    vault_id: header.vault_id,
    generation: header.generation,
    slots: header.slots,
    records: parts.table.length,
    table_sha256: b64u(await sha256(table)),
    index_size: parts.index.length,
    index_sha256: b64u(await sha256(parts.index)),
    lines_sha256: b64u(await sha256(region)),
    meta: header.meta,
  } as Record<string, unknown>;
  // Members an edit added (an attacker's extra field) are kept, after the known ones.
  const logicalOnly = ["name_tags", "index_line"];
  for (const [k, v] of Object.entries(header)) {
    if (!(k in h) && !logicalOnly.includes(k)) h[k] = v;
  }
  const prefix = new Uint8Array(table.length + 1 + parts.index.length + 1);
  prefix.set(table, 0);
  prefix[table.length] = 0x0a;
  prefix.set(parts.index, table.length + 1);
  prefix[prefix.length - 1] = 0x0a;
  return await assemble(enc.encode(JSON.stringify(h)), seal, parts.records, prefix);
}

/**
 * Recomputes each table entry's size and SHA-256 from the record line at its position.
 *
 * @param parts The parts (changed in place).
 */
export async function rehashTable(parts: V4Parts): Promise<void> {
  for (const [i, line] of parts.records.entries()) {
    const bytes = enc.encode(line);
    const e = parts.table[i];
    if (!e) continue;
    e.size = bytes.length;
    e.sha256 = await sha256(bytes);
  }
}

/**
 * Reads a file as a logical body.
 *
 * @param file The file.
 * @returns Body (records inline) and seal.
 */
export function readLogical(file: Uint8Array): LogicalFile {
  if (JSON.parse(dec.decode(file.subarray(0, file.indexOf(0x0a)))).version >= 4) {
    const { header, seal, parts } = readV4(file);
    const body = {
      ...header,
      records: parts.records.map((l) => JSON.parse(l)),
      name_tags: parts.table.map((e) => b64u(e.tag)),
      index_line: b64u(parts.index),
    } as LogicalFile["body"];
    for (const k of ["table_sha256", "index_size", "index_sha256", "lines_sha256"]) delete body[k];
    return { body, seal };
  }
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
  prefix: Uint8Array = new Uint8Array(),
): Promise<Uint8Array<ArrayBuffer>> {
  const sealLine = JSON.stringify({
    sha256: b64u(await sha256(body)),
    mac: seal.mac,
    ...seal.sig ? { sig: seal.sig } : {},
  });
  const head = enc.encode(["", sealLine, ""].join("\n"));
  const tail = enc.encode(records.map((l) => l + "\n").join(""));
  const out = new Uint8Array(body.length + head.length + prefix.length + tail.length);
  out.set(body, 0);
  out.set(head, body.length);
  out.set(prefix, body.length + head.length);
  out.set(tail, body.length + head.length + prefix.length);
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
  if (typeof body.version === "number" && body.version >= 4 && Array.isArray(body.records)) {
    const tags = (body.name_tags ?? []) as string[];
    const lines = body.records.map((r) => JSON.stringify(r));
    const table = [];
    for (const [i, line] of lines.entries()) {
      const bytes = enc.encode(line);
      const id = String((body.records[i] as { id?: unknown } | null)?.id ?? "");
      table.push({
        id: Uint8Array.fromBase64(id, { alphabet: "base64url" }),
        size: bytes.length,
        sha256: await sha256(bytes),
        tag: Uint8Array.fromBase64(tags[i] ?? "", { alphabet: "base64url" }),
      });
    }
    const index = Uint8Array.fromBase64(String(body.index_line ?? ""), { alphabet: "base64url" });
    return await writeV4(body, seal, { table, index, records: lines });
  }
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

/**
 * A format-5 index line's plaintext (`entries`: an array in record order) in the shape formats 1
 * to 4 keep it, keyed by record id: what an older writer would have stored for the same records.
 *
 * @param index The parsed format-5 index plaintext.
 * @param ids The records' ids, in record order.
 * @returns `{ generation, entries: { id: summary } }`.
 */
export function keyedIndex(
  index: { generation: number; entries: unknown[] },
  ids: readonly Uint8Array[],
): { generation: number; entries: Record<string, unknown> } {
  if (index.entries.length !== ids.length) throw new Error("one entry per record expected");
  return {
    generation: index.generation,
    entries: Object.fromEntries(ids.map((id, i) => [b64u(id), index.entries[i]])),
  };
}
