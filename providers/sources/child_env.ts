/**
 * The environment a local-store helper program (`pass`, `sops`, `secret-tool`) runs with: only
 * the variables it needs, read through the source context, so nothing else of Hecate's
 * environment (a master password in `HECATE_PASSWORD`, an API key) reaches the child.
 *
 * @module
 */

import type { SourceContext } from "./source.ts";

const COMMON = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "XDG_RUNTIME_DIR"];

/**
 * The child's environment: the common variables plus `extra`, those that are set.
 *
 * @param ctx The source context (its `env` reader).
 * @param extra Variables this program honours (e.g. `PASSWORD_STORE_DIR`, `GNUPGHOME`).
 * @returns The variables to pass, with `clearEnv` set by the caller.
 */
export function childEnv(ctx: SourceContext, extra: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...COMMON, ...extra]) {
    const v = ctx.env(name);
    if (v !== undefined) env[name] = v;
  }
  return env;
}

/**
 * Whether a text has a control character (C0 or DEL): such a text is never a store path, a key
 * or a file name Hecate passes on.
 *
 * @param text The text.
 * @returns True when one is present.
 */
export function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
