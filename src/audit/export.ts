/**
 * `audit export`: a verified stretch of the trail for shipping off the box, and the check of such
 * a file. The export holds no key: a header (format, vault id, first and last seq, the MAC of the
 * entry before the first one, the last MAC, the count) MACed under an export key derived from A0,
 * then the entry lines exactly as stored. Verifying it needs A0, i.e. the master password, as
 * verifying the trail does; whoever holds only the file can neither check nor forge it.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { HecateError } from "../errors.ts";
import { fromBase64Url, timingSafeEqual, toBase64Url } from "../vault/encoding.ts";
import { MAC_SUFFIX_BYTES, ZERO_MAC } from "./chain.ts";
import { seqOf, splitLine } from "./entry.ts";
import { FastHmac } from "./fast_hmac.ts";
import { trailLines } from "./read.ts";
import { type TrailSnapshot, verifyTrail } from "./verify.ts";

/** The `format` member of an export header. */
export const EXPORT_FORMAT = "hecate-audit-export/1";
const EXPORT_LABEL = new TextEncoder().encode("hecate-audit-v1 export");

/** The header of an export file. */
export interface ExportHeader {
  format: string;
  vault: string;
  exported: string;
  first_seq: number;
  last_seq: number;
  entries: number;
  prev_mac: string;
  last_mac: string;
}

function exportKey(a0: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", a0).update(EXPORT_LABEL).digest());
}

function headerLine(h: ExportHeader, a0: Uint8Array): string {
  const canonical = JSON.stringify({
    format: h.format,
    vault: h.vault,
    exported: h.exported,
    first_seq: h.first_seq,
    last_seq: h.last_seq,
    entries: h.entries,
    prev_mac: h.prev_mac,
    last_mac: h.last_mac,
  });
  const mac = createHmac("sha256", exportKey(a0)).update(canonical).digest();
  return `${canonical.slice(0, -1)},"mac":"${toBase64Url(mac)}"}\n`;
}

function tampered(message: string): HecateError {
  return new HecateError("audit_tampered", message, {
    hint: "run 'hecate audit verify' for details",
  });
}

/**
 * Writes an export of the verified trail from the first entry at or after `since`.
 *
 * @param home The home directory.
 * @param a0 The first chain key.
 * @param vaultId The vault id.
 * @param write Receives the text, in order.
 * @param options `since`, and the snapshot to export up to.
 * @returns The header written.
 * @throws {HecateError} `audit_tampered` when the trail does not verify.
 */
export async function exportTrail(
  home: string,
  a0: Uint8Array,
  vaultId: string,
  write: (text: string) => Promise<void>,
  options: { since?: Date | undefined; snapshot?: TrailSnapshot } = {},
): Promise<ExportHeader> {
  const report = await verifyTrail(home, a0, options.snapshot);
  if (!report.ok) throw tampered(`Audit trail failed verification: ${report.problem!.message}`);
  const since = options.since?.getTime() ?? -Infinity;
  let prev = report.removed.find((r) => r.last_seq === report.firstSeq - 1)?.last_mac ??
    toBase64Url(ZERO_MAC);
  let first = 0;
  let lastMac = "";
  for await (const { entry } of trailLines(home)) {
    if (!entry || entry.seq > report.lastSeq) break;
    if (first === 0 && Date.parse(entry.time) >= since) first = entry.seq;
    if (first === 0) prev = entry.mac;
    else lastMac = entry.mac;
  }
  const header: ExportHeader = {
    format: EXPORT_FORMAT,
    vault: vaultId,
    exported: new Date().toISOString(),
    first_seq: first,
    last_seq: first === 0 ? 0 : report.lastSeq,
    entries: first === 0 ? 0 : report.lastSeq - first + 1,
    prev_mac: prev,
    last_mac: first === 0 ? prev : lastMac,
  };
  await write(headerLine(header, a0));
  if (first === 0) return header;
  for await (const { text, entry } of trailLines(home)) {
    if (!entry || entry.seq > report.lastSeq) break;
    if (entry.seq >= first) await write(text + "\n");
  }
  return header;
}

/**
 * Checks an export file.
 *
 * @param text The file's contents.
 * @param a0 The first chain key of the vault it came from.
 * @returns The header.
 * @throws {HecateError} `audit_tampered` naming the first bad line.
 */
export async function verifyExport(text: string, a0: Uint8Array): Promise<ExportHeader> {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const head = lines[0] ?? "";
  let header: ExportHeader;
  try {
    header = JSON.parse(head);
  } catch {
    throw tampered("Line 1 of the export is not a valid header");
  }
  if (header === null || typeof header !== "object" || header.format !== EXPORT_FORMAT) {
    throw tampered("Line 1 of the export is not a valid header");
  }
  const canonical = head.slice(0, head.length - MAC_SUFFIX_BYTES) + "}";
  const mac = createHmac("sha256", exportKey(a0)).update(canonical).digest();
  if (headerLine(header, a0).trimEnd() !== head || !head.endsWith(`"${toBase64Url(mac)}"}`)) {
    throw tampered("The export header was altered or belongs to another vault");
  }
  const hmac = await FastHmac.create();
  let key: Uint8Array = a0;
  for (let i = 1; i < header.first_seq; i++) key = hmac.next(key);
  let prev: Uint8Array = fromBase64Url(header.prev_mac);
  const enc = new TextEncoder();
  let expected = header.first_seq;
  for (const [i, line] of lines.slice(1).entries()) {
    const n = i + 2;
    const bytes = enc.encode(line);
    const seq = seqOf(bytes);
    const parts = splitLine(bytes);
    if (!parts || seq < 0) throw tampered(`Line ${n} of the export is not a well-formed entry`);
    if (seq !== expected) {
      throw tampered(`Line ${n} of the export has seq ${seq} where seq ${expected} was expected`);
    }
    const step = hmac.step(key, prev, parts.body);
    if (toBase64Url(step.mac) !== parts.mac) {
      throw tampered(`Line ${n} of the export (seq ${seq}) was altered: its MAC does not match`);
    }
    prev = step.mac;
    key = step.next;
    expected++;
  }
  if (expected - header.first_seq !== header.entries) {
    throw tampered(
      `The export holds ${expected - header.first_seq} entries but its header says ` +
        `${header.entries}: it was truncated`,
    );
  }
  if (header.entries > 0 && !timingSafeEqual(prev, fromBase64Url(header.last_mac))) {
    throw tampered("The export's last entry does not match its header");
  }
  return header;
}
