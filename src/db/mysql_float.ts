/**
 * The text MySQL and MariaDB print for FLOAT and DOUBLE values (`my_gcvt` in their
 * `strings/dtoa.c`): DOUBLE with the shortest digits that read back to the same value, FLOAT with
 * at most 6 significant digits; plain notation when the decimal point falls between 10^-14 and
 * 10^15 (or all digits fit before it), otherwise `1.5e20` style without a `+` sign.
 *
 * Needed because the binary protocol (statements with parameters) carries these values as IEEE
 * numbers, not text, and the text protocol's values are parsed by the driver: formatting them here
 * gives `text` mode the bytes `mariadb --batch` prints.
 *
 * @module
 */

/** Significant digits of FLOAT output (FLT_DIG). */
const FLOAT_DIGITS = 6;
/** `MAX_DECPT_FOR_F_FORMAT` (DBL_DIG): beyond 10^15 plain notation gives way to `e`. */
const MAX_DECPT = 15;
/** The `decimals` value meaning "not fixed" (NOT_FIXED_DEC). */
export const NOT_FIXED_DECIMALS = 31;

/**
 * Formats a FLOAT or DOUBLE value the way the server's text protocol does.
 *
 * @param value The number.
 * @param single Whether it is a FLOAT (6 significant digits) rather than a DOUBLE.
 * @param decimals The column's fixed number of decimals (e.g. `FLOAT(7,2)`, `ROUND(x, 2)`), or
 * {@link NOT_FIXED_DECIMALS} or more when not fixed.
 * @returns The text, e.g. `1e20`, `0.30000000000000004`, `16777200`, `1.10`.
 */
export function mysqlFloatText(value: number, single: boolean, decimals: number): string {
  if (!Number.isFinite(value)) return String(value); // not storable in MySQL; kept readable
  if (decimals < NOT_FIXED_DECIMALS) return value.toFixed(decimals);
  if (value === 0) return "0"; // also -0
  const neg = value < 0;
  const exp = single
    ? Math.abs(value).toExponential(FLOAT_DIGITS - 1)
    : Math.abs(value).toExponential();
  const e = exp.indexOf("e");
  let digits = exp.slice(0, e).replace(".", "");
  if (single) digits = digits.replace(/0+$/, "");
  const decpt = Number(exp.slice(e + 1)) + 1; // position of the decimal point after digit 1
  const len = digits.length;
  let out: string;
  if (decpt >= -MAX_DECPT + 1 && (decpt <= MAX_DECPT || len > decpt)) {
    if (decpt <= 0) out = "0." + "0".repeat(-decpt) + digits;
    else if (decpt < len) out = digits.slice(0, decpt) + "." + digits.slice(decpt);
    else out = digits + "0".repeat(decpt - len);
  } else {
    const mant = len > 1 ? digits[0] + "." + digits.slice(1) : digits;
    out = `${mant}e${decpt - 1}`;
  }
  return neg ? "-" + out : out;
}
