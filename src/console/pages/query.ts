/**
 * The query console: a profile, SQL with positional parameters and a row limit; results stream
 * as NDJSON (one header line, one line per row, one closing line) that the page's script renders
 * in batches, or download as CSV. Every statement goes through `vault.connect`, so it is audited
 * like the CLI's (`profile.read`, `query` with the SQL's hash, never its text or parameters).
 *
 * @module
 */

import { HecateError } from "../../errors.ts";
import {
  csvLines,
  errorText,
  itemStream,
  ndjsonLine,
  type QueryRequest,
  resultItems,
} from "../../http/rows_stream.ts";
import type { Route } from "../../http/router.ts";
import {
  BASE,
  type ConsoleApp,
  csrfCheck,
  fieldsOf,
  sessionCheck,
  sessionOf,
  viewRoute,
} from "../app.ts";
import { html, page, postForm } from "../html.ts";

/** Default and largest row limit. */
export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 1_000_000;

function parseRequest(f: Record<string, string>): QueryRequest {
  const profile = f.profile ?? "";
  const sql = f.sql ?? "";
  if (!profile) throw new HecateError("usage", "Choose a profile");
  if (!sql.trim()) throw new HecateError("usage", "Give the SQL to run");
  let params: string[] = [];
  const raw = f.params ?? "";
  if (raw.startsWith("[")) {
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      throw new HecateError("usage", "Parameters must be a JSON list or one per line");
    }
    if (!Array.isArray(v)) throw new HecateError("usage", "Parameters must be a list");
    params = v.map((x) => String(x));
  } else if (raw !== "") params = raw.split(/\r?\n/);
  const limit = f.limit ? Number(f.limit) : DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new HecateError("usage", `Invalid row limit "${f.limit}": give 1-${MAX_LIMIT}`);
  }
  return { profile, sql, params, limit };
}

/**
 * The query routes.
 *
 * @param app The console.
 * @returns The routes.
 */
export function queryRoutes(app: ConsoleApp): Route[] {
  return [
    viewRoute(app, `${BASE}/query`, (_req, { session, vault }) =>
      page(
        "Query",
        session,
        html`
          ${postForm(
            session,
            `${BASE}/query/csv`,
            html`
              <div class="grid">
                <label>Profile <select name="profile" id="q-profile">${vault.profiles.list().map((
                  p,
                ) => html`<option value="${p.name}">${p.name}</option>`)}</select></label>
                <label>Row limit <input name="limit" id="q-limit" inputmode="numeric" value="${DEFAULT_LIMIT}"></label>
              </div>
              <label>SQL <textarea name="sql" id="q-sql" rows="5" spellcheck="false" required></textarea></label>
              <label>Parameters (one per line, bound as $1, $2 or ?) <textarea name="params" id="q-params" rows="3" spellcheck="false"></textarea></label>
              <div class="buttons"><button type="button" id="q-run">Run</button>
              <button type="button" id="q-stop" class="secondary" disabled>Stop</button>
              <button type="submit" class="secondary">Download CSV</button></div>
            `,
            { cls: "card" },
          )}<p id="q-status" role="status"></p>
          <div class="scroll results">
            <table id="q-table">
              <thead></thead>
              <tbody></tbody>
            </table>
          </div>
        `,
        `${BASE}/query`,
      )),
    {
      method: "POST",
      path: `${BASE}/api/query`,
      checks: [sessionCheck(app, true), csrfCheck()],
      handle: async (req, { ctx }) => {
        const vault = sessionOf(ctx).vault!;
        const q = parseRequest(await fieldsOf(req));
        return new Response(
          itemStream(
            resultItems(vault, q),
            ndjsonLine,
            (e) => JSON.stringify({ error: errorText(e) }) + "\n",
          ),
          { headers: { "content-type": "application/x-ndjson" } },
        );
      },
    },
    {
      method: "POST",
      path: `${BASE}/query/csv`,
      checks: [sessionCheck(app, true), csrfCheck()],
      handle: async (req, { ctx }) => {
        const vault = sessionOf(ctx).vault!;
        const q = parseRequest(await fieldsOf(req));
        return new Response(
          itemStream(
            resultItems(vault, q),
            csvLines(),
            (e) => `\n# error: ${errorText(e).replace(/[\r\n]/g, " ")}\n`,
          ),
          {
            headers: {
              "content-type": "text/csv; charset=utf-8",
              "content-disposition": 'attachment; filename="query.csv"',
            },
          },
        );
      },
    },
  ];
}
