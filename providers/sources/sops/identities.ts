/**
 * The age identities SOPS would use, found the way the `sops` program finds them:
 * `SOPS_AGE_KEY` (the keys themselves), `SOPS_AGE_KEY_FILE`, and the default key file
 * (`$XDG_CONFIG_HOME/sops/age/keys.txt`, else `~/.config/sops/age/keys.txt`; on macOS
 * `~/Library/Application Support/sops/age/keys.txt`).
 *
 * @module
 */

import type { SourceContext } from "../source.ts";

/** The `AGE-SECRET-KEY-1...` lines of a key file's text (comments and blank lines skipped). */
function keysIn(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) =>
    /^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(l)
  );
}

/** The default key file path, as sops computes it for this platform. */
function defaultKeyFile(ctx: SourceContext): string | undefined {
  const home = ctx.env("HOME");
  const xdg = ctx.env("XDG_CONFIG_HOME");
  if (xdg) return `${xdg}/sops/age/keys.txt`;
  if (!home) return undefined;
  if (Deno.build.os === "darwin") return `${home}/Library/Application Support/sops/age/keys.txt`;
  return `${home}/.config/sops/age/keys.txt`;
}

/**
 * Collects the age identities available to this process.
 *
 * @param ctx The source context (environment reader).
 * @returns The identities (secret keys: keep in memory only), possibly none.
 */
export async function ageIdentities(ctx: SourceContext): Promise<string[]> {
  const found: string[] = [];
  const inline = ctx.env("SOPS_AGE_KEY");
  if (inline) found.push(...keysIn(inline));
  const files = [ctx.env("SOPS_AGE_KEY_FILE"), defaultKeyFile(ctx)];
  for (const file of files) {
    if (!file) continue;
    try {
      found.push(...keysIn(await Deno.readTextFile(file)));
    } catch {
      // A missing key file is normal (sops skips it too); a wrong identity shows as no match.
    }
  }
  return found;
}
