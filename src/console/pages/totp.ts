/**
 * The TOTP page: status, setup with the QR code drawn in the page (an inline SVG made here, no
 * external service), the recovery codes shown once, and disable with a code.
 *
 * @module
 */

import QRCode from "qrcode";
import { HecateError } from "../../errors.ts";
import type { TotpSetup } from "../../hecate.ts";
import type { Route } from "../../http/router.ts";
import { actionRoute, BASE, type ConsoleApp, viewRoute } from "../app.ts";
import { Html, html, page, postForm } from "../html.ts";

/**
 * The TOTP routes.
 *
 * @param app The console.
 * @returns The routes.
 */
export function totpRoutes(app: ConsoleApp): Route[] {
  return [
    viewRoute(app, `${BASE}/totp`, async (_req, { session, vault }) => {
      const on = vault.totp.status().vault;
      const setup = session.pending.totp as TotpSetup | undefined;
      let body: Html;
      if (setup) {
        const svg = await QRCode.toString(setup.uri, { type: "svg", margin: 2 });
        body = html`<p>Scan the code with an authenticator app, or type the secret, then enter the
code it shows to turn TOTP on.</p>
<figure class="qr" aria-label="TOTP QR code">${new Html(svg)}</figure>
<p>Secret: <code id="totp-secret">${setup.secret}</code></p>${
          postForm(
            session,
            `${BASE}/totp/enable`,
            html`<label>Code <input name="code" inputmode="numeric" autocomplete="one-time-code" required></label>
<button type="submit">Turn on</button>`,
            { cls: "card narrow" },
          )
        }${
          postForm(
            session,
            `${BASE}/totp/cancel`,
            html`<button type="submit" class="secondary">Cancel</button>`,
          )
        }`;
      } else if (on) {
        body = html`<p class="status ok">TOTP is on for this vault.</p>${
          postForm(
            session,
            `${BASE}/totp/disable`,
            html`<label>Current code or a recovery code <input name="code" required></label>
<button type="submit" class="danger">Turn off</button>`,
            { cls: "card narrow", confirm: "Turn TOTP off for this vault?" },
          )
        }`;
      } else {
        body = html`<p class="status">TOTP is off for this vault.</p>${
          postForm(session, `${BASE}/totp/setup`, html`<button type="submit">Set up TOTP</button>`)
        }`;
      }
      return page("TOTP", session, body, `${BASE}/totp`);
    }),
    actionRoute(app, `${BASE}/totp/setup`, `${BASE}/totp`, async (_req, { session, vault }) => {
      session.pending.totp = await vault.totp.beginSetup(undefined);
      return undefined;
    }),
    actionRoute(app, `${BASE}/totp/cancel`, `${BASE}/totp`, (_req, { session }) => {
      delete session.pending.totp;
      return Promise.resolve(undefined);
    }),
    actionRoute(
      app,
      `${BASE}/totp/enable`,
      `${BASE}/totp`,
      async (_req, { session, vault, form }) => {
        const setup = session.pending.totp as TotpSetup | undefined;
        if (!setup) throw new HecateError("usage", "Start the setup first");
        const codes = await vault.totp.enable(setup, (form.code ?? "").trim());
        delete session.pending.totp;
        session.flash.push({
          kind: "codes",
          text: "TOTP is on. Recovery codes, shown this once: keep them somewhere safe.",
          lines: codes,
        });
        return undefined;
      },
    ),
    actionRoute(
      app,
      `${BASE}/totp/disable`,
      `${BASE}/totp`,
      async (_req, { session, vault, form }) => {
        await vault.totp.disable(undefined, (form.code ?? "").trim());
        session.flash.push({ kind: "ok", text: "TOTP is off" });
        return undefined;
      },
    ),
  ];
}
