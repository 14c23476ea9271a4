/**
 * The backups page: create, list, verify (asks the password again: a verify is an unlock of the
 * vault inside, under lockout) and restore (asks the password and a typed confirmation).
 *
 * @module
 */

import { listBackups, restoreBackup, verifyBackup } from "../../api/backup.ts";
import { HecateError } from "../../errors.ts";
import type { Route } from "../../http/router.ts";
import { actionRoute, BASE, type ConsoleApp, cookieHeader, redirect, viewRoute } from "../app.ts";
import { html, page, postForm } from "../html.ts";

async function known(home: string, name: string): Promise<string> {
  const b = (await listBackups(home)).find((x) => x.path.split("/").at(-1) === name);
  if (!b) throw new HecateError("usage", `No backup named "${name}"`);
  return b.path;
}

/**
 * The backup routes.
 *
 * @param app The console.
 * @returns The routes.
 */
export function backupRoutes(app: ConsoleApp): Route[] {
  return [
    viewRoute(app, `${BASE}/backups`, async (_req, { session }) => {
      const list = await listBackups(app.home);
      return page(
        "Backups",
        session,
        html`${
          postForm(session, `${BASE}/backups`, html`<button type="submit">Create a backup</button>`)
        }${
          list.length === 0 ? html`<p class="empty">No backups yet.</p>` : html`
            <div class="scroll">
              <table class="backups">
                <thead>
                  <tr>
                    <th>File</th>
                    <th>Size</th>
                    <th>Verify</th>
                    <th>Restore</th>
                  </tr>
                </thead>
                <tbody>${list.reverse().map((b) => {
                  const name = b.path.split("/").at(-1)!;
                  return html`
                    <tr>
                      <td>${name}</td>
                      <td>${b.size}</td>
                      <td>${postForm(
                        session,
                        `${BASE}/backups/verify`,
                        html`
                          <input type="hidden" name="file" value="${name}">
                          <input type="password" name="password" placeholder="master password" aria-label="master password"
                            required>
                          <button type="submit">Verify</button>
                        `,
                        { cls: "inline" },
                      )}</td>
                      <td>${postForm(
                        session,
                        `${BASE}/backups/restore`,
                        html`
                          <input type="hidden" name="file" value="${name}">
                          <input type="password" name="password" placeholder="master password" aria-label="master password"
                            required>
                          <input name="confirm" placeholder="type restore" aria-label="type restore to confirm" required>
                          <button type="submit" class="danger">Restore</button>
                        `,
                        { cls: "inline", confirm: `Replace the vault with ${name}?` },
                      )}</td>
                    </tr>
                  `;
                })}</tbody>
              </table>
            </div>
          `
        }`,
        `${BASE}/backups`,
      );
    }),
    actionRoute(app, `${BASE}/backups`, `${BASE}/backups`, async (_req, { session, vault }) => {
      const b = await vault.backups.create();
      session.flash.push({ kind: "ok", text: `Backup written: ${b.path.split("/").at(-1)}` });
      return undefined;
    }),
    actionRoute(
      app,
      `${BASE}/backups/verify`,
      `${BASE}/backups`,
      async (_req, { session, form }) => {
        const file = await known(app.home, form.file ?? "");
        const r = await verifyBackup({
          file,
          home: app.home,
          password: form.password ?? "",
          audit: app.audit,
        });
        session.flash.push({
          kind: "ok",
          text: `Backup is sound: generation ${r.manifest.generation}, made ${r.manifest.created}`,
        });
        return undefined;
      },
    ),
    actionRoute(
      app,
      `${BASE}/backups/restore`,
      `${BASE}/backups`,
      async (_req, { session, form }) => {
        if (form.confirm !== "restore") {
          throw new HecateError("usage", 'Type "restore" to confirm');
        }
        const file = await known(app.home, form.file ?? "");
        const r = await restoreBackup({
          file,
          home: app.home,
          password: form.password ?? "",
          audit: app.audit,
        });
        // The open vault is now stale: lock it; the user unlocks the restored one.
        await app.sessions.end(session, "restore");
        const fresh = app.sessions.startLocked();
        fresh.flash.push({ kind: "ok", text: `Restored generation ${r.generation}; unlock again` });
        return redirect(`${BASE}/login`, cookieHeader(fresh.id));
      },
    ),
  ];
}
