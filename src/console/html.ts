/**
 * HTML building for the console: every value is escaped where it is put in, the page layout has
 * no inline script or style (the CSP forbids both), and forms carry the session's CSRF token.
 *
 * @module
 */

import type { Flash, Session } from "./session.ts";

/** HTML that is already safe to insert. */
export class Html {
  /** @param text Escaped markup. */
  constructor(readonly text: string) {}
  /** The markup. */
  toString(): string {
    return this.text;
  }
}

/**
 * Escapes text for an HTML element or a quoted attribute.
 *
 * @param s Any text.
 * @returns The escaped text.
 */
export function esc(s: unknown): string {
  return String(s ?? "").replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A template tag: interpolated values are escaped unless they are {@link Html} (or arrays of it).
 *
 * @param parts Literal parts.
 * @param values Values.
 * @returns The markup.
 */
export function html(parts: TemplateStringsArray, ...values: unknown[]): Html {
  let out = parts[0]!;
  values.forEach((v, i) => {
    out += piece(v) + parts[i + 1]!;
  });
  return new Html(out);
}

function piece(v: unknown): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(piece).join("");
  if (v === undefined || v === null || v === false) return "";
  return esc(v);
}

/** The hidden CSRF field of a form. */
export function csrfField(s: Session): Html {
  return html`<input type="hidden" name="csrf" value="${s.csrf}">`;
}

/** A form posting to `action` with the CSRF field. */
export function postForm(
  s: Session,
  action: string,
  body: Html,
  attrs: { cls?: string; confirm?: string } = {},
): Html {
  return html`
    <form method="post" action="${action}" class="${attrs.cls ?? ""}"
      ${attrs.confirm
        ? html`
          data-confirm="${attrs.confirm}"
        `
        : ""}>${csrfField(s)}${body}</form>
  `;
}

const NAV: readonly [string, string][] = [
  ["/console/profiles", "Profiles"],
  ["/console/query", "Query"],
  ["/console/apikeys", "API keys"],
  ["/console/totp", "TOTP"],
  ["/console/audit", "Audit"],
  ["/console/backups", "Backups"],
];

function flashes(list: readonly Flash[]): Html {
  return html`${
    list.map((f) =>
      html`<div class="flash ${f.kind}" role="status"><p>${f.text}</p>${
        f.lines
          ? html`<pre class="copyable" id="secret-${f.kind}">${f.lines.join("\n")}</pre>
<button type="button" class="copy" data-copy="secret-${f.kind}">Copy</button>`
          : ""
      }</div>`
    )
  }`;
}

/**
 * A whole page.
 *
 * @param title Page title.
 * @param s The session (undefined on the login page).
 * @param body The content.
 * @param active The nav entry to mark.
 * @returns The response.
 */
export function page(title: string, s: Session | undefined, body: Html, active = ""): Response {
  const shown = s?.flash.splice(0) ?? [];
  const nav = s?.vault
    ? html`<nav><ul>${
      NAV.map(([href, label]) =>
        html`<li><a href="${href}"${
          href === active
            ? html`
              aria-current="page"
            `
            : ""
        }>${label}</a></li>`
      )
    }</ul>${
      postForm(s, "/console/lock", html`<button type="submit" class="lock">Lock</button>`)
    }</nav>`
    : "";
  const doc = html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${title} - Hecate</title>
        <link rel="stylesheet" href="/console/assets/app.css">
        <script src="/console/assets/app.js" defer></script>
      </head>
      <body${s
        ? html`
          data-csrf="${s.csrf}"
        `
        : ""}>
        <header><span class="brand">Hecate</span>${nav}</header>
        <main><h1>${title}</h1>${flashes(shown)}${body}</main>
        </body>
        </html>
  `;
  return new Response(doc.text, { headers: { "content-type": "text/html; charset=utf-8" } });
}
