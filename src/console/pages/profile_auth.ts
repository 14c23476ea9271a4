/**
 * The profile form's authentication part: the method, its params (the same flags as
 * `server add`, see src/cli/options/auth_options.ts), its secrets (write-only inputs) and secret
 * references. Parsed with the CLI's helpers so the same input gives the same profile and errors.
 *
 * @module
 */

import type { Engine } from "../../db/driver.ts";
import { HecateError } from "../../errors.ts";
import type { SecretValue, SourceSettings } from "../../profile.ts";
import { fieldsOf, providerByType } from "../../../providers/mod.ts";
import { AUTH_FLAGS, authParamsFrom } from "../../cli/options/auth_options.ts";
import { type Html, html } from "../html.ts";

/** The methods offered (empty: the engine's default, as `server add` without --auth). */
const METHODS = ["", "sql", "none", "windows", "token", "certificate", "aws-iam"] as const;

/** Every secret field a method may ask for; `password` keeps its own input name. */
const SECRET_FIELDS = ["password", "token", "clientSecret", "keyPassphrase"] as const;

/** The form input that carries a secret field. */
export function secretInput(field: string): string {
  return field === "password" ? "password" : `secret_${field}`;
}

/**
 * The method select.
 *
 * @param values The form's values (`auth`).
 * @returns The input.
 */
export function authMethodField(values: Record<string, string>): Html {
  const v = values.auth ?? "";
  // A stored method not offered here is still shown, so saving the page unchanged keeps it.
  const offered: readonly string[] = (METHODS as readonly string[]).includes(v)
    ? METHODS
    : [...METHODS, v];
  return html`<label>Auth method <select name="auth">${
    offered.map((m) =>
      html`<option value="${m}" ${v === m ? "selected" : ""}>${m || "engine default"}</option>`
    )
  }</select></label>`;
}

/**
 * One input per method param, the secret inputs other than the password (never prefilled) and
 * the references box.
 *
 * @param values The form's values (params by their `param_` name, `secret_refs`).
 * @returns The inputs.
 */
export function authFields(values: Record<string, string>): Html {
  const v = (k: string) => values[k] ?? "";
  return html`${
    AUTH_FLAGS.map((f) =>
      html`<label>${f.description} <input name="param_${f.param}" value="${
        v(`param_${f.param}`)
      }"></label>`
    )
  }
${
    SECRET_FIELDS.filter((f) => f !== "password").map((f) =>
      html`<label>Secret ${f} (write-only) <input type="password" name="${
        secretInput(f)
      }" autocomplete="new-password"></label>`
    )
  }
<label>Secret references (one per line, in priority order; like --secret-ref)
<textarea name="secret_refs" rows="2">${v("secret_refs")}</textarea></label>`;
}

/** What the form's authentication part gives a new profile. */
export interface AuthInput {
  /** The method. */
  auth: string;
  /** Its params. */
  params: Record<string, string>;
  /** Its secrets: values typed in, the first secret field as references when given. */
  secrets: Record<string, SecretValue>;
}

/**
 * Reads the authentication part of an add form, with the CLI's rules and messages: an unknown
 * method is `invalid_profile`, references and a typed value for the same field are refused, the
 * references stand for the method's first secret field. References are checked (parsed) when the
 * profile is added, by the same code as `server add --secret-ref`.
 *
 * @param form The posted form.
 * @param engine The profile's engine.
 * @param name The profile's name (for messages).
 * @returns Method, params and secrets.
 * @throws {HecateError} `invalid_profile` or `usage`.
 */
export function authInput(form: Record<string, string>, engine: Engine, name: string): AuthInput {
  const auth = form.auth || (engine === "sqlite" ? "none" : "sql");
  const provider = providerByType(auth);
  if (!provider) {
    throw new HecateError("invalid_profile", `Profile "${name}": unknown auth method "${auth}"`);
  }
  const opts: Record<string, string> = {};
  for (const f of AUTH_FLAGS) {
    const value = form[`param_${f.param}`]?.trim();
    if (value) opts[f.option] = value;
  }
  const params = authParamsFrom(opts);
  const fields = fieldsOf(provider, params);
  const known = [...fields.secretFields, ...(fields.optionalSecretFields ?? [])];
  const refs = (form.secret_refs ?? "").split("\n").map((r) => r.trim()).filter(Boolean);
  const refField = refs.length ? known[0] : undefined;
  if (refs.length && !refField) {
    throw new HecateError(
      "usage",
      `Auth method "${auth}" has no secret: leave the secret references empty`,
    );
  }
  // A secret the method never uses would be stored and forgotten: refused, as the CLI never asks.
  for (const field of SECRET_FIELDS) {
    if (form[secretInput(field)] && !known.includes(field)) {
      throw new HecateError("usage", `Auth method "${auth}" does not use a ${field}`);
    }
  }
  const secrets: Record<string, SecretValue> = {};
  if (refField) secrets[refField] = refs.length === 1 ? { ref: refs[0]! } : { refs: [...refs] };
  for (const field of known) {
    const value = form[secretInput(field)];
    if (!value) continue;
    if (field === refField) {
      throw new HecateError("usage", "Give either a secret value or secret references, not both");
    }
    secrets[field] = { value };
  }
  return { auth, params, secrets };
}

/** What show() gives for a stored value (a reference is shown as its text). */
const MASKED = "********";

/** The references of a profile's first secret, one per line ("" when it holds a value). */
function refsShown(auth: string, params: Record<string, string>, secrets: Record<string, string>) {
  const provider = providerByType(auth);
  if (!provider) return "";
  const fields = fieldsOf(provider, params);
  const first = [...fields.secretFields, ...(fields.optionalSecretFields ?? [])][0];
  const shown = first ? secrets[first] : undefined;
  return shown && shown !== MASKED ? shown.split(" ").join("\n") : "";
}

/** The parts of a masked profile (`vault.profiles.show`) the auth form shows. */
export interface ShownAuth {
  auth?: unknown;
  params?: unknown;
  secrets?: unknown;
  sources?: unknown;
}

/**
 * The auth form's values for a profile: method, params, the first secret's references and the
 * whole-connection sources. Secret values are never among them.
 *
 * @param shown The masked profile.
 * @returns Values by input name.
 */
export function authValues(shown: ShownAuth): Record<string, string> {
  const params = (shown.params ?? {}) as Record<string, string>;
  const out: Record<string, string> = {
    auth: String(shown.auth ?? ""),
    secret_refs: refsShown(
      String(shown.auth ?? ""),
      params,
      (shown.secrets ?? {}) as Record<string, string>,
    ),
    from: (((shown.sources ?? {}) as { from?: string[] }).from ?? []).join("\n"),
  };
  for (const f of AUTH_FLAGS) if (params[f.param]) out[`param_${f.param}`] = params[f.param]!;
  return out;
}

/**
 * The whole-connection sources box (like repeated `--from`).
 *
 * @param values The form's values.
 * @returns The input.
 */
export function fromField(values: Record<string, string>): Html {
  return html`<label>Whole-connection secrets (one reference per line, like --from)
<textarea name="from" rows="2">${values.from ?? ""}</textarea></label>`;
}

/**
 * The `sources.from` list of an add form, or undefined.
 *
 * @param form The posted form.
 * @returns The list.
 */
export function fromInput(form: Record<string, string>): string[] | undefined {
  const list = (form.from ?? "").split("\n").map((r) => r.trim()).filter(Boolean);
  return list.length ? list : undefined;
}

/** What the auth part of an edit form changes. */
export interface AuthEdit {
  auth?: string;
  params?: Record<string, string | null>;
  secrets?: Record<string, SecretValue | null>;
  sources?: SourceSettings | null;
}

/**
 * Reads the auth part of an edit form against the profile as the page showed it, like
 * `server edit --auth ... --secret-ref ... --from ...`: a changed method or param is set (an
 * emptied param removed), typed secrets and changed references go through {@link authInput} (the
 * same checks and messages as add), emptied references remove that secret unless a value is
 * typed, a changed `from` list replaces the sources' list. Empty secret inputs keep the secrets.
 *
 * @param form The posted form (without `auth` the method part is left alone).
 * @param engine The profile's engine.
 * @param name The profile's name.
 * @param shown The masked profile.
 * @returns The changes.
 * @throws {HecateError} `invalid_profile` or `usage`, as {@link authInput}.
 */
export function authEdit(
  form: Record<string, string>,
  engine: Engine,
  name: string,
  shown: ShownAuth,
): AuthEdit {
  const out: AuthEdit = {};
  if (form.from !== undefined) {
    const sources: SourceSettings = { ...((shown.sources ?? {}) as SourceSettings) };
    const was = (sources.from ?? []).join("\n");
    const list = fromInput(form);
    if ((list ?? []).join("\n") !== was) {
      if (list) sources.from = list;
      else delete sources.from;
      out.sources = Object.keys(sources).length ? sources : null;
    }
  }
  if (form.auth === undefined) return out;
  const was = authValues(shown);
  const auth = form.auth || (engine === "sqlite" ? "none" : "sql");
  // An unknown method is refused by the vault's check (or by authInput below), as in the CLI.
  if (auth !== was.auth) out.auth = auth;
  const params: Record<string, string | null> = {};
  const merged: Record<string, string> = { ...(shown.params ?? {}) as Record<string, string> };
  for (const f of AUTH_FLAGS) {
    const key = `param_${f.param}`;
    const now = form[key]?.trim() ?? "";
    if (form[key] === undefined || now === (was[key] ?? "")) continue;
    if (now) {
      params[f.param] = authParamsFrom({ [f.option]: now })[f.param]!;
      merged[f.param] = params[f.param]!;
    } else {
      params[f.param] = null;
      delete merged[f.param];
    }
  }
  if (Object.keys(params).length) out.params = params;
  const norm = (t: string) => t.split("\n").map((r) => r.trim()).filter(Boolean).join("\n");
  const refsChanged = norm(form.secret_refs ?? "") !== norm(was.secret_refs ?? "");
  const typed = SECRET_FIELDS.some((f) => form[secretInput(f)]);
  if (!typed && !refsChanged) return out;
  // The add form's reader, on the method and params the profile will have.
  const asAdd: Record<string, string> = { ...form, auth, secret_refs: "" };
  for (const f of AUTH_FLAGS) asAdd[`param_${f.param}`] = merged[f.param] ?? "";
  if (refsChanged) asAdd.secret_refs = form.secret_refs ?? "";
  const secrets: Record<string, SecretValue | null> = authInput(asAdd, engine, name).secrets;
  if (refsChanged && !norm(form.secret_refs ?? "")) {
    // References emptied: the field they stood for is removed unless a value replaces them.
    const provider = providerByType(String(shown.auth));
    const fields = provider && fieldsOf(provider, (shown.params ?? {}) as Record<string, string>);
    const first = fields && [...fields.secretFields, ...(fields.optionalSecretFields ?? [])][0];
    if (first && !(first in secrets)) secrets[first] = null;
  }
  out.secrets = secrets;
  return out;
}
