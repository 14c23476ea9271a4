/**
 * Logging in and locking: the one-time URL token starts a session (and leaves the URL at once),
 * the master password (and TOTP code) unlock it through `openVault`, so the CLI's guard, lockout
 * and audit apply unchanged; lock closes the vault and starts a new locked session.
 *
 * @module
 */

import { HecateError } from "../../errors.ts";
import { openVault } from "../../hecate.ts";
import { HttpRefusal } from "../../http/respond.ts";
import type { Route } from "../../http/router.ts";
import {
  BASE,
  type ConsoleApp,
  cookieHeader,
  csrfCheck,
  fieldsOf,
  redirect,
  sessionCheck,
  sessionOf,
} from "../app.ts";
import { html, page, postForm } from "../html.ts";

/**
 * The login and lock routes.
 *
 * @param app The console.
 * @returns The routes.
 */
export function loginRoutes(app: ConsoleApp): Route[] {
  return [
    {
      method: "GET",
      path: `${BASE}/login/:token`,
      checks: [],
      handle: async (_req, { params, ctx }) => {
        const s = app.sessions.spendLoginToken(params.token!);
        if (!s) throw new HttpRefusal(401, "no_session", "This login URL was used or is wrong");
        ctx.attributes.console_session = s.auditId;
        await app.sessions.began(s);
        // The token leaves the address bar (and the history entry) at once.
        return redirect(`${BASE}/login`, cookieHeader(s.id));
      },
    },
    {
      method: "GET",
      path: `${BASE}/login`,
      checks: [sessionCheck(app, false)],
      handle: (_req, { ctx }) => {
        const s = sessionOf(ctx);
        if (s.vault) return redirect(`${BASE}/profiles`);
        return page(
          "Unlock",
          s,
          postForm(
            s,
            `${BASE}/login`,
            html`<label>Master password <input type="password" name="password" autocomplete="current-password" required autofocus></label>
<label>TOTP or recovery code (when on) <input type="text" name="totp" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">Unlock</button>`,
            { cls: "card narrow" },
          ),
        );
      },
    },
    {
      method: "POST",
      path: `${BASE}/login`,
      checks: [sessionCheck(app, false), csrfCheck()],
      handle: async (req, { ctx }) => {
        const s = sessionOf(ctx);
        if (s.vault) return redirect(`${BASE}/profiles`);
        const form = await fieldsOf(req);
        const totp = form.totp?.trim() || undefined;
        try {
          const vault = await openVault({
            home: app.home,
            password: form.password ?? "",
            totp,
            audit: app.audit,
            lockout: app.lockout,
          });
          const next = app.sessions.rotate(s);
          next.vault = vault;
          return redirect(`${BASE}/profiles`, cookieHeader(next.id));
        } catch (e) {
          if (!(e instanceof HecateError)) throw e;
          s.flash.push({ kind: "error", text: e.message });
          const status = e.code === "locked_out" ? 429 : 303;
          if (status === 429) {
            const body = page("Unlock", s, html`<p><a href="${BASE}/login">Back</a></p>`);
            return new Response(body.body, { status, headers: body.headers });
          }
          return redirect(`${BASE}/login`);
        }
      },
    },
    {
      method: "POST",
      path: `${BASE}/lock`,
      checks: [sessionCheck(app, false), csrfCheck()],
      handle: async (_req, { ctx }) => {
        const s = sessionOf(ctx);
        // The vault (and every key it holds) is closed and dropped; the browser keeps only a
        // locked session that can unlock again with the password.
        await app.sessions.end(s);
        const fresh = app.sessions.startLocked();
        fresh.flash.push({ kind: "ok", text: "Locked: the console holds no key now" });
        return redirect(`${BASE}/login`, cookieHeader(fresh.id));
      },
    },
  ];
}
