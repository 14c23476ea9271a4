/**
 * The console's only script, served as /console/assets/app.js (bundled by scripts/console_assets.ts).
 * No inline script exists: the CSP forbids it. It adds confirmations, copy buttons, the streamed
 * query table and the audit page's live tail; every page works for reading without it.
 *
 * @module
 */

/// <reference lib="dom" />

const csrf = document.body.dataset.csrf ?? "";

/** Forms marked data-confirm ask before they submit. */
function confirmations(): void {
  for (const form of document.querySelectorAll<HTMLFormElement>("form[data-confirm]")) {
    form.addEventListener("submit", (ev) => {
      if (!confirm(form.dataset.confirm ?? "Are you sure?")) ev.preventDefault();
    });
  }
}

/** Copy buttons copy the text of the element they name. */
function copyButtons(): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>("button[data-copy]")) {
    b.addEventListener("click", async () => {
      const el = document.getElementById(b.dataset.copy ?? "");
      if (!el) return;
      try {
        await navigator.clipboard.writeText(el.textContent ?? "");
        b.textContent = "Copied";
      } catch {
        // No clipboard (e.g. not a secure context): select the text for a manual copy.
        const range = document.createRange();
        range.selectNodeContents(el);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(range);
        b.textContent = "Selected: press Ctrl-C";
      }
    });
  }
}

function cell(tag: "td" | "th", text: string | null): HTMLElement {
  const c = document.createElement(tag);
  if (text === null) {
    c.textContent = "NULL";
    c.className = "null";
  } else c.textContent = text;
  return c;
}

/** Runs the query and renders its rows as they arrive, one batch per animation frame. */
function queryConsole(): void {
  const run = document.getElementById("q-run");
  if (!run) return;
  const value = (id: string) => (document.getElementById(id) as HTMLInputElement).value;
  const table = document.getElementById("q-table") as HTMLTableElement;
  const status = document.getElementById("q-status")!;
  let busy = false;
  run.addEventListener("click", async () => {
    if (busy) return;
    busy = true;
    const t0 = performance.now();
    table.tHead!.replaceChildren();
    for (const b of [...table.tBodies]) b.remove();
    status.textContent = "Running...";
    status.className = "";
    let rows = 0;
    let pending: (string | null)[][] = [];
    let scheduled = false;
    let done = false;
    const flush = () => {
      scheduled = false;
      if (pending.length === 0) return;
      // Each batch is its own tbody: the style sheet lets the browser skip laying out batches
      // that are off screen, so a long result does not make every frame slower.
      const body = document.createElement("tbody");
      body.className = "batch";
      for (const r of pending) {
        const tr = document.createElement("tr");
        for (const v of r) tr.append(cell("td", v));
        body.append(tr);
      }
      pending = [];
      table.append(body);
      if (!done) status.textContent = `${rows} rows...`;
    };
    try {
      const params = value("q-params");
      const res = await fetch("/console/api/query", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify({
          profile: value("q-profile"),
          sql: value("q-sql"),
          params: params === "" ? [] : params.split(/\r?\n/),
          limit: value("q-limit"),
        }),
      });
      if (!res.ok || !res.body) {
        const body = await res.json().catch(() => ({}));
        throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      let more = false;
      for (;;) {
        const { value: chunk, done } = await reader.read();
        if (done) break;
        buf += chunk;
        const lines = buf.split("\n");
        buf = lines.pop() ?? "";
        for (const line of lines) {
          if (!line) continue;
          const item = JSON.parse(line);
          if (item.columns) {
            const tr = document.createElement("tr");
            for (const c of item.columns) tr.append(cell("th", c));
            table.tHead!.append(tr);
          } else if (item.row) {
            pending.push(item.row);
            rows++;
          } else if (item.error) throw new Error(item.error);
          else if ("more" in item) more = item.more;
        }
        if (pending.length && !scheduled) {
          scheduled = true;
          requestAnimationFrame(flush);
        }
      }
      flush();
      done = true;
      const ms = Math.round(performance.now() - t0);
      status.textContent = `${rows} rows in ${ms} ms${more ? " (row limit reached)" : ""}`;
      status.className = "ok";
    } catch (e) {
      flush();
      done = true;
      status.textContent = `Error: ${(e as Error).message}`;
      status.className = "bad";
    } finally {
      busy = false;
    }
  });
}

interface AuditRow {
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

/** Adds new audit records to the table every two seconds while "Live tail" is on. */
function auditTail(): void {
  const table = document.getElementById("audit-table") as HTMLTableElement | null;
  const tail = document.getElementById("tail") as HTMLInputElement | null;
  if (!table || !tail) return;
  let after = Number(table.dataset.after ?? "0");
  // Where the server's last read of the trail ended: the next poll reads only what follows.
  let from = table.dataset.from ?? "";
  const filters = new URLSearchParams(location.search);
  const poll = async () => {
    if (tail.checked) {
      filters.set("after", String(after));
      filters.set("from", from);
      const res = await fetch(`/console/api/audit?${filters}`);
      if (res.ok) {
        const { rows, next } = await res.json() as { rows: AuditRow[]; next: string };
        from = next;
        for (const r of rows) {
          const tr = document.createElement("tr");
          tr.className = r.outcome;
          for (
            const v of [
              r.seq,
              r.time,
              r.event,
              r.actor,
              r.profile,
              r.outcome,
              r.reason,
              r.session,
              r.client,
            ]
          ) tr.append(cell("td", String(v)));
          table.tBodies[0]!.append(tr);
          after = Math.max(after, r.seq);
        }
        table.dataset.after = String(after);
      }
    }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}

confirmations();
copyButtons();
queryConsole();
auditTail();
