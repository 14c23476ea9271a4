/**
 * The `console` benchmark (issue 17's goals): the first page's size, its fetch time over loopback
 * (page, script and style) against a bare Deno.serve answering the same bytes (interleaved, as a
 * ratio), and in headless Chromium (when /usr/bin/chromium exists) the time until the page is
 * interactive and the time to stream 100,000 rows into the query table.
 *
 * @module
 */

import { chromium } from "playwright-core";
import { consoleClient, login } from "../../tests/support/console.ts";
import { vaultWith } from "./setup.ts";

const ROUNDS = 30;
const FIRST = ["/console/profiles", "/console/assets/app.js", "/console/assets/app.css"];
const CHROMIUM = "/usr/bin/chromium";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Runs the section and prints its lines.
 *
 * @param root A scratch directory.
 * @param password The master password.
 */
export async function benchConsole(root: string, password: string): Promise<void> {
  const home = `${root}/console-home`;
  await (await vaultWith(home, password, [{
    name: "lite",
    engine: "sqlite",
    database: ":memory:",
  }]))
    .close();
  const c = await consoleClient(home);
  const bodies: Uint8Array[] = [];
  for (const p of FIRST) bodies.push(new Uint8Array(await (await c.request(p)).arrayBuffer()));
  await login(c, password);
  bodies.length = 0;
  for (const p of FIRST) bodies.push(new Uint8Array(await (await c.request(p)).arrayBuffer()));
  const bytes = bodies.reduce((n, b) => n + b.length, 0);
  // The floor: the same bytes from a server that does nothing else.
  const floor = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const i = FIRST.indexOf(new URL(req.url).pathname);
    return new Response(bodies[Math.max(i, 0)]!.slice());
  });
  const floorOrigin = `http://127.0.0.1:${(floor.addr as Deno.NetAddr).port}`;
  const ours: number[] = [];
  const ref: number[] = [];
  const fetchAll = async (get: (p: string) => Promise<Response>) => {
    const t0 = performance.now();
    await Promise.all(FIRST.map(async (p) => await (await get(p)).arrayBuffer()));
    return performance.now() - t0;
  };
  for (let i = 0; i < ROUNDS; i++) {
    ours.push(await fetchAll((p) => c.request(p)));
    ref.push(await fetchAll((p) => fetch(floorOrigin + p)));
  }
  console.log(
    `console first page: ${bytes} bytes (page + script + style); fetch median ` +
      `${median(ours).toFixed(2)} ms against a bare server's ${median(ref).toFixed(2)} ms ` +
      `(ratio ${(median(ours) / median(ref)).toFixed(2)}x, ${ROUNDS} interleaved rounds)`,
  );
  await floor.shutdown();

  if (await Deno.stat(CHROMIUM).then(() => true, () => false)) {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: Deno.uid() === 0 ? ["--no-sandbox"] : [],
    });
    try {
      const [name, value] = c.cookie!.split("=") as [string, string];
      const context = await browser.newContext();
      await context.addCookies([{ name, value, url: `${c.console.origin}/console/` }]);
      const page = await context.newPage();
      const interactive: number[] = [];
      for (let i = 0; i < 10; i++) {
        await page.goto(`${c.console.origin}/console/profiles`);
        interactive.push(
          await page.$eval("html", () => {
            const nav = performance.getEntriesByType("navigation")[0] as unknown as {
              domInteractive: number;
            };
            return nav.domInteractive;
          }),
        );
      }
      console.log(
        `console first page in Chromium: interactive after ${median(interactive).toFixed(1)} ms ` +
          `(median of 10 loads, navigation timing domInteractive)`,
      );
      const stream: number[] = [];
      const longest: number[] = [];
      const over50: number[] = [];
      for (let i = 0; i < 3; i++) {
        await page.goto(`${c.console.origin}/console/query`);
        // Main-thread tasks over 50 ms (Chromium's long tasks) while the rows arrive: the page is
        // unresponsive for the length of the longest one.
        await page.evaluate(() => {
          const w = globalThis as unknown as { longTasks: number[] };
          w.longTasks = [];
          new PerformanceObserver((list) => {
            for (const e of list.getEntries()) w.longTasks.push(e.duration);
          }).observe({ type: "longtask", buffered: false });
        });
        await page.fill(
          "#q-sql",
          "with recursive c(x) as (select 1 union all select x + 1 from c where x < 100000) " +
            "select x, 'row ' || x as label from c",
        );
        await page.fill("#q-limit", "100000");
        await page.click("#q-run");
        await page.waitForSelector("#q-status.ok", { timeout: 120_000 });
        const text = await page.textContent("#q-status") ?? "";
        stream.push(Number(/in (\d+) ms/.exec(text)?.[1] ?? NaN));
        // Entries are delivered after the task that ends them: give the observer a frame.
        await page.waitForTimeout(200);
        const tasks = await page.evaluate(() =>
          (globalThis as unknown as { longTasks: number[] }).longTasks
        );
        longest.push(tasks.length ? Math.max(...tasks) : 0);
        over50.push(tasks.length);
      }
      console.log(
        `console query, 100,000 rows streamed (the table keeps the first 10,000): ${
          median(stream)
        } ms ` +
          `(median of 3, as the page reports it)`,
      );
      console.log(
        `console query, 100,000 rows: longest main-thread task ${median(longest).toFixed(0)} ms, ${
          median(over50)
        } tasks over 50 ms (median of 3; PerformanceObserver longtask; ` +
          `runs: ${longest.map((x) => x.toFixed(0)).join(", ")} ms)`,
      );
    } finally {
      await browser.close();
    }
  } else console.log("console in Chromium: skipped (no /usr/bin/chromium)");
  await c.close();
}
