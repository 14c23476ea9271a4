/**
 * The explicit permission set `hecate` runs with (never `-A`): the `hecate` task in deno.json,
 * `deno task compile`, the demo, the benchmarks and the tests that spawn the command all use this
 * one list; tests/permissions_test.ts keeps deno.json equal to it.
 *
 * - read/write: the vault home, SQLite files, `--output` files, certificate and key files;
 * - env: `HECATE_*`, and the drivers read a few variables (tedious reads `DEBUG`);
 * - net: the database servers and SSH bastions, token endpoints;
 * - run: `hecate run` starts the program it is given;
 * - sys: the host name (recorded in audit lines) and the user id (home ownership check).
 *
 * @module
 */

/** Permission flags of the `hecate` command. */
export const HECATE_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  "--allow-sys=hostname,uid",
];
