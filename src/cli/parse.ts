/**
 * Parsers for option values, throwing commander's InvalidArgumentError so that bad values are
 * usage errors (exit 2) with commander's own message format.
 *
 * @module
 */

import { InvalidArgumentError } from "@commander-js/extra-typings";

/**
 * Parses a TCP port.
 *
 * @param v The option text.
 * @returns The port.
 */
export function parsePort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) {
    throw new InvalidArgumentError("must be a port number between 1 and 65535");
  }
  return n;
}

/**
 * Parses a positive whole number.
 *
 * @param v The option text.
 * @returns The number.
 */
export function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError("must be a positive whole number");
  }
  return n;
}

/**
 * Collects a repeatable option into an array.
 *
 * @param v This occurrence.
 * @param prev Earlier occurrences.
 * @returns All occurrences in order.
 */
export function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}
