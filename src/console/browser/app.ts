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

/** Main-thread work per slice before the page gets a turn (input, layout, paint). */
const SLICE_MS = 8;
/** Rows put in the table; the rest are counted (Download CSV gives them all). */
const SHOWN_ROWS = 10_000;

/** Resolves in a new task, after the browser has had a chance to handle input and render. */
function nextTask(): Promise<void> {
  // A message, not setTimeout(0): nested timers are clamped to 4 ms each.
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}

/**
 * Runs the query and renders its rows as they arrive. Parsing and rendering run in slices of at
 * most SLICE_MS, each followed by a yield to the browser, so clicks (Stop) and scrolling are
 * handled while a long result streams; the table keeps the first SHOWN_ROWS rows.
 */
function queryConsole(): void {
  const run = document.getElementById("q-run") as HTMLButtonElement | null;
  const stop = document.getElementById("q-stop") as HTMLButtonElement | null;
  if (!run) return;
  const value = (id: string) => (document.getElementById(id) as HTMLInputElement).value;
  const table = document.getElementById("q-table") as HTMLTableElement;
  const status = document.getElementById("q-status")!;
  let reader: ReadableStreamDefaultReader<string> | undefined;
  let stopped = false;
  let busy = false;
  stop?.addEventListener("click", () => {
    if (!busy) return;
    stopped = true;
    reader?.cancel().catch(() => {});
  });
  run.addEventListener("click", async () => {
    if (busy) return;
    busy = true;
    stopped = false;
    run.disabled = true;
    if (stop) stop.disabled = false;
    const t0 = performance.now();
    table.tHead!.replaceChildren();
    for (const b of [...table.tBodies]) b.remove();
    status.textContent = "Running...";
    status.className = "";
    let rows = 0;
    let more = false;
    // Rows of the current slice go to a detached tbody, attached when the slice ends: one layout
    // per slice. Each batch is its own tbody, which the style sheet lets the browser skip laying
    // out while off screen.
    let body = document.createElement("tbody");
    const attach = () => {
      if (!body.firstChild) return;
      body.className = "batch";
      table.append(body);
      body = document.createElement("tbody");
    };
    let sliceStart = performance.now();
    const yieldIfDue = async () => {
      if (performance.now() - sliceStart < SLICE_MS) return;
      attach();
      status.textContent = `${rows} rows...`;
      await nextTask();
      sliceStart = performance.now();
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
      reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      while (!stopped) {
        const { value: chunk, done } = await reader.read();
        if (done) break;
        buf += chunk;
        const lines = buf.split("\n");
        buf = lines.pop() ?? "";
        for (let i = 0; i < lines.length && !stopped; i++) {
          const line = lines[i]!;
          if (!line) continue;
          const item = JSON.parse(line);
          if (item.row) {
            if (rows < SHOWN_ROWS) {
              const tr = document.createElement("tr");
              for (const v of item.row) tr.append(cell("td", v));
              body.append(tr);
            }
            rows++;
          } else if (item.columns) {
            const tr = document.createElement("tr");
            for (const c of item.columns) tr.append(cell("th", c));
            table.tHead!.append(tr);
          } else if (item.error) throw new Error(item.error);
          else if ("more" in item) more = item.more;
          // Checking the clock every 64 lines keeps its cost out of the row loop.
          if ((i & 63) === 63) await yieldIfDue();
        }
        await yieldIfDue();
      }
      attach();
      const ms = Math.round(performance.now() - t0);
      const shown = rows > SHOWN_ROWS
        ? `; the table shows the first ${SHOWN_ROWS} (Download CSV for all)`
        : "";
      status.textContent = stopped
        ? `Stopped after ${rows} rows (${ms} ms)${shown}`
        : `${rows} rows in ${ms} ms${more ? " (row limit reached)" : ""}${shown}`;
      status.className = stopped ? "stopped" : "ok";
    } catch (e) {
      attach();
      status.textContent = `Error: ${(e as Error).message}`;
      status.className = "bad";
    } finally {
      reader = undefined;
      busy = false;
      run.disabled = false;
      if (stop) stop.disabled = true;
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
