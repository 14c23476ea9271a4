/**
 * The Hecate version; kept equal to deno.json `version` by a test.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * console.log(VERSION);
 * ```
 */
export const VERSION = "0.1.0";
