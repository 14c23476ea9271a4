/**
 * `file:PATH`: a secret in a file (a mounted Kubernetes or Docker secret, a file a secret agent
 * renders). The whole file, less one trailing newline, is the one field `value`.
 *
 * @module
 */

import { malformedRef, sourceError } from "./errors.ts";
import type { ParsedRef, Resolved, SecretSource, SourceContext } from "./source.ts";

const TITLE = "file";

/** The `file:` source. */
export const fileSource: SecretSource = {
  schemes: ["file"],
  title: TITLE,
  parse(scheme: string, rest: string): ParsedRef {
    if (rest === "" || rest.includes("\0") || rest.length > 4096) {
      throw malformedRef(
        TITLE,
        `${scheme}:${rest.slice(0, 80)}`,
        "not a file path",
        "use file:PATH",
      );
    }
    return { scheme, raw: `${scheme}:${rest}`, parts: { path: rest } };
  },
  async resolve(ref: ParsedRef, ctx: SourceContext): Promise<Resolved> {
    try {
      const text = await Deno.readTextFile(ref.parts.path!, { signal: ctx.signal });
      return { fields: { value: text.replace(/\r?\n$/, "") } };
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      if (e instanceof Deno.errors.NotFound) {
        throw sourceError(TITLE, ref.raw, "not_found", "check the path", "file not found");
      }
      if (e instanceof Deno.errors.PermissionDenied) {
        throw sourceError(TITLE, ref.raw, "forbidden", "check the file's permissions");
      }
      throw sourceError(TITLE, ref.raw, "failed", "check the path", "file cannot be read");
    }
  },
  async health(ref: ParsedRef) {
    const t0 = performance.now();
    try {
      const st = await Deno.stat(ref.parts.path!);
      return {
        ok: st.isFile,
        detail: st.isFile ? "readable" : "not a file",
        latencyMs: performance.now() - t0,
      };
    } catch (e) {
      const detail = e instanceof Deno.errors.NotFound ? "not found" : "cannot be read";
      return { ok: false, detail, latencyMs: performance.now() - t0 };
    }
  },
};
