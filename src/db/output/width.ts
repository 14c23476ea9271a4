/**
 * Terminal display helpers for the table format: how many columns a string takes, and making
 * untrusted cell text safe to print.
 *
 * @module
 */

/** Code point ranges (inclusive pairs) shown two columns wide (East Asian Wide/Fullwidth, emoji). */
// deno-fmt-ignore
const WIDE: readonly number[] = [
  0x1100, 0x115f, 0x231a, 0x231b, 0x2329, 0x232a, 0x23e9, 0x23ec, 0x23f0, 0x23f0, 0x23f3, 0x23f3,
  0x25fd, 0x25fe, 0x2614, 0x2615, 0x2648, 0x2653, 0x267f, 0x267f, 0x2693, 0x2693, 0x26a1, 0x26a1,
  0x26aa, 0x26ab, 0x26bd, 0x26be, 0x26c4, 0x26c5, 0x26ce, 0x26ce, 0x26d4, 0x26d4, 0x26ea, 0x26ea,
  0x26f2, 0x26f3, 0x26f5, 0x26f5, 0x26fa, 0x26fa, 0x26fd, 0x26fd, 0x2705, 0x2705, 0x270a, 0x270b,
  0x2728, 0x2728, 0x274c, 0x274c, 0x274e, 0x274e, 0x2753, 0x2755, 0x2757, 0x2757, 0x2795, 0x2797,
  0x27b0, 0x27b0, 0x27bf, 0x27bf, 0x2b1b, 0x2b1c, 0x2b50, 0x2b50, 0x2b55, 0x2b55, 0x2e80, 0x303e,
  0x3041, 0x33ff, 0x3400, 0x4dbf, 0x4e00, 0x9fff, 0xa000, 0xa4cf, 0xa960, 0xa97f, 0xac00, 0xd7a3,
  0xf900, 0xfaff, 0xfe10, 0xfe19, 0xfe30, 0xfe6f, 0xff00, 0xff60, 0xffe0, 0xffe6, 0x16fe0, 0x16fe4,
  0x17000, 0x18aff, 0x1b000, 0x1b2ff, 0x1f004, 0x1f004, 0x1f0cf, 0x1f0cf, 0x1f18e, 0x1f18e,
  0x1f191, 0x1f19a, 0x1f200, 0x1f251, 0x1f300, 0x1f64f, 0x1f680, 0x1f6ff, 0x1f7e0, 0x1f7eb,
  0x1f90c, 0x1f9ff, 0x1fa70, 0x1faff, 0x20000, 0x3fffd,
];

/** Zero-width code points: combining marks, joiners, variation selectors, BOM. */
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200f\u2060-\u2064\ufeff\ufe00-\ufe0f]$/u;

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function isWide(cp: number): boolean {
  if (cp < 0x1100) return false;
  let lo = 0;
  let hi = WIDE.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < WIDE[mid * 2]!) hi = mid - 1;
    else if (cp > WIDE[mid * 2 + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

/**
 * Columns a string takes on a terminal: one per code point, two for East Asian wide characters
 * and most emoji, none for combining marks and zero-width characters. Expects text already made
 * safe by {@link safeCell} (no control characters).
 *
 * @param text The text.
 * @returns Its display width.
 */
export function displayWidth(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length;
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x7f) width += 1;
    else if (ZERO_WIDTH.test(ch)) continue;
    else width += isWide(cp) ? 2 : 1;
  }
  return width;
}

/** Control characters (C0, DEL, C1) and bidirectional overrides/isolates. */
const UNSAFE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;
const UNSAFE_TEST = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

function escapeChar(c: string): string {
  switch (c) {
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
  }
  const cp = c.charCodeAt(0);
  return cp < 0x100 ? "\\x" + cp.toString(16).padStart(2, "0") : "\\u" + cp.toString(16);
}

/**
 * Makes cell text safe and single-line for a terminal: line breaks and tabs become `\n`, `\r`,
 * `\t`; other control characters (which could drive the terminal) and bidirectional overrides
 * become `\xNN` / `\uNNNN`.
 *
 * @param text Untrusted text from the database.
 * @returns Printable text.
 */
export function safeCell(text: string): string {
  return UNSAFE_TEST.test(text) ? text.replace(UNSAFE, escapeChar) : text;
}
