/**
 * The profiles page: list (engine, address, tags, last use), add, edit, remove, and Test with each
 * step's latency. Secrets are write-only: the page shows only whether each is set.
 *
 * @module
 */

import type { Engine } from "../../db/driver.ts";
import { HecateError } from "../../errors.ts";
import type { ProfileChanges, ProfileInput, Vault } from "../../hecate.ts";
import type { TlsProfile } from "../../profile.ts";
import type { Route } from "../../http/router.ts";
import { actionRoute, BASE, type ConsoleApp, viewRoute } from "../app.ts";
import { type Html, html, page, postForm } from "../html.ts";
import type { Session } from "../session.ts";
import {
  authEdit,
  authFields,
  authInput,
  authMethodField,
  authValues,
  fromField,
  fromInput,
} from "./profile_auth.ts";
import { sshAdd, sshEdit, sshFields, sshValues } from "./profile_ssh.ts";
import type { SshProfile } from "../../profile.ts";

const ENGINES: readonly Engine[] = ["postgres", "mysql", "mssql", "sqlite"];
const TLS_MODES: readonly TlsProfile["mode"][] = ["verify", "insecure", "disable"];

/** The TLS settings a form gives (undefined: keep the default), checked like the CLI's choices. */
function tlsOf(
  form: Record<string, string>,
  base: TlsProfile | undefined,
): TlsProfile | undefined {
  if (form.tls === undefined && form.ca_file === undefined) return undefined;
  const mode = (form.tls || base?.mode || "verify") as TlsProfile["mode"];
  if (!TLS_MODES.includes(mode)) {
    throw new HecateError(
      "usage",
      `Unknown TLS mode "${form.tls}": use verify, insecure or disable`,
    );
  }
  const out: TlsProfile = { ...base, mode };
  const ca = form.ca_file?.trim();
  if (ca) out.caFile = ca;
  else delete out.caFile;
  return out;
}

function port(text: string | undefined): number | undefined {
  if (!text?.trim()) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new HecateError("usage", `Invalid port "${text}": give 1-65535`);
  }
  return n;
}

function tags(text: string | undefined): string[] | undefined {
  const list = (text ?? "").split(",").map((t) => t.trim()).filter(Boolean);
  return list.length ? list : undefined;
}

function fields(s: Session, values: Record<string, string>, editing: boolean): Html {
  const v = (k: string) => values[k] ?? "";
  return html`
    <div class="grid">
    ${editing ? "" : html`<label>Name <input name="name" required value="${v("name")}"></label>
<label>Engine <select name="engine">${
      ENGINES.map((e) =>
        html`
          <option value="${e}" ${v("engine") === e
            ? html`
              selected
            `
            : ""}>${e}</option>
        `
      )
    }</select></label>`}
    <label>Host <input name="host" value="${v("host")}"></label>
    <label>Port <input name="port" inputmode="numeric" value="${v("port")}"></label>
    <label>Database (SQLite: file path) <input name="database" value="${v("database")}"></label>
    <label>User <input name="user" value="${v("user")}"></label>
    <label>Tags (comma separated) <input name="tags" value="${v("tags")}"></label>
    <label>TLS <select name="tls">${TLS_MODES.map((m) =>
      html`
        <option value="${m}" ${(v("tls") || "verify") === m
          ? html`
            selected
          `
          : ""}>${m}</option>
      `
    )}</select></label>
    <label>CA file (TLS verify) <input name="ca_file" value="${v("ca_file")}"></label>
    <label>Password ${editing ? "(leave empty to keep)" : ""}
    <input type="password" name="password" autocomplete="new-password"></label>
    ${authMethodField(values)}
    </div>
    <details class="more auth" ${Object.entries(values).some(([k, x]) =>
        x && /^(param_|secret_refs$|from$)/.test(k)
      )
      ? "open"
      : ""}>
      <summary>Method fields, other secrets, references</summary>
      <div class="grid">${authFields(values)}
    ${fromField(values)}</div>
    </details>
    ${sshFields(values)}${s ? "" : ""}
  `;
}

function profileTable(s: Session, vault: Vault, uses: ReadonlyMap<string, string>): Html {
  const list = vault.profiles.list();
  if (list.length === 0) return html`<p class="empty">No profiles yet.</p>`;
  return html`
    <div class="scroll">
      <table class="profiles">
        <thead>
          <tr>
            <th>Name</th>
            <th>Engine</th>
            <th>Address</th>
            <th>Tags</th>
            <th>Last use</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>${list.map((p) =>
          html`
            <tr>
              <td data-label="Name">${p.name}</td>
              <td data-label="Engine">${p.engine}</td>
              <td data-label="Address">${p.engine === "sqlite"
                ? p.database
                : `${p.host ?? ""}${p.port ? `:${p.port}` : ""}/${p.database ?? ""}`}</td>
              <td data-label="Tags">${(p.tags ?? []).join(", ")}</td>
              <td data-label="Last use">${uses.get(p.name) ?? "never"}</td>
              <td
                class="actions">${postForm(
                  s,
                  `${BASE}/profiles/${encodeURIComponent(p.name)}/test`,
                  html`<button type="submit">Test</button>`,
                )}<a class="button" href="${BASE}/profiles/${encodeURIComponent(
                  p.name,
                )}/edit">Edit</a>${postForm(
                  s,
                  `${BASE}/profiles/${encodeURIComponent(p.name)}/remove`,
                  html`<button type="submit" class="danger">Remove</button>`,
                  { confirm: `Remove profile ${p.name}?` },
                )}</td>
            </tr>
          `
        )}</tbody>
      </table>
    </div>
  `;
}

/**
 * The profile routes.
 *
 * @param app The console.
 * @returns The routes.
 */
export function profileRoutes(app: ConsoleApp): Route[] {
  return [
    viewRoute(app, `${BASE}/profiles`, async (_req, { session, vault }) => {
      const uses = await app.lastUses.get();
      return page(
        "Profiles",
        session,
        html`${profileTable(session, vault, uses)}
<h2>Add a profile</h2>${
          postForm(
            session,
            `${BASE}/profiles`,
            html`${
              fields(session, { engine: "postgres" }, false)
            }<button type="submit">Add</button>`,
            { cls: "card" },
          )
        }`,
        `${BASE}/profiles`,
      );
    }),
    actionRoute(
      app,
      `${BASE}/profiles`,
      `${BASE}/profiles`,
      async (_req, { session, vault, form }) => {
        const engine = form.engine as Engine;
        if (!ENGINES.includes(engine)) {
          throw new HecateError("usage", `Unknown engine "${form.engine}"`);
        }
        const input: ProfileInput = {
          name: (form.name ?? "").trim(),
          engine,
          host: form.host?.trim() || undefined,
          port: port(form.port),
          database: form.database?.trim() || undefined,
          user: form.user?.trim() || undefined,
          tags: tags(form.tags),
          tls: tlsOf(form, undefined),
        };
        const auth = authInput(form, engine, input.name);
        input.auth = auth.auth;
        if (Object.keys(auth.params).length) input.params = auth.params;
        const from = fromInput(form);
        if (from) input.sources = { from };
        const tunnel = await sshAdd(form, input.name);
        if (tunnel) input.ssh = tunnel.ssh;
        const secrets = { ...auth.secrets, ...tunnel?.secrets };
        if (Object.keys(secrets).length) input.secrets = secrets;
        await vault.profiles.add(input);
        session.flash.push({ kind: "ok", text: `Added profile "${input.name}"` });
        return undefined;
      },
    ),
    viewRoute(app, `${BASE}/profiles/:name/edit`, async (_req, { session, vault, params }) => {
      const name = params.name!;
      const p = vault.profiles.list().find((x) => x.name === name);
      if (!p) throw new HecateError("profile_not_found", `No profile named "${name}"`);
      const shown = await vault.profiles.show(name);
      const secrets = (shown.secrets ?? {}) as Record<string, unknown>;
      return page(
        `Edit ${name}`,
        session,
        html`<p>Engine: ${p.engine}. Secrets: ${
          Object.keys(secrets).length
            ? Object.keys(secrets).map((k) => `${k} (set)`).join(", ")
            : "none set"
        }</p>${
          postForm(
            session,
            `${BASE}/profiles/${encodeURIComponent(name)}`,
            html`${
              fields(session, {
                host: p.host ?? "",
                port: p.port ? String(p.port) : "",
                database: p.database ?? "",
                user: p.user ?? "",
                tags: (p.tags ?? []).join(", "),
                tls: (shown.tls as TlsProfile | undefined)?.mode ?? "verify",
                ca_file: (shown.tls as TlsProfile | undefined)?.caFile ?? "",
                ...authValues(shown),
                ...sshValues(shown.ssh as SshProfile | undefined),
              }, true)
            }<button type="submit">Save</button>`,
            { cls: "card" },
          )
        }`,
        `${BASE}/profiles`,
      );
    }),
    actionRoute(
      app,
      `${BASE}/profiles/:name`,
      `${BASE}/profiles`,
      async (_req, { session, vault, form, params }) => {
        const current = await vault.profiles.show(params.name!);
        const tls = tlsOf(form, current.tls as TlsProfile | undefined);
        // A field the form sent empty is removed; a field it did not send is kept.
        const changes: ProfileChanges = {};
        if (form.host !== undefined) changes.host = form.host.trim() || null;
        if (form.port !== undefined) changes.port = port(form.port) ?? null;
        if (form.database !== undefined) changes.database = form.database.trim() || null;
        if (form.user !== undefined) changes.user = form.user.trim() || null;
        if (form.tags !== undefined) changes.tags = tags(form.tags) ?? null;
        if (tls) changes.tls = tls;
        if (form.auth === undefined && form.password) {
          changes.secrets = { password: { value: form.password } };
        }
        const engine = String(current.engine) as Engine;
        Object.assign(changes, authEdit(form, engine, params.name!, current));
        const tunnel = await sshEdit(form, params.name!, {
          ssh: current.ssh as SshProfile | undefined,
          secretNames: Object.keys((current.secrets ?? {}) as object),
        });
        if (tunnel) {
          changes.ssh = tunnel.ssh;
          changes.secrets = { ...changes.secrets, ...tunnel.secrets };
        }
        await vault.profiles.edit(params.name!, changes);
        session.flash.push({ kind: "ok", text: `Saved profile "${params.name}"` });
        return undefined;
      },
    ),
    actionRoute(
      app,
      `${BASE}/profiles/:name/remove`,
      `${BASE}/profiles`,
      async (_req, { session, vault, params }) => {
        await vault.profiles.remove(params.name!);
        session.flash.push({ kind: "ok", text: `Removed profile "${params.name}"` });
        return undefined;
      },
    ),
    actionRoute(
      app,
      `${BASE}/profiles/:name/test`,
      `${BASE}/profiles`,
      async (_req, { session, vault, params }) => {
        const name = params.name!;
        const steps: string[] = [];
        const t0 = performance.now();
        try {
          const conn = await vault.connect(name, {
            onStep: (st) => {
              const what = "hop" in st
                ? `SSH hop ${st.hop + 1} ${st.step}`
                : st.step === "tls"
                ? `TLS handshake, ${st.detail}`
                : st.step;
              steps.push(`${what} (${st.label}): ${st.ms.toFixed(1)} ms`);
            },
          });
          try {
            steps.push(`connect and login: ${(performance.now() - t0).toFixed(1)} ms`);
            const ms = await conn.ping();
            steps.push(`round trip: ${ms.toFixed(1)} ms`);
          } finally {
            await conn.close();
          }
          session.flash.push({ kind: "ok", text: `Test of "${name}" passed`, lines: steps });
        } catch (e) {
          if (!(e instanceof HecateError)) throw e;
          steps.push(`failed after ${(performance.now() - t0).toFixed(1)} ms: ${e.message}`);
          session.flash.push({ kind: "error", text: `Test of "${name}" failed`, lines: steps });
        }
        return undefined;
      },
    ),
  ];
}
