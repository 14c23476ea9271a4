/**
 * The web console in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * log in, add a SQLite profile and test it, run a parameterised query and read the rows, create
 * an API key and see it exactly once, revoke it, set up TOTP from the secret shown with the QR
 * code, watch the audit table's live tail, verify the trail green, then tamper with the trail and
 * see the console name the bad entry. Screenshots of each page at 1280x800 and 390x844 go to
 * HOME/shots (or $HECATE_CONSOLE_SHOTS when set, to refresh docs/console/).
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { chromium, type Page } from "playwright-core";
import { totpCode } from "../src/access/totp.ts";
import { startConsole } from "../src/console/server.ts";
import { PW, vaultWith, withHome } from "./support/access.ts";

const CHROMIUM = "/usr/bin/chromium";

/** The items the query reads, and which of them the parameter selects. */
const ITEMS = Array.from(
  { length: 40 },
  (_, i) => ({ id: i + 1, name: `item-${i + 1}`, price: i }),
);
const MIN_PRICE = 25;

const PAGES = ["profiles", "query", "apikeys", "totp", "audit", "backups", "profiles/pg/edit"];
const PIN = "SHA256:" + "A".repeat(43);

async function shot(page: Page, dir: string, name: string): Promise<void> {
  await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
}

Deno.test({
  name: "console in Chromium: profiles, query, API keys, TOTP, audit live tail, verify, tamper",
  ignore: !(await Deno.stat(CHROMIUM).then(() => true, () => false)),
  fn: async () => {
    await withHome(async (home) => {
      await (await vaultWith(home, [])).close();
      const dbPath = `${home}/shop.db`;
      const db = new DatabaseSync(dbPath);
      db.exec("create table items (id integer primary key, name text, price integer)");
      const ins = db.prepare("insert into items values (?, ?, ?)");
      for (const it of ITEMS) ins.run(it.id, it.name, it.price);
      db.close();
      const shots = Deno.env.get("HECATE_CONSOLE_SHOTS") ?? `${home}/shots`;
      await Deno.mkdir(shots, { recursive: true });

      const con = await startConsole({ home });
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: Deno.uid() === 0 ? ["--no-sandbox"] : [],
      });
      try {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        page.on("dialog", (d) => void d.accept());
        const external: string[] = [];
        page.on("request", (r) => {
          if (!r.url().startsWith(con.origin)) external.push(r.url());
        });

        // Log in: the token leaves the address bar at once.
        await page.goto(con.loginUrl);
        assert.equal(new URL(page.url()).pathname, "/console/login");
        await shot(page, shots, "login-1280");
        await page.fill("input[name=password]", PW);
        await page.click("button:has-text('Unlock')");

        await page.waitForURL(/\/console\/profiles$/);

        // Add a SQLite profile and test it.
        await page.fill("input[name=name]", "shop");
        await page.selectOption("select[name=engine]", "sqlite");
        await page.fill("input[name=database]", dbPath);
        await page.click("button:has-text('Add')");
        await page.waitForSelector("text=Added profile");
        assert.match(await page.textContent("table.profiles") ?? "", /shop\s*sqlite/);
        await page.click("table.profiles button:has-text('Test')");
        await page.waitForSelector('text=Test of "shop" passed');
        assert.match(await page.textContent(".flash pre") ?? "", /connect and login: [\d.]+ ms/);
        await shot(page, shots, "profiles-1280");

        // A SQL Server profile behind an SSH bastion and a jump host, with a password; its edit
        // page shows the tunnel as entered and the password only as set.
        const canary = "canary-browser-password-3b9e";
        await page.fill("input[name=name]", "pg");
        await page.selectOption("select[name=engine]", "mssql");
        await page.fill("input[name=host]", "db.internal");
        await page.fill("input[name=user]", "app");
        await page.fill("input[name=password]", canary);
        await page.click("details.ssh summary");
        await page.fill("input[name=ssh_target]", "ops@bastion.example:2222");
        await page.fill("textarea[name=ssh_jumps]", "jump@j1.example");
        await page.check("input[name=ssh_agent]");
        await page.fill("textarea[name=ssh_host_keys]", PIN);
        await page.check("input[name=ssh_accept_new]");
        await page.fill("input[name=ssh_keepalive]", "15000");
        await page.click("button:has-text('Add')");
        await page.waitForSelector('text=Added profile "pg"');
        await page.goto(`${con.origin}/console/profiles/pg/edit`);
        const ssh = await page.$$eval(
          "details.ssh input:not([type=hidden]), details.ssh textarea",
          (els) =>
            (els as unknown as { name: string; type: string; checked: boolean; value: string }[])
              .map((e) => `${e.name}=${e.type === "checkbox" ? e.checked : e.value}`),
        );
        assert.deepEqual(ssh, [
          "ssh_target=ops@bastion.example:2222",
          "ssh_jumps=jump@j1.example",
          "ssh_key=",
          "ssh_agent=true",
          "ssh_secret=",
          `ssh_host_keys=bastion.example:2222=${PIN}`,
          "ssh_accept_new=true",
          "ssh_known_hosts=",
          "ssh_keepalive=15000",
        ]);
        assert.match(await page.textContent("main > p") ?? "", /password \(set\)/);
        // The auth method changes to token with its fields and secret; it persists.
        await page.selectOption("select[name=auth]", "token");
        await page.click("details.auth summary");
        await page.fill("input[name=param_tokenMode]", "client-secret");
        await page.fill("input[name=param_tenantId]", "tenant-1");
        await page.fill("input[name=param_clientId]", "client-1");
        await page.fill("input[name=secret_clientSecret]", canary);
        await page.click("button:has-text('Save')");
        await page.waitForSelector('text=Saved profile "pg"');
        await page.goto(`${con.origin}/console/profiles/pg/edit`);
        assert.equal(
          await page.$eval("select[name=auth]", (e) => (e as unknown as { value: string }).value),
          "token",
        );
        assert.equal(await page.inputValue("input[name=param_tenantId]"), "tenant-1");
        assert.match(await page.textContent("main > p") ?? "", /clientSecret \(set\)/);
        assert.equal(await page.inputValue("input[name=secret_clientSecret]"), "");
        assert.ok(!(await page.content()).includes(canary), "a secret came back to the page");
        await shot(page, shots, "profile-edit-1280");

        // A parameterised query, read back from the table the script renders.
        await page.goto(`${con.origin}/console/query`);
        await page.selectOption("#q-profile", "shop");
        await page.fill("#q-sql", "select id, name, price from items where price >= ? order by id");
        await page.fill("#q-params", String(MIN_PRICE));
        await page.click("#q-run");
        await page.waitForSelector("#q-status.ok");
        const want = ITEMS.filter((i) => i.price >= MIN_PRICE);
        const rows = await page.$$eval(
          "#q-table tbody tr",
          (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)),
        );
        assert.deepEqual(rows, want.map((i) => [String(i.id), i.name, String(i.price)]));
        assert.deepEqual(
          await page.$$eval("#q-table thead th", (ths) => ths.map((t) => t.textContent)),
          ["id", "name", "price"],
        );
        assert.match(await page.textContent("#q-status") ?? "", new RegExp(`^${want.length} rows`));
        await shot(page, shots, "query-1280");
        // A long stream: the page stays responsive (the Stop button's click is handled while
        // rows arrive), then 100,000 rows all arrive and the table keeps the first 10,000.
        await page.fill(
          "#q-sql",
          "with recursive c(x) as (select 1 union all select x + 1 from c where x < cast(? as integer)) select x from c",
        );
        await page.fill("#q-params", "1000000");
        await page.fill("#q-limit", "1000000");
        await page.click("#q-run");
        await page.waitForSelector("#q-status:text-matches('^[0-9]+ rows\\.\\.\\.$')");
        await page.click("#q-stop");
        await page.waitForSelector("#q-status.stopped", { timeout: 120_000 });
        const stoppedAt = Number(
          /^Stopped after (\d+) rows/.exec(await page.textContent("#q-status") ?? "")?.[1],
        );
        assert.ok(stoppedAt > 0 && stoppedAt < 1_000_000, `stopped mid-stream at ${stoppedAt}`);
        assert.equal(await page.isDisabled("#q-stop"), true);
        await page.fill("#q-params", "100000");
        await page.fill("#q-limit", "100000");
        const t0 = performance.now();
        await page.click("#q-run");
        await page.waitForSelector("#q-status.ok", { timeout: 120_000 });
        console.log(
          `100,000 rows: page says "${await page.textContent("#q-status")}", ` +
            `test saw ${Math.round(performance.now() - t0)} ms`,
        );
        assert.match(
          await page.textContent("#q-status") ?? "",
          /^100000 rows in \d+ ms; the table shows the first 10000 \(Download CSV for all\)$/,
        );
        const shown = await page.$$eval(
          "#q-table tbody tr",
          (trs) => trs.map((tr) => tr.textContent),
        );
        assert.deepEqual(shown, Array.from({ length: 10_000 }, (_, i) => String(i + 1)));

        // An API key: shown once, then never again; revoked.
        await page.goto(`${con.origin}/console/apikeys`);
        await page.fill("input[name=name]", "ci");
        await page.check("input[name=profile][value=shop]");
        await page.click("button:has-text('Create')");
        const key = (await page.textContent(".flash.secret pre"))?.trim() ?? "";
        assert.match(key, /^hcx_/);
        assert.equal((await page.content()).split(key).length - 1, 1, "the key appears once");
        await shot(page, shots, "apikeys-1280");
        await page.reload();
        assert.ok(!(await page.content()).includes(key), "the key is not shown again");
        assert.match(await page.textContent("table.apikeys") ?? "", /ci/);
        await page.click("table.apikeys button:has-text('Revoke')");
        await page.waitForSelector("text=Revoked API key");
        assert.equal(await page.$("table.apikeys"), null);

        // TOTP from the secret shown with the QR code.
        await page.goto(`${con.origin}/console/totp`);
        await page.click("button:has-text('Set up TOTP')");
        await page.waitForSelector("figure.qr svg");
        await shot(page, shots, "totp-1280");
        const secret = (await page.textContent("#totp-secret"))?.trim() ?? "";
        await page.fill("input[name=code]", await totpCode(secret, new Date()));
        await page.click("button:has-text('Turn on')");
        await page.waitForSelector(".flash.codes pre");
        assert.ok(
          ((await page.textContent(".flash.codes pre")) ?? "").trim().split("\n").length >= 5,
        );
        await page.waitForSelector("text=TOTP is on");

        // The audit table's live tail shows an action done in another tab.
        await page.goto(`${con.origin}/console/audit`);
        const before = await page.$$eval("#audit-table tbody tr", (t) => t.length);
        const other = await context.newPage();
        await other.goto(`${con.origin}/console/backups`);
        await other.click("button:has-text('Create a backup')");
        await other.waitForSelector("text=Backup written");
        await shot(other, shots, "backups-1280");
        await other.close();
        // Polled from here: the CSP refuses the string evaluation waitForFunction would use.
        const deadline = Date.now() + 10_000;
        while ((await page.$$eval("#audit-table tbody tr", (t) => t.length)) <= before) {
          assert.ok(Date.now() < deadline, "the live tail added the new record");
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.match(await page.textContent("#audit-table") ?? "", /backup\.create/);
        await page.click("#verify");
        await page.waitForSelector("#verdict.ok");
        assert.match(await page.textContent("#verdict") ?? "", /Trail intact/);
        await shot(page, shots, "audit-1280");

        // Tamper with one entry: the console names it.
        const file = `${home}/audit.jsonl`;
        const lines = (await Deno.readTextFile(file)).split("\n");
        const bad = lines.findIndex((l) => l.includes('"event":"profile.add"'));
        assert.ok(bad >= 0);
        lines[bad] = lines[bad]!.replace('"profile":"shop"', '"profile":"shoq"');
        await Deno.writeTextFile(file, lines.join("\n"));
        await page.click("#verify");
        await page.waitForSelector("#verdict.bad");
        const verdict = await page.textContent("#verdict") ?? "";
        assert.match(
          verdict,
          new RegExp(`Trail broken: edited at audit\\.jsonl line ${bad + 1}\\b`),
        );
        await shot(page, shots, "audit-broken-1280");

        // Every page at phone size, with the same session.
        const phone = await browser.newContext({
          viewport: { width: 390, height: 844 },
          storageState: await context.storageState(),
        });
        const small = await phone.newPage();
        for (const name of PAGES) {
          await small.goto(`${con.origin}/console/${name}`);
          await shot(small, shots, `${name === "profiles/pg/edit" ? "profile-edit" : name}-390`);
          const overflow = await small.$eval("html", (el) => el.scrollWidth - el.clientWidth);
          assert.ok(overflow <= 1, `${name} fits 390 px wide (overflow ${overflow})`);
        }
        await phone.close();
        assert.deepEqual(external, [], "no request leaves the console");
      } finally {
        await browser.close();
        await con.close();
      }
    });
  },
});
