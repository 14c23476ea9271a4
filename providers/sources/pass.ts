/**
 * `pass:PATH[#FIELD]`: a secret in the standard Unix password manager `pass` (GnuPG-encrypted
 * files under `PASSWORD_STORE_DIR`, default `~/.password-store`). Runs `pass show -- PATH` with
 * only the path in argv; the first line of the entry is the field `password`, each later
 * `key: value` line a field of its own. `PASSWORD_STORE_DIR` and `GNUPGHOME` are honoured.
 *
 * @module
 */

import { childEnv, hasControl } from "./child_env.ts";
import { malformedRef, sourceError } from "./errors.ts";
import type { ParsedRef, Resolved, SecretSource, SourceContext } from "./source.ts";
import { runCaptured } from "../../src/run/spawn.ts";

const TITLE = "pass";
// A store path: no leading '-' (it would be read as an option), no '..' segment, no control
// characters; what pass itself accepts otherwise.
const PATH = /^(?!-)(?!.*(?:^|\/)\.\.(?:\/|$)).{1,1024}$/;
const FIELD = /^[^:#]{1,128}$/;
const ENV = ["PASSWORD_STORE_DIR", "GNUPGHOME", "PASSWORD_STORE_GPG_OPTS", "GPG_TTY", "USER"];

/**
 * Splits an entry as pass users write it: the password first, then `key: value` lines.
 *
 * @param text The decrypted entry.
 * @returns The fields (`password` from the first line; the first line wins over a later
 * `password:` line).
 */
export function passFields(text: string): Record<string, string> {
  const lines = text.split(/\r?\n/);
  const fields: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const m = /^([^:]{1,128}):\s?(.*)$/.exec(line);
    if (m && fields[m[1]!.trim()] === undefined) fields[m[1]!.trim()] = m[2]!;
  }
  fields.password = lines[0] ?? "";
  return fields;
}

/** The `pass:` source. */
export const passSource: SecretSource = {
  schemes: ["pass"],
  title: TITLE,
  parse(scheme: string, rest: string): ParsedRef {
    const hash = rest.indexOf("#");
    const path = hash < 0 ? rest : rest.slice(0, hash);
    const field = hash < 0 ? undefined : rest.slice(hash + 1);
    const shown = `${scheme}:${rest.slice(0, 80)}`;
    if (!PATH.test(path) || hasControl(path)) {
      throw malformedRef(
        TITLE,
        shown,
        "not a store path",
        "use pass:PATH[#FIELD], e.g. pass:db/billing",
      );
    }
    if (field !== undefined && (!FIELD.test(field) || hasControl(field))) {
      throw malformedRef(TITLE, shown, "empty or invalid #FIELD", "use pass:PATH#FIELD");
    }
    return {
      scheme,
      raw: `${scheme}:${rest}`,
      parts: { path },
      ...(field !== undefined ? { field } : {}),
    };
  },
  async resolve(ref: ParsedRef, ctx: SourceContext): Promise<Resolved> {
    let out: Deno.CommandOutput;
    try {
      out = await runCaptured("pass", ["show", "--", ref.parts.path!], {
        env: childEnv(ctx, ENV),
        clearEnv: true,
        signal: ctx.signal,
      });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      if (e instanceof Deno.errors.NotFound) {
        throw sourceError(
          TITLE,
          ref.raw,
          "unreachable",
          "install pass (apt-get install pass)",
          "pass is not installed",
        );
      }
      throw sourceError(
        TITLE,
        ref.raw,
        "unreachable",
        "check that pass runs",
        "pass could not start",
      );
    }
    if (!out.success) {
      // Only a class of failure is shown: pass and gpg print paths and key ids, never values,
      // but the message stays ours all the same.
      const err = new TextDecoder().decode(out.stderr);
      if (/is not in the password store/.test(err)) {
        throw sourceError(
          TITLE,
          ref.raw,
          "not_found",
          "list the store with `pass ls`",
          `exit ${out.code}`,
        );
      }
      if (/gpg|decrypt/i.test(err)) {
        // The key to open the entry is not usable here: a credential problem, so `forbidden`
        // (the framework shows a plain `failed` only with its own generic hint).
        throw sourceError(
          TITLE,
          ref.raw,
          "forbidden",
          "check GNUPGHOME and that the key is present and unlocked (gpg-agent)",
          `gpg failed, exit ${out.code}`,
        );
      }
      throw sourceError(
        TITLE,
        ref.raw,
        "failed",
        "run `pass show` on this path yourself",
        `exit ${out.code}`,
      );
    }
    return { fields: passFields(new TextDecoder().decode(out.stdout)) };
  },
  async health(ref: ParsedRef, ctx: SourceContext) {
    const t0 = performance.now();
    const dir = ctx.env("PASSWORD_STORE_DIR") ?? `${ctx.env("HOME") ?? ""}/.password-store`;
    try {
      await Deno.stat(`${dir}/${ref.parts.path}.gpg`);
      return { ok: true, detail: "entry present", latencyMs: performance.now() - t0 };
    } catch {
      return { ok: false, detail: "entry not found", latencyMs: performance.now() - t0 };
    }
  },
};
