/**
 * `env:NAME`: a secret in an environment variable of the process that connects (a CI job's
 * injected secret, a container's environment). The value is the one field `value`.
 *
 * @module
 */

import { malformedRef, sourceError } from "./errors.ts";
import type { ParsedRef, Resolved, SecretSource, SourceContext } from "./source.ts";

// What a process environment can hold: no `=`, no NUL (POSIX names are a subset).
const NAME = /^[^=\0]{1,255}$/;
const TITLE = "environment";

/** The `env:` source. */
export const envSource: SecretSource = {
  schemes: ["env"],
  title: TITLE,
  parse(scheme: string, rest: string): ParsedRef {
    if (!NAME.test(rest)) {
      throw malformedRef(
        TITLE,
        `${scheme}:${rest.slice(0, 80)}`,
        "not a variable name",
        "use env:NAME (no '=' in the name)",
      );
    }
    return { scheme, raw: `${scheme}:${rest}`, parts: { name: rest } };
  },
  resolve(ref: ParsedRef, ctx: SourceContext): Promise<Resolved> {
    const value = ctx.env(ref.parts.name!);
    if (value === undefined) {
      return Promise.reject(
        sourceError(
          TITLE,
          ref.raw,
          "not_found",
          `set ${ref.parts.name} in the environment`,
          "variable is not set",
        ),
      );
    }
    return Promise.resolve({ fields: { value } });
  },
  health(ref: ParsedRef, ctx: SourceContext) {
    const set = ctx.env(ref.parts.name!) !== undefined;
    return Promise.resolve({ ok: set, detail: set ? "set" : "not set", latencyMs: 0 });
  },
};
