/**
 * Engine-neutral value types for typed rows. Most values are plain JS (null, boolean, number,
 * bigint, string, Uint8Array); two small wrappers keep exact text where JS numbers would round.
 *
 * @module
 */

/**
 * An exact decimal number kept as its canonical text (e.g. NUMERIC, DECIMAL).
 *
 * @example
 * ```ts
 * import { Decimal } from "./value.ts";
 * console.log(new Decimal("12.50").toString()); // "12.50"
 * ```
 */
export class Decimal {
  /**
   * Wraps a decimal text.
   *
   * @param text The exact decimal text as the server wrote it.
   */
  constructor(readonly text: string) {}
  /** The exact text. */
  toString(): string {
    return this.text;
  }
}

/**
 * A JSON document kept as the server's text (json, jsonb), embedded as-is in JSON output.
 *
 * @example
 * ```ts
 * import { JsonText } from "./value.ts";
 * console.log(JSON.parse(new JsonText('{"a":1}').text).a); // 1
 * ```
 */
export class JsonText {
  /**
   * Wraps a JSON text.
   *
   * @param text Valid JSON text.
   */
  constructor(readonly text: string) {}
  /** The JSON text. */
  toString(): string {
    return this.text;
  }
}
