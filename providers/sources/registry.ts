/**
 * The registry of secret sources, by scheme, and the parsing of references (`SCHEME:REST`).
 * env: and file: are registered here; other sources (HashiCorp Vault, a library user's own)
 * register themselves with {@link registerSource}.
 *
 * @module
 */

import { HecateError } from "../../src/errors.ts";
import type { ParsedRef, SecretSource } from "./source.ts";
import { envSource } from "./env.ts";
import { fileSource } from "./file.ts";
import { awsSecretsManagerSource } from "./aws/source.ts";
import { keyringSource } from "./keyring.ts";
import { passSource } from "./pass.ts";
import { sopsSource } from "./sops/source.ts";
import { azureKeyVaultSource } from "./azure/source.ts";
import { gcpSecretManagerSource } from "./gcp/source.ts";
import { vaultDbSource, vaultKvSource } from "./vault/source.ts";

export { malformedRef, sourceError, type SourceStatus, statusOf } from "./errors.ts";

const sources = new Map<string, SecretSource>();

const SCHEME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Registers a secret source for each of its schemes (replacing a source registered before for
 * the same scheme, so a library user can swap one out, e.g. in tests).
 *
 * @param source The source.
 * @throws {HecateError} `usage` for a scheme that is not lower-case letters, digits and `-`.
 *
 * @example A source that reads from a map
 * ```ts
 * import { registerSource } from "./registry.ts";
 * const values = new Map([["db", "s3cret"]]);
 * registerSource({
 *   schemes: ["memo"],
 *   title: "in-memory store",
 *   parse: (scheme, rest) => ({ scheme, raw: `${scheme}:${rest}`, parts: { key: rest } }),
 *   resolve: (ref) => Promise.resolve({ fields: { password: values.get(ref.parts.key!) ?? "" } }),
 * });
 * ```
 */
export function registerSource(source: SecretSource): void {
  if (source.schemes.length === 0) throw new HecateError("usage", "A source needs a scheme");
  for (const s of source.schemes) {
    if (!SCHEME.test(s)) throw new HecateError("usage", `Invalid source scheme "${s}"`);
  }
  for (const s of source.schemes) sources.set(s, source);
}

/**
 * The source registered for a scheme.
 *
 * @param scheme The scheme without the colon.
 * @returns The source, or undefined.
 */
export function sourceFor(scheme: string): SecretSource | undefined {
  return sources.get(scheme);
}

/**
 * The registered schemes and their sources, sorted by scheme.
 *
 * @returns Pairs of scheme and source.
 */
export function registeredSources(): { scheme: string; source: SecretSource }[] {
  return [...sources.entries()].sort(([a], [b]) => a.localeCompare(b))
    .map(([scheme, source]) => ({ scheme, source }));
}

/**
 * Parses and validates a reference through the source of its scheme.
 *
 * @param text The reference, e.g. `env:BILLING_PW` or `vault:secret/db#password`.
 * @returns The parsed reference.
 * @throws {HecateError} `usage` (exit 2) for a text without a scheme, an unknown scheme, or
 * what the source finds wrong (malformed path, missing field).
 */
export function parseRef(text: string): ParsedRef {
  const at = text.indexOf(":");
  const scheme = at > 0 ? text.slice(0, at) : "";
  // Only the scheme is echoed for an unknown one: the rest may be anything a user pasted.
  if (!SCHEME.test(scheme)) {
    throw new HecateError("usage", "A secret reference must look like SCHEME:LOCATION", {
      hint: `known schemes: ${[...sources.keys()].sort().join(", ")}`,
    });
  }
  const source = sources.get(scheme);
  if (!source) {
    throw new HecateError("usage", `Unknown secret reference scheme "${scheme}"`, {
      hint: `known schemes: ${[...sources.keys()].sort().join(", ")}`,
    });
  }
  const rest = text.slice(at + 1);
  let parsed: ParsedRef;
  try {
    parsed = source.parse(scheme, rest);
  } catch (e) {
    if (e instanceof HecateError && e.code === "usage") throw e;
    throw new HecateError("usage", `Malformed ${source.title} reference "${scheme}:..."`);
  }
  if (!parsed || parsed.scheme !== scheme || typeof parsed.raw !== "string") {
    throw new HecateError("usage", `Malformed ${source.title} reference "${scheme}:..."`);
  }
  return parsed;
}

registerSource(envSource);
registerSource(fileSource);
registerSource(awsSecretsManagerSource);
registerSource(keyringSource);
registerSource(passSource);
registerSource(sopsSource);
registerSource(azureKeyVaultSource);
registerSource(gcpSecretManagerSource);
registerSource(vaultKvSource);
registerSource(vaultDbSource);
