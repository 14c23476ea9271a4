/**
 * The explicit permission set `hecate` runs with (never `-A`): the `hecate` task in deno.json,
 * `deno task compile`, the demo, the benchmarks and the tests that spawn the command all use this
 * one list; tests/permissions_test.ts keeps deno.json equal to it.
 *
 * - read/write: the vault home, SQLite files, `--output` files, certificate and key files;
 * - env: `HECATE_*`, and the drivers read a few variables (tedious reads `DEBUG`);
 * - net: the database servers and SSH bastions, token endpoints;
 * - run: `hecate run` starts the program it is given, any program the person names, so it cannot
 *   be a list fixed when the process starts; unscoped, it makes this set as wide as `-A` (a child
 *   runs outside Deno's sandbox), as unscoped read and write already nearly do. This set says what
 *   Hecate needs; it is not a sandbox. docs/SECURITY.md ("Deno permissions") gives the reasoning,
 *   and tests/permissions_test.ts checks that only src/run/spawn.ts starts processes.
 * - sys: the host name (recorded in audit lines) and the user id (home ownership check).
 * - ffi: a PKCS#11 slot loads the token's module (a shared library the person names) into the
 *   process; only src/vault/pkcs11/cryptoki.ts calls into it, loaded only on that path. Unscoped
 *   because Deno 2.9 needs the unscoped permission for the pointer operations a PKCS#11 template
 *   needs (a path-scoped one only allows loading); it adds native code in this process, which
 *   `--allow-run` already allowed in a child. docs/SECURITY.md ("Deno permissions").
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
  "--allow-ffi",
];
