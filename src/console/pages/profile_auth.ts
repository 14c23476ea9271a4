/**
 * The profile form's authentication part: the method, its params (the same flags as
 * `server add`, see src/cli/options/auth_options.ts), its secrets (write-only inputs) and secret
 * references. Parsed with the CLI's helpers so the same input gives the same profile and errors.
 *
 * @module
 */

import type { Engine } from "../../db/driver.ts";
import { HecateError } from "../../errors.ts";
import type { SecretValue } from "../../profile.ts";
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
 * The method select, one input per method param, the secret inputs (never prefilled) and the
 * references box.
 *
 * @param values The form's values (params by their `param_` name, `auth`, `secret_refs`).
 * @returns The inputs.
 */
export function authFields(values: Record<string, string>): Html {
  const v = (k: string) => values[k] ?? "";
  return html`<label>Auth method <select name="auth">${
    METHODS.map((m) =>
      html`<option value="${m}" ${v("auth") === m ? "selected" : ""}>${
        m || "engine default"
      }</option>`
    )
  }</select></label>
${
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
