/**
 * `sops:FILE#key.path`: a value in a SOPS-encrypted file (a repository's `secrets.enc.json`).
 * JSON files with age recipients are decrypted in-process, their MAC verified before any value
 * is used; other files and key kinds go through the `sops` program when it is on PATH. A key
 * path naming an object yields its scalar members as fields (for `--from`).
 *
 * @module
 */

import { hasControl } from "../child_env.ts";
import { malformedRef, sourceError } from "../errors.ts";
import type { ParsedRef, Resolved, SecretSource, SourceContext } from "../source.ts";
import { ageIdentities } from "./identities.ts";
import { sopsProgram } from "./program.ts";

const TITLE = "SOPS";
const SEGMENT = /^[^.#]{1,256}$/;

/** The value at a key path; undefined when absent. */
function at(tree: unknown, path: readonly string[]): unknown {
  let node = tree;
  for (const p of path) {
    if (Array.isArray(node) && /^\d+$/.test(p)) node = node[Number(p)];
    else if (node && typeof node === "object" && !Array.isArray(node) && Object.hasOwn(node, p)) {
      node = (node as Record<string, unknown>)[p];
    } else return undefined;
  }
  return node;
}

/** A scalar as text (SOPS's own spelling for booleans is not used: this is a value to connect with). */
function scalar(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

/** The fields a node gives: a scalar is `value`; an object gives its scalar members. */
function fieldsOf(node: unknown): Record<string, string> | undefined {
  const s = scalar(node);
  if (s !== undefined) return { value: s };
  if (!node || typeof node !== "object" || Array.isArray(node)) return undefined;
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(node)) {
    const t = scalar(v);
    if (t !== undefined) fields[k] = t;
  }
  return Object.keys(fields).length ? fields : undefined;
}

/** The `sops:` source. */
export const sopsSource: SecretSource = {
  schemes: ["sops"],
  title: TITLE,
  parse(scheme: string, rest: string): ParsedRef {
    const hash = rest.lastIndexOf("#");
    const shown = `${scheme}:${rest.slice(0, 80)}`;
    const file = hash < 0 ? "" : rest.slice(0, hash);
    const path = hash < 0 ? "" : rest.slice(hash + 1);
    if (hash < 0 || path === "") {
      throw malformedRef(TITLE, shown, "missing the #key.path part", "use sops:FILE#key.path");
    }
    if (file === "" || file.length > 4096 || hasControl(file) || file.startsWith("-")) {
      throw malformedRef(TITLE, shown, "not a file path", "use sops:FILE#key.path");
    }
    if (hasControl(path) || !path.split(".").every((p) => SEGMENT.test(p))) {
      throw malformedRef(
        TITLE,
        shown,
        "malformed key path",
        "use dot-separated keys, e.g. #db.password",
      );
    }
    return { scheme, raw: `${scheme}:${rest}`, parts: { file, path } };
  },
  async resolve(ref: ParsedRef, ctx: SourceContext): Promise<Resolved> {
    let text: string;
    try {
      text = await Deno.readTextFile(ref.parts.file!, { signal: ctx.signal });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      const missing = e instanceof Deno.errors.NotFound;
      throw sourceError(
        TITLE,
        ref.raw,
        missing ? "not_found" : "forbidden",
        "check the file path",
        missing ? "file not found" : "file cannot be read",
      );
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = undefined;
    }
    const path = ref.parts.path!.split(".");
    // Loaded on first use: the age and AES-GCM packages stay off every other command's path.
    const { decryptSopsJson, SopsError } = await import("./format.ts");
    let tree: unknown;
    try {
      if (doc === undefined) throw new SopsError("unsupported", "the file is not JSON");
      tree = await decryptSopsJson(doc, await ageIdentities(ctx));
    } catch (e) {
      if (!(e instanceof SopsError)) throw e;
      if (e.kind === "tampered") {
        throw sourceError(
          TITLE,
          ref.raw,
          "malformed",
          "the file was changed outside sops; restore it from version control",
          `refused: ${e.message}`,
        );
      }
      if (e.kind === "malformed") {
        throw sourceError(TITLE, ref.raw, "malformed", "check the file is a SOPS file", e.message);
      }
      if (e.kind === "no_identity") {
        throw sourceError(
          TITLE,
          ref.raw,
          "forbidden",
          "set SOPS_AGE_KEY_FILE to a key file holding one of the file's age identities",
          e.message,
        );
      }
      const value = await sopsProgram(ref, ctx, TITLE, e.message);
      return { fields: { value: value.replace(/\r?\n$/, "") } };
    }
    const fields = fieldsOf(at(tree, path));
    if (!fields) {
      throw sourceError(
        TITLE,
        ref.raw,
        "field_missing",
        "check the #key.path against `sops decrypt FILE`",
        "no value at that key path",
      );
    }
    return { fields };
  },
  async health(ref: ParsedRef) {
    const t0 = performance.now();
    try {
      await Deno.stat(ref.parts.file!);
      return { ok: true, detail: "file present", latencyMs: performance.now() - t0 };
    } catch {
      return { ok: false, detail: "file not found", latencyMs: performance.now() - t0 };
    }
  },
};
