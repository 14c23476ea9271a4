/**
 * `azure-kv:` references: `azure-kv:https://VAULT.vault.azure.net/secrets/NAME[/VERSION][#FIELD]`
 * (also the sovereign clouds' vault domains). Parsing loads no Azure client code, so `server add`
 * and the cron path stay cheap.
 *
 * @module
 */

import { malformedRef } from "../errors.ts";
import { splitRefField } from "../ref_field.ts";
import type { ParsedRef } from "../source.ts";

/** The source's title in messages. */
export const AZURE_KV_TITLE = "Azure Key Vault";
const FORM = "azure-kv:https://VAULT.vault.azure.net/secrets/NAME[/VERSION][#FIELD]";
// Key Vault's own limits: vault names 3-24 characters, secret names 1-127, versions 32 hex.
const URL_FORM =
  /^https:\/\/([a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9])\.(vault\.azure\.net|vault\.azure\.cn|vault\.usgovcloudapi\.net)\/secrets\/([a-zA-Z0-9-]{1,127})(?:\/([0-9a-fA-F]{32}))?\/?$/;

/**
 * Parses an `azure-kv:` reference.
 *
 * @param scheme `azure-kv`.
 * @param rest The text after the colon.
 * @returns Parts `vault` (origin), `resource` (the token audience), `name`, optional `version`.
 * @throws {HecateError} `usage` (exit 2) naming what is wrong.
 */
export function parseAzureKvRef(scheme: string, rest: string): ParsedRef {
  const raw = `${scheme}:${rest}`;
  const { shown, body, field, badField } = splitRefField(scheme, rest);
  if (badField) {
    throw malformedRef(AZURE_KV_TITLE, shown, "the #FIELD part is empty or malformed", FORM);
  }
  const m = URL_FORM.exec(body);
  if (!m) {
    throw malformedRef(AZURE_KV_TITLE, shown, "not a Key Vault secret URL", FORM);
  }
  const parts: Record<string, string> = {
    vault: `https://${m[1]!.toLowerCase()}.${m[2]}`,
    resource: `https://${m[2]}`,
    name: m[3]!,
  };
  if (m[4]) parts.version = m[4].toLowerCase();
  return { scheme, raw, ...(field !== undefined ? { field } : {}), parts };
}
