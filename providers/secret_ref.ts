/**
 * Resolving secret references at connect time. A reference names where a secret lives
 * (`env:NAME`, `file:PATH`); the vault stores the reference, never the value. Resolvers are
 * registered by scheme so later sources (HashiCorp Vault, cloud secret managers) plug in.
 *
 * @module
 */

import { HecateError } from "../src/errors.ts";
import type { SecretValue } from "../src/profile.ts";

/** Resolves one scheme's references. */
export type SecretResolver = (rest: string) => Promise<string>;

const resolvers = new Map<string, SecretResolver>();

/**
 * Registers (or replaces) the resolver for a scheme.
 *
 * @param scheme The scheme without the colon, e.g. `env`.
 * @param resolver The resolver.
 */
export function registerSecretResolver(scheme: string, resolver: SecretResolver): void {
  resolvers.set(scheme, resolver);
}

function unresolved(ref: string, why: string): HecateError {
  // The reference names a location, not a secret, so it may appear in the message.
  return new HecateError("secret_unresolved", `Cannot resolve secret reference "${ref}": ${why}`);
}

registerSecretResolver("env", (name) => {
  const v = Deno.env.get(name);
  if (v === undefined) return Promise.reject(unresolved(`env:${name}`, "variable is not set"));
  return Promise.resolve(v);
});

registerSecretResolver("file", async (path) => {
  try {
    return (await Deno.readTextFile(path)).replace(/\r?\n$/, "");
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "file not found" : "file cannot be read";
    throw unresolved(`file:${path}`, why);
  }
});

/**
 * Returns a secret's value, resolving a reference if it is one.
 *
 * @param secret The stored secret.
 * @returns The value in clear (keep it in memory only).
 * @throws {HecateError} `secret_unresolved` for an unknown scheme or a failed lookup.
 */
export async function resolveSecret(secret: SecretValue): Promise<string> {
  if ("value" in secret) return secret.value;
  const at = secret.ref.indexOf(":");
  const scheme = secret.ref.slice(0, at);
  const resolver = resolvers.get(scheme);
  if (at < 1 || !resolver) throw unresolved(secret.ref, `unknown scheme "${scheme}"`);
  return await resolver(secret.ref.slice(at + 1));
}
