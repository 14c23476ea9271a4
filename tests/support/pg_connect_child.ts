/**
 * Child process for tests/pg_wire_test.ts: reads PostgreSQL connection settings as JSON from stdin
 * (the password never goes through argv), connects with the driver, runs one statement, prints
 * `ROWS <json>` and closes. Run it with `--log-level=debug` to see which modules get loaded.
 */

import { postgresDriver } from "../../src/db/postgres.ts";
import type { ConnectSettings } from "../../src/db/driver.ts";

const settings = JSON.parse(await new Response(Deno.stdin.readable).text()) as ConnectSettings;
const conn = await postgresDriver.connect(settings);
const { rows } = await conn.collect!(
  "select 1 as one, (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as ssl",
  [],
);
console.log(`ROWS ${JSON.stringify(rows)}`);
await conn.close();
