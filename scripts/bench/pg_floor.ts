/**
 * The floor under the cron path: a bare `pg` client that connects, runs `select 1` and ends,
 * with nothing of Hecate (no command tree, vault, audit). The `apikey` benchmark section bundles
 * and runs it next to `hecate query` and psql. Its connection comes from the PG* environment
 * variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD), which `pg` reads itself.
 *
 * @module
 */

import pg from "pg";

const client = new pg.Client();
await client.connect();
const { rows } = await client.query("select 1 as one");
await client.end();
if (rows[0]?.one !== 1) throw new Error("unexpected result");
