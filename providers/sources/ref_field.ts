/**
 * The part every `SCHEME:BODY[#FIELD]` reference shares: the text a message may show (escaped
 * and clipped, as a pasted reference may hold line breaks or anything else) and the split at
 * `#FIELD`.
 *
 * @module
 */

/** The field names a reference may pick with `#FIELD`. */
const FIELD = /^[A-Za-z0-9_.-]{1,128}$/;

/** A reference split at its `#FIELD`. */
export interface RefField {
  /** The reference for messages: JSON-escaped, at most 120 characters, without quotes. */
  readonly shown: string;
  /** The text between the colon and the `#`. */
  readonly body: string;
  /** The field, when the reference names one. */
  readonly field?: string;
  /** Whether a `#` was given with an empty or malformed field (the caller refuses it). */
  readonly badField: boolean;
}

/**
 * Splits a reference at its `#FIELD` and makes its message text.
 *
 * @param scheme The scheme.
 * @param rest The text after the colon.
 * @returns The shown text, the body, the field and whether the field is malformed.
 */
export function splitRefField(scheme: string, rest: string): RefField {
  const raw = `${scheme}:${rest}`;
  const shown = JSON.stringify(raw.length > 120 ? `${raw.slice(0, 120)}...` : raw).slice(1, -1);
  const hash = rest.indexOf("#");
  if (hash < 0) return { shown, body: rest, badField: false };
  const field = rest.slice(hash + 1);
  return { shown, body: rest.slice(0, hash), field, badField: !FIELD.test(field) };
}
