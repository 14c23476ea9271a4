/**
 * `gcp-sm:` references: `gcp-sm:projects/PROJECT/secrets/SECRET[/versions/VERSION][#FIELD]`,
 * VERSION a number or an alias (default `latest`). Parsing loads no Google client code.
 *
 * @module
 */

import { malformedRef } from "../errors.ts";
import { splitRefField } from "../ref_field.ts";
import type { ParsedRef } from "../source.ts";

/** The source's title in messages. */
export const GCP_SM_TITLE = "Google Secret Manager";
const FORM = "gcp-sm:projects/PROJECT/secrets/SECRET[/versions/VERSION][#FIELD]";
// Project ids (or numbers), secret ids (1-255 of A-Z a-z 0-9 _ -), versions (a number or an alias).
const PATH =
  /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})\/secrets\/([A-Za-z0-9_-]{1,255})(?:\/versions\/([1-9][0-9]{0,18}|latest|[a-z][a-z0-9_-]{0,62}))?$/;

/**
 * Parses a `gcp-sm:` reference.
 *
 * @param scheme `gcp-sm`.
 * @param rest The text after the colon.
 * @returns Parts `project`, `secret`, `version` (default `latest`).
 * @throws {HecateError} `usage` (exit 2) naming what is wrong.
 */
export function parseGcpSmRef(scheme: string, rest: string): ParsedRef {
  const raw = `${scheme}:${rest}`;
  const { shown, body, field, badField } = splitRefField(scheme, rest);
  if (badField) {
    throw malformedRef(GCP_SM_TITLE, shown, "the #FIELD part is empty or malformed", FORM);
  }
  const m = PATH.exec(body);
  if (!m) throw malformedRef(GCP_SM_TITLE, shown, "not a secret version name", FORM);
  return {
    scheme,
    raw,
    ...(field !== undefined ? { field } : {}),
    parts: { project: m[1]!, secret: m[2]!, version: m[3] ?? "latest" },
  };
}
