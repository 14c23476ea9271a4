/**
 * The audit page: a filterable table (time, event, actor, profile, outcome), a live tail (the
 * page's script asks for records after the last one it has), and verification naming the first
 * bad entry when the chain is broken.
 *
 * @module
 */

import type { AuditEntry } from "../../audit/entry.ts";
import { AUDIT_EVENTS } from "../../audit/events.ts";
import { matches, trailLines } from "../../audit/read.ts";
import { snapshotTrail, verifyTrail } from "../../audit/verify.ts";
import { HecateError } from "../../errors.ts";
import type { Route } from "../../http/router.ts";
import { actionRoute, BASE, type ConsoleApp, sessionCheck, viewRoute } from "../app.ts";
import { currentPosition, parsePosition, positionText, readSince } from "../trail_tail.ts";
import { html, page } from "../html.ts";
import { postForm } from "../html.ts";

/** Most records one page or one tail answer holds. */
export const PAGE_ROWS = 500;

interface Filter {
  event: string;
  outcome: string;
  profile: string;
  actor: string;
}

function filterOf(url: URL): Filter {
  const g = (k: string) => (url.searchParams.get(k) ?? "").slice(0, 100);
  return { event: g("event"), outcome: g("outcome"), profile: g("profile"), actor: g("actor") };
}

/** A record as the page shows it (no MAC, no pid). */
export interface AuditRow {
  seq: number;
  time: string;
  event: string;
  actor: string;
  profile: string;
  outcome: string;
  reason: string;
  session: string;
  client: string;
}

function rowOf(e: AuditEntry): AuditRow {
  const a = e.actor;
  const d = e.detail ?? {};
  return {
    seq: e.seq,
    time: e.time,
    event: String(e.event),
    actor: a ? a.kind + (a.name ? `:${a.name}` : "") : "-",
    profile: e.profile ?? "",
    outcome: String(e.outcome),
    reason: e.reason ?? "",
    session: typeof d.console_session === "string" ? d.console_session : "",
    client: typeof d.client === "string" ? d.client : "",
  };
}

function keep(e: AuditEntry, f: Filter, after: number): boolean {
  const outcome = f.outcome === "ok" || f.outcome === "fail" ? f.outcome : undefined;
  if (e.seq <= after) return false;
  if (f.event && String(e.event) !== f.event) return false;
  return matches(e, { profile: f.profile || undefined, actor: f.actor || undefined, outcome });
}

async function rows(home: string, f: Filter, after: number): Promise<AuditRow[]> {
  const out: AuditRow[] = [];
  const outcome = f.outcome === "ok" || f.outcome === "fail" ? f.outcome : undefined;
  for await (const l of trailLines(home)) {
    const e = l.entry;
    if (!e || e.seq <= after) continue;
    if (f.event && String(e.event) !== f.event) continue;
    if (!matches(e, { profile: f.profile || undefined, actor: f.actor || undefined, outcome })) {
      continue;
    }
    out.push(rowOf(e));
    if (out.length > PAGE_ROWS) out.shift();
  }
  return out;
}

/**
 * The audit routes.
 *
 * @param app The console.
 * @returns The routes.
 */
export function auditRoutes(app: ConsoleApp): Route[] {
  return [
    viewRoute(app, `${BASE}/audit`, async (_req, { session, url }) => {
      const f = filterOf(url);
      const from = positionText(await currentPosition(app.home)); // before the read: see trail_tail.ts
      const list = await rows(app.home, f, 0);
      const verdict = session.pending.verdict as { ok: boolean; text: string } | undefined;
      delete session.pending.verdict;
      return page(
        "Audit",
        session,
        html`
          ${verdict
            ? html`<p id="verdict" class="status ${verdict.ok ? "ok" : "bad"}">${verdict.text}</p>`
            : ""}${postForm(
              session,
              `${BASE}/audit/verify`,
              html`<button type="submit" id="verify">Verify the trail</button>`,
            )}
          <form method="get" action="${BASE}/audit" class="card filters">
          <label>Event <select name="event"><option value="">any</option>${Object.keys(AUDIT_EVENTS)
            .map((e) =>
              html`<option${
                f.event === e
                  ? html`
                    selected
                  `
                  : ""
              }>${e}</option>`
            )}</select></label>
          <label>Actor <input name="actor" value="${f.actor}"></label>
          <label>Profile <input name="profile" value="${f.profile}"></label>
          <label>Outcome <select name="outcome"><option value="">any</option>${["ok", "fail"].map((
            o,
          ) =>
            html`<option${
              f.outcome === o
                ? html`
                  selected
                `
                : ""
            }>${o}</option>`
          )}</select></label>
          <button type="submit">Filter</button></form>
          <p><label class="check"><input type="checkbox" id="tail" checked> Live tail</label></p>
          <div class="scroll">
            <table id="audit-table" data-after="${list.at(-1)?.seq ?? 0}" data-from="${from}">
              <thead>
                <tr>
                  <th>Seq</th>
                  <th>Time</th>
                  <th>Event</th>
                  <th>Actor</th>
                  <th>Profile</th>
                  <th>Outcome</th>
                  <th>Reason</th>
                  <th>Session</th>
                  <th>Client</th>
                </tr>
              </thead>
              <tbody>${list.map((r) =>
                html`
                  <tr class="${r.outcome}">
                    <td>${r.seq}</td>
                    <td>${r.time}</td>
                    <td>${r.event}</td>
                    <td>${r.actor}</td>
                    <td>${r.profile}</td>
                    <td>${r.outcome}</td>
                    <td>${r.reason}</td>
                    <td>${r.session}</td>
                    <td>${r.client}</td>
                  </tr>
                `
              )}</tbody>
            </table>
          </div>
        `,
        `${BASE}/audit`,
      );
    }),
    {
      method: "GET",
      path: `${BASE}/api/audit`,
      checks: [sessionCheck(app, true)],
      handle: async (_req, { url }) => {
        const after = Number(url.searchParams.get("after") ?? "0");
        if (!Number.isSafeInteger(after) || after < 0) {
          throw new HecateError("usage", "after must be a sequence number");
        }
        // The page sends back where its last poll ended, so a poll reads only new lines.
        const { entries, position } = await readSince(
          app.home,
          parsePosition(url.searchParams.get("from")),
        );
        const f = filterOf(url);
        const out = entries.filter((e) => keep(e, f, after)).map(rowOf).slice(-PAGE_ROWS);
        return Response.json({ rows: out, next: positionText(position) });
      },
    },
    actionRoute(app, `${BASE}/audit/verify`, `${BASE}/audit`, async (_req, { session, vault }) => {
      const a0 = vault.auditChainKey();
      if (!a0) throw new HecateError("internal", "This vault has no audit chain key");
      const report = await verifyTrail(app.home, a0, await snapshotTrail(app.home));
      const p = report.problem;
      session.pending.verdict = report.ok
        ? {
          ok: true,
          text:
            `Trail intact: ${report.entries} entries (seq ${report.firstSeq}..${report.lastSeq})`,
        }
        : {
          ok: false,
          text: `Trail broken: ${p!.kind} at ${p!.file}${p!.line ? ` line ${p!.line}` : ""}: ${
            p!.message
          }`,
        };
      await app.audit.append({
        event: "audit.verify",
        actor: vault.actor,
        outcome: report.ok ? "ok" : "fail",
        ...(p ? { reason: p.kind } : {}),
      });
      return undefined;
    }),
  ];
}
