/**
 * The API keys page: create (the key is shown once, with a copy button, then only its id and
 * name exist anywhere), list with scope, expiry and last use, revoke.
 *
 * @module
 */

import { parseDuration } from "../../access/duration.ts";
import { HecateError } from "../../errors.ts";
import type { Route } from "../../http/router.ts";
import { actionRoute, BASE, type ConsoleApp, listField, viewRoute } from "../app.ts";
import { html, page, postForm } from "../html.ts";

/**
 * The API key routes.
 *
 * @param app The console.
 * @returns The routes.
 */
export function apiKeyRoutes(app: ConsoleApp): Route[] {
  return [
    viewRoute(app, `${BASE}/apikeys`, async (_req, { session, vault }) => {
      const keys = await vault.apiKeys.list();
      const profiles = vault.profiles.list();
      return page(
        "API keys",
        session,
        html`${
          keys.length === 0 ? html`<p class="empty">No API keys.</p>` : html`
            <div class="scroll">
              <table class="apikeys">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Id</th>
                    <th>Scope</th>
                    <th>Expires</th>
                    <th>Last use</th>
                    <th></th>
                  </tr>
                </thead>
                <tbody>${keys.map((k) =>
                  html`
                    <tr>
                      <td>${k.name}</td>
                      <td><code>${k.id}</code></td>
                      <td>${k.profiles.join(", ")}</td>
                      <td>${k.expires ?? "never"}</td>
                      <td>${k.lastUsed ?? "never"}</td>
                      <td>${postForm(
                        session,
                        `${BASE}/apikeys/${encodeURIComponent(k.name)}/revoke`,
                        html`<button type="submit" class="danger">Revoke</button>`,
                        { confirm: `Revoke API key ${k.name}?` },
                      )}</td>
                    </tr>
                  `
                )}</tbody>
              </table>
            </div>
          `
        }<h2>Create a key</h2>${
          postForm(
            session,
            `${BASE}/apikeys`,
            html`
              <div class="grid"><label>Name <input name="name" required></label>
              <label>Expires in (e.g. 90d; empty for never) <input name="expires"></label></div>
              <fieldset><legend>Profiles in scope</legend>${profiles.map((p) =>
                html`<label class="check"><input type="checkbox" name="profile" value="${p.name}"> ${p.name}</label>`
              )}</fieldset><button
                type="submit">Create</button>
            `,
            { cls: "card" },
          )
        }`,
        `${BASE}/apikeys`,
      );
    }),
    actionRoute(
      app,
      `${BASE}/apikeys`,
      `${BASE}/apikeys`,
      async (req, { session, vault, form }) => {
        void req;
        const scope = listField(form, "profile");
        if (scope.length === 0) throw new HecateError("usage", "Choose at least one profile");
        const expires = form.expires?.trim()
          ? new Date(Date.now() + parseDuration(form.expires.trim(), "expiry"))
          : null;
        const key = await vault.apiKeys.create({
          name: (form.name ?? "").trim(),
          profiles: scope,
          expires,
        });
        session.flash.push({
          kind: "secret",
          text: `API key "${form.name}" created. It is shown this once: copy it now.`,
          lines: [key],
        });
        return undefined;
      },
    ),
    actionRoute(
      app,
      `${BASE}/apikeys/:name/revoke`,
      `${BASE}/apikeys`,
      async (_req, { session, vault, params }) => {
        await vault.apiKeys.revoke(params.name!);
        session.flash.push({ kind: "ok", text: `Revoked API key "${params.name}"` });
        return undefined;
      },
    ),
  ];
}
