/**
 * The web console's server: 127.0.0.1 only, the shared HTTP pipeline (src/http) with Host and
 * Origin checks, and the console's routes. Returns the one-time login URL to print.
 *
 * @module
 */

import { policyAuditOptions } from "../policy/overrides.ts";
import type { Actor } from "../audit/entry.ts";
import { bodyLimit, hostCheck, originCheck } from "../http/checks.ts";
import { RequestAuditLog } from "../http/audit.ts";
import { handler, type Route, type RunningServer, startServer } from "../http/router.ts";
import { resolveHome } from "../vault/home.ts";
import { BASE, type ConsoleApp, MAX_BODY, redirect } from "./app.ts";
import { html, page } from "./html.ts";
import { LastUses } from "./last_use.ts";
import { APP_CSS } from "./assets/app_css.ts";
import { APP_JS } from "./assets/app_js.ts";
import { apiKeyRoutes } from "./pages/apikeys.ts";
import { auditRoutes } from "./pages/audit.ts";
import { backupRoutes } from "./pages/backups.ts";
import { loginRoutes } from "./pages/login.ts";
import { profileRoutes } from "./pages/profiles.ts";
import { queryRoutes } from "./pages/query.ts";
import { totpRoutes } from "./pages/totp.ts";
import { DEFAULT_LIMITS, type SessionLimits, SessionStore } from "./session.ts";

/** The only address the console listens on. */
export const CONSOLE_HOST = "127.0.0.1";

const NOBODY: Actor = { kind: "none" };

/** Refusals recorded in the trail (a 404 or 405 is not an attack on anything). */
const AUDITED_REFUSALS: ReadonlySet<string> = new Set([
  "bad_host",
  "bad_origin",
  "csrf",
  "no_session",
]);

/** Options for {@link startConsole}. */
export interface ConsoleOptions {
  /** Home directory. @default {$HECATE_HOME or ~/.hecate} */
  home?: string | undefined;
  /** Port; 0 for a free one. @default {0} */
  port?: number;
  /** Session limits. @default {DEFAULT_LIMITS} */
  limits?: Partial<SessionLimits>;
  /** Lockout policy for unlocks. @default {$HECATE_LOCKOUT, else 5/15m} */
  lockout?: string | undefined;
  /**
   * Told a fresh one-time login URL when a session ended by its idle or absolute limit and the
   * previous URL is spent (`hecate ui` prints it where the person started the console).
   */
  onLoginUrl?: (url: string, why: string) => void;
}

/** A running console. */
export interface RunningConsole {
  /** `http://127.0.0.1:PORT`. */
  origin: string;
  /** The one-time login URL (holds the token). */
  loginUrl: string;
  /** Stops the server and ends every session (closing their vaults). */
  close(): Promise<void>;
  /** The server. */
  server: RunningServer;
}

function asset(body: string, type: string): Route {
  return {
    method: "GET",
    path: "",
    checks: [],
    handle: () => new Response(body, { headers: { "content-type": type } }),
  };
}

/**
 * Starts the console.
 *
 * @param options Home, port, limits.
 * @returns The running console and its login URL.
 */
export async function startConsole(options: ConsoleOptions = {}): Promise<RunningConsole> {
  const home = resolveHome({ home: options.home });
  const audit = new RequestAuditLog(home, await policyAuditOptions(home));
  let origin = "";
  const sessions: SessionStore = new SessionStore(
    { ...DEFAULT_LIMITS, ...options.limits },
    Date.now,
    async (state, s, why) => {
      await audit.append({
        event: "console.session",
        actor: NOBODY,
        outcome: "ok",
        detail: { console_session: s.auditId, state, ...(why ? { why } : {}) },
      });
      // A browser whose session timed out cannot log in again with the spent URL: the terminal
      // that started the console gets a new one (a URL is the proof of being that person).
      if ((why === "idle" || why === "limit") && sessions.loginToken === undefined) {
        options.onLoginUrl?.(`${origin}${BASE}/login/${sessions.renewLoginToken()}`, why);
      }
    },
  );
  const app: ConsoleApp = {
    home,
    sessions,
    audit,
    lockout: options.lockout,
    lastUses: new LastUses(home),
  };
  let port = 0;
  const hosts = () => [`${CONSOLE_HOST}:${port}`, `localhost:${port}`];
  const origins = () => hosts().map((h) => `http://${h}`);
  const routes: Route[] = [
    { ...asset(APP_JS, "text/javascript; charset=utf-8"), path: `${BASE}/assets/app.js` },
    { ...asset(APP_CSS, "text/css; charset=utf-8"), path: `${BASE}/assets/app.css` },
    { method: "GET", path: BASE, checks: [], handle: () => redirect(`${BASE}/profiles`) },
    { method: "GET", path: `${BASE}/`, checks: [], handle: () => redirect(`${BASE}/profiles`) },
    ...loginRoutes(app),
    ...profileRoutes(app),
    ...queryRoutes(app),
    ...apiKeyRoutes(app),
    ...totpRoutes(app),
    ...auditRoutes(app),
    ...backupRoutes(app),
  ];
  const server = startServer(
    CONSOLE_HOST,
    options.port ?? 0,
    handler(routes, {
      checks: [hostCheck(hosts), originCheck(origins), bodyLimit(MAX_BODY)],
      onRefusal: async (r) => {
        if (!AUDITED_REFUSALS.has(r.code)) return;
        await audit.append({
          event: "console.refused",
          actor: NOBODY,
          outcome: "fail",
          reason: r.code,
        })
          .catch(() => {});
      },
      renderRefusal: (r, req) => {
        // A page the person navigated to gets a page; scripts and other clients get JSON.
        if (!(req.headers.get("accept") ?? "").includes("text/html")) return undefined;
        const body = page(
          r.code === "no_session" ? "Session ended" : "Refused",
          undefined,
          html`<p class="status bad" data-code="${r.code}">${r.message}.</p>${
            r.code === "no_session"
              ? html`<p>Open the newest one-time login URL that <code>hecate ui</code> printed in its
terminal (a new one is printed when a session times out), or restart it.</p>`
              : ""
          }`,
        );
        return new Response(body.body, { status: r.status, headers: body.headers });
      },
    }),
  );
  port = server.port;
  origin = `http://${CONSOLE_HOST}:${port}`;
  await audit.append({ event: "console.start", actor: NOBODY, outcome: "ok", detail: { origin } });
  return {
    origin,
    loginUrl: `${origin}${BASE}/login/${app.sessions.loginToken}`,
    server,
    close: async () => {
      await app.sessions.endAll();
      await server.shutdown();
      await audit.append({ event: "console.stop", actor: NOBODY, outcome: "ok" }).catch(() => {});
      await audit.flush?.();
    },
  };
}
